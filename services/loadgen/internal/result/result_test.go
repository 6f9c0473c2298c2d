package result

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/socklab/socklab/services/kit/latency"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// seq is a scenario whose request n takes took(n) of fake time and fails
// with fail(n).
type seq struct {
	took func(n int64) time.Duration
	fail func(n int64) error
	mu   sync.Mutex
	n    int64
}

func (s *seq) NewWorker(context.Context) (engine.Worker, error) { return s, nil }
func (s *seq) Close() error                                     { return nil }
func (s *seq) Do(context.Context) error {
	s.mu.Lock()
	n := s.n
	s.n++
	s.mu.Unlock()
	time.Sleep(s.took(n)) // simulated service time, in fake time
	if s.fail != nil {
		return s.fail(n)
	}
	return nil
}

func tookA(n int64) time.Duration { return time.Duration(n%7+1) * time.Millisecond }
func tookB(n int64) time.Duration { return time.Duration(n%13+1) * 150 * time.Microsecond }
func failA(n int64) error {
	if n%10 == 3 {
		return engine.Errorf(engine.KindWrongReply, "bad")
	}
	return nil
}
func failB(n int64) error {
	if n%25 == 0 {
		return engine.Errorf(engine.KindLoss, "no answer")
	}
	return nil
}

func runSeq(t *testing.T, s *seq, name string, requests int64) *engine.Stats {
	t.Helper()
	st, err := engine.Run(t.Context(), engine.Config{
		Parts:   []engine.Part{{Name: name, Weight: 1, Scenario: s}},
		Workers: 1, Requests: requests,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Two generators' results, written to files, read back and merged, report
// exactly what one generator doing both their requests reports.
func TestMergeEqualsOneRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const na, nb = 300, 200
		var a, b *engine.Stats
		var wg sync.WaitGroup
		// The two run at the same time, as scaled containers do.
		wg.Go(func() { a = runSeq(t, &seq{took: tookA, fail: failA}, "x", na) })
		wg.Go(func() { b = runSeq(t, &seq{took: tookB, fail: failB}, "x", nb) })
		wg.Wait()
		one := runSeq(t, &seq{
			took: func(n int64) time.Duration {
				if n < na {
					return tookA(n)
				}
				return tookB(n - na)
			},
			fail: func(n int64) error {
				if n < na {
					return failA(n)
				}
				return failB(n - na)
			},
		}, "x", na+nb)

		meta := Meta{Scenario: "x", Connections: 1, Datagram: map[string]bool{"x": true}}
		dir := t.TempDir()
		var paths []string
		for i, st := range []*engine.Stats{a, b} {
			meta.ID = []string{"gen-a", "gen-b"}[i]
			p, err := New(meta, st).WriteFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		var rs []*Result
		for _, p := range paths {
			r, err := ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		got, err := Merge(rs...)
		if err != nil {
			t.Fatal(err)
		}
		meta.ID = "one"
		want := New(meta, one)

		if !got.Recorder().Histogram().Equals(want.Recorder().Histogram()) {
			t.Errorf("merged histogram differs from the single run's")
		}
		if got.Latency != want.Latency {
			t.Errorf("merged latency = %+v, want %+v", got.Latency, want.Latency)
		}
		if gs, ws := got.Scenarios[0], want.Scenarios[0]; gs.Latency == nil || *gs.Latency != *ws.Latency || *gs.Latency != got.Latency {
			t.Errorf("merged scenario latency = %+v, want %+v", gs.Latency, ws.Latency)
		}
		if got.Requests != na+nb || got.Requests != want.Requests || got.Successes != want.Successes {
			t.Errorf("merged requests/successes = %d/%d, want %d/%d", got.Requests, got.Successes, want.Requests, want.Successes)
		}
		if len(got.Errors) != 2 || got.Errors[engine.KindWrongReply] != want.Errors[engine.KindWrongReply] ||
			got.Errors[engine.KindLoss] != want.Errors[engine.KindLoss] || got.Lost != want.Lost {
			t.Errorf("merged errors = %v, want %v", got.Errors, want.Errors)
		}
		if got.LossRate != want.LossRate {
			t.Errorf("merged loss rate = %v, want %v", got.LossRate, want.LossRate)
		}
		// Both ran from the same instant, so throughput is over the longer
		// of the two, not their sum.
		long := max(a.End.Sub(a.Start), b.End.Sub(b.Start))
		if got.Seconds != long.Seconds() || len(got.Spans) != 1 {
			t.Errorf("merged seconds = %v over %d spans, want %v over 1", got.Seconds, len(got.Spans), long.Seconds())
		}
		if got.Throughput != float64(na+nb)/long.Seconds() {
			t.Errorf("merged throughput = %v, want %v", got.Throughput, float64(na+nb)/long.Seconds())
		}
		if strings.Join(got.IDs, " ") != "gen-a gen-b" || got.Connections != 2 {
			t.Errorf("merged ids %v, connections %d", got.IDs, got.Connections)
		}
		// A merge of merges is the same merge.
		again, err := Merge(got)
		if err != nil {
			t.Fatal(err)
		}
		if again.Latency != got.Latency || again.Requests != got.Requests || again.Seconds != got.Seconds {
			t.Errorf("merge of a merge changed it: %+v vs %+v", again, got)
		}
	})
}

func TestUnion(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	sp := func(a, b int) Span { return Span{Start: at(a), End: at(b)} }
	tests := []struct {
		give []Span
		want []Span
	}{
		{give: nil, want: nil},
		{give: []Span{sp(0, 10)}, want: []Span{sp(0, 10)}},
		{give: []Span{sp(5, 15), sp(0, 10)}, want: []Span{sp(0, 15)}},
		{give: []Span{sp(0, 10), sp(10, 12)}, want: []Span{sp(0, 12)}},
		{give: []Span{sp(0, 10), sp(20, 30), sp(2, 3)}, want: []Span{sp(0, 10), sp(20, 30)}},
	}
	for _, tt := range tests {
		got := union(tt.give)
		if len(got) != len(tt.want) {
			t.Errorf("union(%v) = %v, want %v", tt.give, got, tt.want)
			continue
		}
		for i := range got {
			if !got[i].Start.Equal(tt.want[i].Start) || !got[i].End.Equal(tt.want[i].End) {
				t.Errorf("union(%v) = %v, want %v", tt.give, got, tt.want)
			}
		}
	}
}

// Generators that ran one after the other are measured over both their
// times, not over the gap between.
func TestMergeDisjointSpans(t *testing.T) {
	mk := func(id string, start, secs int) *Result {
		r := &Result{
			Version: Version, ID: id, Scenario: "x", Model: ModelClosed,
			Scenarios: []Scenario{{Name: "x", Counts: engine.Counts{Requests: 100, Successes: 100}}},
			Spans:     []Span{{Start: time.Unix(int64(start), 0), End: time.Unix(int64(start+secs), 0)}},
		}
		rec := latency.New()
		r.Histogram = export(rec)
		r.derive(rec)
		return r
	}
	m, err := Merge(mk("a", 0, 10), mk("b", 100, 10))
	if err != nil {
		t.Fatal(err)
	}
	if m.Seconds != 20 || m.Throughput != 10 {
		t.Errorf("seconds %v, throughput %v; want 20 and 10", m.Seconds, m.Throughput)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := func() *Result {
		r := &Result{Version: Version, ID: "a", Scenario: "x", Model: ModelClosed,
			Scenarios: []Scenario{{Name: "x", Counts: engine.Counts{Requests: 2, Successes: 1, Errors: map[string]int64{"timeout": 1}}}},
			Spans:     []Span{{Start: time.Unix(0, 0), End: time.Unix(1, 0)}},
		}
		rec := latency.New()
		rec.Record(time.Millisecond)
		r.Histogram = export(rec)
		r.Scenarios[0].Histogram = export(rec)
		r.derive(rec)
		return r
	}
	tests := []struct {
		name string
		edit func(r *Result)
		want string // "" for accepted
	}{
		{name: "good", edit: func(*Result) {}},
		{name: "version", edit: func(r *Result) { r.Version = 99 }, want: "version"},
		{name: "no histogram", edit: func(r *Result) { r.Histogram = nil }, want: "no histogram"},
		{name: "negative count", edit: func(r *Result) { r.Histogram.Counts[0] = -1 }, want: "negative"},
		{name: "other range", edit: func(r *Result) { r.Histogram.HighestTrackableValue = 1000 }, want: "covers"},
		{name: "totals", edit: func(r *Result) { r.Requests = 7 }, want: "add up"},
		{name: "successes", edit: func(r *Result) { r.Scenarios[0].Successes = 3; r.Successes = 3 }, want: "inconsistent"},
		{name: "span", edit: func(r *Result) { r.Spans[0].End = time.Unix(-1, 0) }, want: "span"},
		{name: "version 1", edit: func(r *Result) { r.Version = 1; r.Scenarios[0].Histogram = nil }},
		{name: "scenario histogram count", edit: func(r *Result) { r.Scenarios[0].Histogram = export(latency.New()) }, want: "0 latencies for 1 successes"},
		{name: "scenario histogram range", edit: func(r *Result) { r.Scenarios[0].Histogram.SignificantFigures = 2 }, want: "covers"},
	}
	for _, tt := range tests {
		r := good()
		tt.edit(r)
		var buf bytes.Buffer
		if err := r.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		_, err := Decode(&buf)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Decode = %v, want success", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: Decode = %v, want an error about %q", tt.name, err, tt.want)
		}
	}
	if _, err := Decode(strings.NewReader("{")); err == nil {
		t.Error("Decode of a cut document succeeded")
	}
}

func TestWriteText(t *testing.T) {
	r := &Result{Version: Version, ID: "gen-1", Scenario: "mix", Model: ModelOpen, Rate: 1000, Connections: 16,
		Scenarios: []Scenario{
			{Name: "autoreply-tcp", Counts: engine.Counts{Requests: 3000, Successes: 2990, Errors: map[string]int64{"wrong_reply": 4, "timeout": 6}}},
			{Name: "autoreply-udp", Datagram: true, Counts: engine.Counts{Requests: 1000, Successes: 990, Errors: map[string]int64{"loss": 10}}},
		},
		Spans: []Span{{Start: time.Unix(0, 0), End: time.Unix(4, 0)}},
	}
	rec, tcp := latency.New(), latency.New()
	for i := range 100 {
		rec.Record(time.Duration(i+1) * 10 * time.Microsecond)
		tcp.Record(time.Duration(i+1) * 100 * time.Microsecond)
	}
	r.Histogram = export(rec)
	r.Scenarios[0].Histogram = export(tcp) // udp's unknown, as from a version 1 file
	r.derive(rec)
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"mix: open loop at 1000 req/s over 16 connections (gen-1)",
		"requests    4000",
		"successes   3980",
		"errors      20 (loss 10, timeout 6, wrong_reply 4)",
		"timeouts    6",
		"lost        10 (1.000% of datagram requests)",
		"throughput  1000.0 req/s (995.0 successful/s)",
		"p50 500µs",
		"p99 990µs",
		"max 1ms",
		"scenario            requests successes  errors tmo/lost      p50      p90      p99    p99.9      max  errors by kind",
		"autoreply-tcp           3000      2990      10        6      5ms   9.01ms    9.9ms     10ms     10ms  timeout 6, wrong_reply 4",
		"autoreply-udp           1000       990      10       10        -        -        -        -        -  loss 10",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestSafeName(t *testing.T) {
	tests := []struct{ give, want string }{
		{give: "loadgen-1", want: "loadgen-1"},
		{give: "", want: "loadgen"},
		{give: "../etc/passwd", want: "_etc_passwd"},
		{give: "a b/c", want: "a_b_c"},
	}
	for _, tt := range tests {
		if got := safeName(tt.give); got != tt.want {
			t.Errorf("safeName(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
	if filepath.Base(safeName("../x")) != safeName("../x") {
		t.Error("safeName leaves a path")
	}
}

// A mix's scenarios each keep their own histogram through a file and a
// merge, and a version 1 file (no scenario histograms) still merges: the
// totals add up and its scenarios' latencies become unknown.
func TestMergeScenarioHistograms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		run := func() *engine.Stats {
			st, err := engine.Run(t.Context(), engine.Config{
				Parts: []engine.Part{
					{Name: "a", Weight: 1, Scenario: &seq{took: tookA, fail: failA}},
					{Name: "b", Weight: 1, Scenario: &seq{took: tookB, fail: failB}},
				},
				Workers: 2, Requests: 400,
			})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		one, two := run(), run()
		meta := Meta{Scenario: "mix", Connections: 2, Datagram: map[string]bool{"b": true}}
		dir := t.TempDir()
		var rs []*Result
		for i, st := range []*engine.Stats{one, two} {
			meta.ID = []string{"g1", "g2"}[i]
			p, err := New(meta, st).WriteFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		m, err := Merge(rs...)
		if err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"a", "b"} {
			want := latency.New()
			want.Merge(one.PartLatency[i])
			want.Merge(two.PartLatency[i])
			s := m.Scenarios[i]
			if s.Name != name || s.Histogram == nil {
				t.Fatalf("merged scenario %d = %q with histogram %v", i, s.Name, s.Histogram != nil)
			}
			got := hdrhistogram.Import(s.Histogram)
			if !got.Equals(want.Histogram()) || s.Latency.P99 != want.Summary().P99.Microseconds() {
				t.Errorf("scenario %s: merged p99 %dµs, want %v", name, s.Latency.P99, want.Summary().P99)
			}
			if got.TotalCount() != s.Successes {
				t.Errorf("scenario %s: %d latencies for %d successes", name, got.TotalCount(), s.Successes)
			}
		}
		// b (150µs to 2ms) is faster than a (1 to 7ms): the rows say so.
		if a, b := m.Scenarios[0].Latency, m.Scenarios[1].Latency; b.P50 >= a.P50 || a.P50 < 1000 {
			t.Errorf("p50 a %dµs, b %dµs", a.P50, b.P50)
		}

		// The same first file as a version 1 writer made it.
		old := *rs[0]
		old.Version = 1
		old.Scenarios = nil
		for _, s := range rs[0].Scenarios {
			s.Histogram, s.Latency = nil, nil
			old.Scenarios = append(old.Scenarios, s)
		}
		var buf bytes.Buffer
		if err := old.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		if strings.Count(buf.String(), `"histogram"`) != 1 {
			t.Fatalf("version 1 file still has scenario histograms:\n%s", buf.String())
		}
		v1, err := Decode(&buf)
		if err != nil {
			t.Fatalf("version 1 file: %v", err)
		}
		mixed, err := Merge(v1, rs[1])
		if err != nil {
			t.Fatal(err)
		}
		if mixed.Requests != m.Requests || mixed.Latency != m.Latency {
			t.Errorf("with a version 1 file: %d requests, latency %+v; want %d, %+v", mixed.Requests, mixed.Latency, m.Requests, m.Latency)
		}
		for _, s := range mixed.Scenarios {
			if s.Histogram != nil || s.Latency != nil {
				t.Errorf("scenario %s: latency %+v from half the generators", s.Name, s.Latency)
			}
		}
		var text strings.Builder
		mixed.WriteText(&text)
		if !strings.Contains(text.String(), "        -        -        -        -        -") {
			t.Errorf("unknown scenario latencies not shown as -:\n%s", text.String())
		}
	})
}
