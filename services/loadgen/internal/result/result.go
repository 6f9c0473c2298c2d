// Package result is the record of a load run: what was asked, what came
// back, and the latency histogram itself, so that the results of several
// generators (scaled containers) merge into the report one generator doing
// all the work would have printed. It reads and writes the JSON result files
// and prints the human summary.
package result

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/socklab/socklab/services/kit/latency"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// Version is the format of result files this package writes. Version 2
// added each scenario's histogram; version 1 files (without) still read and
// merge, their scenarios' latencies unknown.
const Version = 2

// oldestVersion is the oldest format Decode reads.
const oldestVersion = 1

// Load models.
const (
	ModelOpen   = "open"
	ModelClosed = "closed"
	ModelMixed  = "mixed" // a merge of runs with different models
)

// Result is one run, or the merge of several.
type Result struct {
	Version int `json:"version"`
	// ID names the generator (its hostname by default); a merge lists
	// the IDs it was made of in IDs.
	ID  string   `json:"id"`
	IDs []string `json:"ids,omitempty"`
	// Scenario is the scenario asked for ("mix" for a weighted mix);
	// Scenarios holds the outcomes of each one that ran.
	Scenario string `json:"scenario"`
	// Model is "open" (Rate requests/s over Connections) or "closed"
	// (Connections requests in flight).
	Model       string  `json:"model"`
	Rate        float64 `json:"rate,omitempty"`
	Connections int     `json:"connections"`
	// Start and End bound the run. Spans lists the time each generator
	// ran, merged where they overlap; Seconds is their total length, the
	// time throughput is measured over.
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Spans   []Span    `json:"spans"`
	Seconds float64   `json:"seconds"`
	engine.Counts
	// Timeouts and Lost repeat Errors["timeout"] and Errors["loss"];
	// LossRate is Lost over the requests of datagram scenarios.
	Timeouts  int64      `json:"timeouts"`
	Lost      int64      `json:"lost"`
	LossRate  float64    `json:"loss_rate"`
	Scenarios []Scenario `json:"scenarios"`
	// Throughput is requests (all outcomes) per second; SuccessThroughput
	// counts successes only.
	Throughput        float64 `json:"throughput"`
	SuccessThroughput float64 `json:"success_throughput"`
	// Latency summarises Histogram, in microseconds, over successful
	// requests; open-loop latency runs from when each request was due.
	Latency Latency `json:"latency_us"`
	// Histogram is the HdrHistogram of latencies in microseconds, as
	// hdrhistogram-go's Export makes it (trailing zero counts left out).
	Histogram *hdrhistogram.Snapshot `json:"histogram"`
}

// Span is a stretch of time a generator ran.
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Scenario holds the outcomes of one scenario.
type Scenario struct {
	Name string `json:"name"`
	// Datagram marks a UDP scenario, where a missing answer is loss.
	Datagram bool `json:"datagram,omitempty"`
	engine.Counts
	// Latency summarises Histogram, the latencies of this scenario's
	// successes (as the result's own). Both are nil when unknown: a
	// version 1 file, or a merge with one.
	Latency   *Latency               `json:"latency_us,omitempty"`
	Histogram *hdrhistogram.Snapshot `json:"histogram,omitempty"`
}

// Latency is the usual order statistics in microseconds.
type Latency struct {
	Min  int64   `json:"min"`
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p99_9"`
	Max  int64   `json:"max"`
	Mean float64 `json:"mean"`
}

// Meta is what a run was asked to do.
type Meta struct {
	ID          string
	Scenario    string
	Rate        float64 // open loop when > 0
	Connections int
	// Datagram names the scenarios that run over UDP.
	Datagram map[string]bool
}

// New builds the Result of a run from its Stats.
func New(m Meta, st *engine.Stats) *Result {
	r := &Result{
		Version:     Version,
		ID:          m.ID,
		Scenario:    m.Scenario,
		Model:       ModelClosed,
		Connections: m.Connections,
		Start:       st.Start.UTC(),
		End:         st.End.UTC(),
		Spans:       []Span{{Start: st.Start.UTC(), End: st.End.UTC()}},
		Histogram:   export(st.Latency),
	}
	if m.Rate > 0 {
		r.Model, r.Rate = ModelOpen, m.Rate
	}
	for i, p := range st.Parts {
		s := Scenario{Name: p.Name, Datagram: m.Datagram[p.Name], Counts: p.Counts.Clone()}
		if i < len(st.PartLatency) {
			s.Histogram = export(st.PartLatency[i])
		}
		r.Scenarios = append(r.Scenarios, s)
	}
	r.derive(st.Latency)
	return r
}

func export(rec *latency.Recorder) *hdrhistogram.Snapshot {
	s := rec.Histogram().Export()
	n := len(s.Counts)
	for n > 0 && s.Counts[n-1] == 0 {
		n--
	}
	s.Counts = s.Counts[:n:n]
	return s
}

// Recorder returns the latency histogram.
func (r *Result) Recorder() *latency.Recorder {
	return latency.FromHistogram(hdrhistogram.Import(r.Histogram))
}

// derive fills in every field computed from the others.
func (r *Result) derive(rec *latency.Recorder) {
	r.Counts = engine.Counts{}
	var dgram int64
	for _, s := range r.Scenarios {
		r.Counts.Add(s.Counts)
		if s.Datagram {
			dgram += s.Requests
		}
	}
	r.Timeouts = r.Errors[engine.KindTimeout]
	r.Lost = r.Errors[engine.KindLoss]
	r.LossRate = 0
	if dgram > 0 {
		r.LossRate = float64(r.Lost) / float64(dgram)
	}
	r.Spans = union(r.Spans)
	var d time.Duration
	for _, s := range r.Spans {
		d += s.End.Sub(s.Start)
	}
	r.Seconds = d.Seconds()
	r.Throughput, r.SuccessThroughput = 0, 0
	if d > 0 {
		r.Throughput = float64(r.Requests) / r.Seconds
		r.SuccessThroughput = float64(r.Successes) / r.Seconds
	}
	r.Latency = summarise(rec)
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		s.Latency = nil
		if s.Histogram != nil {
			l := summarise(latency.FromHistogram(hdrhistogram.Import(s.Histogram)))
			s.Latency = &l
		}
	}
}

func summarise(rec *latency.Recorder) Latency {
	s := rec.Summary()
	l := Latency{
		Min: s.Min.Microseconds(), P50: s.P50.Microseconds(), P90: s.P90.Microseconds(),
		P99: s.P99.Microseconds(), P999: s.P999.Microseconds(), Max: s.Max.Microseconds(),
	}
	if s.Count > 0 {
		l.Mean = math.Round(rec.Histogram().Mean()*10) / 10
	}
	return l
}

// union sorts spans and joins those that overlap or touch.
func union(spans []Span) []Span {
	spans = slices.Clone(spans)
	slices.SortFunc(spans, func(a, b Span) int { return a.Start.Compare(b.Start) })
	var out []Span
	for _, s := range spans {
		if n := len(out); n > 0 && !s.Start.After(out[n-1].End) {
			if s.End.After(out[n-1].End) {
				out[n-1].End = s.End
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// Merge combines results as if one generator had made all their requests:
// counters add up, histograms merge (so percentiles are those of all the
// requests, not an average of percentiles), and throughput is measured over
// the union of the times the generators ran.
func Merge(rs ...*Result) (*Result, error) {
	if len(rs) == 0 {
		return nil, errors.New("nothing to merge")
	}
	m := &Result{Version: Version, Scenario: rs[0].Scenario, Model: rs[0].Model}
	rec := latency.New()
	byName := map[string]int{}
	var recs []*latency.Recorder // by scenario; nil once one input has none
	for _, r := range rs {
		if len(r.IDs) > 0 {
			m.IDs = append(m.IDs, r.IDs...)
		} else {
			m.IDs = append(m.IDs, r.ID)
		}
		if r.Scenario != m.Scenario {
			m.Scenario = "mixed"
		}
		if r.Model != m.Model {
			m.Model = ModelMixed
		}
		m.Rate += r.Rate
		m.Connections += r.Connections
		if m.Start.IsZero() || r.Start.Before(m.Start) {
			m.Start = r.Start
		}
		if r.End.After(m.End) {
			m.End = r.End
		}
		m.Spans = append(m.Spans, r.Spans...)
		for _, s := range r.Scenarios {
			i, ok := byName[s.Name]
			if !ok {
				i = len(m.Scenarios)
				byName[s.Name] = i
				m.Scenarios = append(m.Scenarios, Scenario{Name: s.Name, Datagram: s.Datagram})
				recs = append(recs, latency.New())
			}
			m.Scenarios[i].Add(s.Counts)
			switch {
			case recs[i] == nil:
			case s.Histogram == nil:
				recs[i] = nil // a version 1 file: this scenario's latency is unknown
			default:
				if dropped := recs[i].Histogram().Merge(hdrhistogram.Import(s.Histogram)); dropped > 0 {
					return nil, fmt.Errorf("result %s, scenario %s: %d latencies out of range", r.ID, s.Name, dropped)
				}
			}
		}
		if dropped := rec.Histogram().Merge(hdrhistogram.Import(r.Histogram)); dropped > 0 {
			return nil, fmt.Errorf("result %s: %d latencies out of range", r.ID, dropped)
		}
	}
	m.ID = "merged(" + strings.Join(m.IDs, ",") + ")"
	m.Histogram = export(rec)
	for i, sr := range recs {
		if sr != nil {
			m.Scenarios[i].Histogram = export(sr)
		}
	}
	m.derive(rec)
	return m, nil
}

// Decode reads one result document and checks that it is whole and
// consistent, histogram included.
func Decode(rd io.Reader) (*Result, error) {
	dec := json.NewDecoder(rd)
	var r Result
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	if r.Version < oldestVersion || r.Version > Version {
		return nil, fmt.Errorf("result version %d, want %d to %d", r.Version, oldestVersion, Version)
	}
	if r.Histogram == nil {
		return nil, errors.New("result has no histogram")
	}
	if err := checkHistogram(r.Histogram); err != nil {
		return nil, fmt.Errorf("result histogram: %w", err)
	}
	var total engine.Counts
	for _, s := range r.Scenarios {
		if s.Requests < 0 || s.Successes < 0 || s.Successes > s.Requests {
			return nil, fmt.Errorf("scenario %q: inconsistent counts", s.Name)
		}
		if s.Histogram != nil {
			if err := checkHistogram(s.Histogram); err != nil {
				return nil, fmt.Errorf("scenario %q histogram: %w", s.Name, err)
			}
			if n := hdrhistogram.Import(s.Histogram).TotalCount(); n != s.Successes {
				return nil, fmt.Errorf("scenario %q: histogram holds %d latencies for %d successes", s.Name, n, s.Successes)
			}
		}
		for k, v := range s.Errors {
			if v < 0 {
				return nil, fmt.Errorf("scenario %q: negative %s errors", s.Name, k)
			}
		}
		total.Add(s.Counts)
	}
	if total.Requests != r.Requests || total.Successes != r.Successes {
		return nil, errors.New("scenario counts do not add up to the totals")
	}
	for _, s := range r.Spans {
		if s.End.Before(s.Start) {
			return nil, errors.New("a span ends before it starts")
		}
	}
	return &r, nil
}

// checkHistogram reports a histogram Recorder cannot merge without loss:
// another range or precision, or invalid counts.
func checkHistogram(s *hdrhistogram.Snapshot) error {
	if err := s.Validate(); err != nil {
		return err
	}
	ref := latency.New().Histogram()
	if s.LowestTrackableValue != ref.LowestTrackableValue() ||
		s.HighestTrackableValue != ref.HighestTrackableValue() ||
		s.SignificantFigures != ref.SignificantFigures() {
		return fmt.Errorf("covers %d..%d at %d figures, want %d..%d at %d",
			s.LowestTrackableValue, s.HighestTrackableValue, s.SignificantFigures,
			ref.LowestTrackableValue(), ref.HighestTrackableValue(), ref.SignificantFigures())
	}
	return nil
}

// Encode writes r as indented JSON.
func (r *Result) Encode(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	// Counts run to thousands of numbers: one line for them, not one each.
	b = compactCounts(b)
	_, err = w.Write(append(b, '\n'))
	return err
}

// compactCounts puts the histogram's "Counts" array on one line.
func compactCounts(b []byte) []byte {
	key := []byte(`"Counts": [`)
	i := bytes.Index(b, key)
	if i < 0 {
		return b
	}
	j := i + len(key)
	end := bytes.IndexByte(b[j:], ']')
	if end < 0 {
		return b
	}
	var arr bytes.Buffer
	if err := json.Compact(&arr, b[j-1:j+end+1]); err != nil {
		return b
	}
	out := append([]byte{}, b[:j-1]...)
	out = append(out, arr.Bytes()...)
	return append(out, b[j+end+1:]...)
}

// WriteFile writes r to dir/<id>.json, through a temporary file so that a
// reader never sees half of it.
func (r *Result) WriteFile(dir string) (string, error) {
	name := filepath.Join(dir, safeName(r.ID)+".json")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := r.Encode(&buf); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".result-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return name, os.Rename(tmp.Name(), name)
}

// safeName keeps an ID usable as a file name.
func safeName(id string) string {
	if id == "" {
		return "loadgen"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, strings.TrimLeft(id, "."))
}

// ReadFile decodes the result file at path.
func ReadFile(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// WriteText prints the human summary.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	who := r.ID
	if len(r.IDs) > 0 {
		who = fmt.Sprintf("%d generators: %s", len(r.IDs), strings.Join(r.IDs, ", "))
	}
	switch r.Model {
	case ModelOpen:
		fmt.Fprintf(&b, "%s: open loop at %g req/s over %d connections (%s)\n", r.Scenario, r.Rate, r.Connections, who)
	case ModelClosed:
		fmt.Fprintf(&b, "%s: closed loop, %d in flight (%s)\n", r.Scenario, r.Connections, who)
	default:
		fmt.Fprintf(&b, "%s: %s load models, %d connections (%s)\n", r.Scenario, r.Model, r.Connections, who)
	}
	fmt.Fprintf(&b, "  duration    %.3fs from %s\n", r.Seconds, r.Start.Format(time.RFC3339))
	fmt.Fprintf(&b, "  requests    %d\n", r.Requests)
	fmt.Fprintf(&b, "  successes   %d\n", r.Successes)
	fmt.Fprintf(&b, "  errors      %d%s\n", r.Requests-r.Successes, kinds(r.Errors))
	fmt.Fprintf(&b, "  timeouts    %d\n", r.Timeouts)
	if hasDatagram(r.Scenarios) {
		fmt.Fprintf(&b, "  lost        %d (%.3f%% of datagram requests)\n", r.Lost, 100*r.LossRate)
	}
	fmt.Fprintf(&b, "  throughput  %.1f req/s (%.1f successful/s)\n", r.Throughput, r.SuccessThroughput)
	l := r.Latency
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	if r.Successes > 0 {
		fmt.Fprintf(&b, "  latency     min %v  p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
			us(l.Min), us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
	} else {
		fmt.Fprintf(&b, "  latency     no successful request\n")
	}
	if len(r.Scenarios) > 0 {
		// One row per scenario: its own counts and percentiles, since the
		// scenarios' latencies differ by orders of magnitude.
		fmt.Fprintf(&b, "  %-18s %9s %9s %7s %8s %8s %8s %8s %8s %8s  %s\n",
			"scenario", "requests", "successes", "errors", "tmo/lost", "p50", "p90", "p99", "p99.9", "max", "errors by kind")
		for _, s := range r.Scenarios {
			lost := s.Errors[engine.KindTimeout]
			if s.Datagram {
				lost = s.Errors[engine.KindLoss]
			}
			p := [5]string{"-", "-", "-", "-", "-"}
			if l := s.Latency; l != nil && s.Successes > 0 {
				p = [5]string{short(l.P50), short(l.P90), short(l.P99), short(l.P999), short(l.Max)}
			}
			fmt.Fprintf(&b, "  %-18s %9d %9d %7d %8d %8s %8s %8s %8s %8s  %s\n",
				s.Name, s.Requests, s.Successes, s.Requests-s.Successes, lost, p[0], p[1], p[2], p[3], p[4],
				strings.TrimSuffix(strings.TrimPrefix(kinds(s.Errors), " ("), ")"))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// short formats microseconds in at most 8 characters: 165µs, 3.59ms, 1.25s.
func short(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.3gms", float64(us)/1e3)
	default:
		return fmt.Sprintf("%.3gs", float64(us)/1e6)
	}
}

func hasDatagram(ss []Scenario) bool {
	for _, s := range ss {
		if s.Datagram {
			return true
		}
	}
	return false
}

// kinds formats error counts as " (kind n, kind n)", sorted by kind.
func kinds(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
