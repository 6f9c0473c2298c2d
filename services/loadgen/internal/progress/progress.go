// Package progress shows a running load: a line every tick for people
// (rewritten in place on a terminal) or as JSON for programs, and
// Prometheus metrics with the same counters as the final summary for
// anyone who scrapes the generator.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socklab/socklab/services/kit/latency"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// Printer writes progress lines.
type Printer struct {
	W io.Writer
	// JSON selects one JSON object per line.
	JSON bool
	// Live rewrites a single line (for a terminal) instead of adding one
	// per tick.
	Live bool
}

// Line is a JSON progress line.
type Line struct {
	Elapsed   float64          `json:"elapsed_s"`
	Interval  float64          `json:"interval_s"`
	Rate      float64          `json:"rate"`
	Requests  int64            `json:"requests"`
	Successes int64            `json:"successes"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	// Latency of the successes in the interval, in microseconds.
	P50  int64 `json:"p50_us"`
	P90  int64 `json:"p90_us"`
	P99  int64 `json:"p99_us"`
	Max  int64 `json:"max_us"`
	Done bool  `json:"done,omitempty"`
}

// Print writes the line for p.
func (pr *Printer) Print(p engine.Progress) {
	rate := 0.0
	if p.Interval > 0 {
		rate = float64(p.Requests) / p.Interval.Seconds()
	}
	if pr.JSON {
		b, _ := json.Marshal(Line{
			Elapsed: round3(p.Elapsed.Seconds()), Interval: round3(p.Interval.Seconds()), Rate: round3(rate),
			Requests: p.Total.Requests, Successes: p.Total.Successes, Errors: p.Total.Errors,
			P50: p.Latency.P50.Microseconds(), P90: p.Latency.P90.Microseconds(),
			P99: p.Latency.P99.Microseconds(), Max: p.Latency.Max.Microseconds(),
			Done: p.Final,
		})
		pr.W.Write(append(b, '\n'))
		return
	}
	if p.Final && !pr.Live {
		return // the summary follows
	}
	errs := p.Total.Requests - p.Total.Successes
	line := fmt.Sprintf("%6.1fs %9.0f req/s  total %d  ok %d  errors %d  %s",
		p.Elapsed.Seconds(), rate, p.Total.Requests, p.Total.Successes, errs, short(p.Latency))
	if pr.Live {
		end := ""
		if p.Final {
			end = "\n"
		}
		fmt.Fprintf(pr.W, "\r\033[K%s%s", line, end)
		return
	}
	fmt.Fprintln(pr.W, line)
}

func short(s latency.Summary) string {
	if s.Count == 0 {
		return "no answers"
	}
	return fmt.Sprintf("p50 %v  p99 %v  max %v", s.P50, s.P99, s.Max)
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// Metrics exports a run's counters.
type Metrics struct {
	requests  *prometheus.CounterVec
	successes *prometheus.CounterVec
	errors    *prometheus.CounterVec
	latency   *prometheus.GaugeVec
	elapsed   prometheus.Gauge
	target    prometheus.Gauge
	byPart    *partHistograms
	last      map[string]engine.Counts
}

// Quantiles are the latency quantiles exported.
var quantiles = []struct {
	label string
	of    func(latency.Summary) time.Duration
}{
	{"0", func(s latency.Summary) time.Duration { return s.Min }},
	{"0.5", func(s latency.Summary) time.Duration { return s.P50 }},
	{"0.9", func(s latency.Summary) time.Duration { return s.P90 }},
	{"0.99", func(s latency.Summary) time.Duration { return s.P99 }},
	{"0.999", func(s latency.Summary) time.Duration { return s.P999 }},
	{"1", func(s latency.Summary) time.Duration { return s.Max }},
}

// NewMetrics registers the loadgen metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := metrics.For(reg, "loadgen")
	m := &Metrics{
		requests:  f.CounterVec("requests_total", "Requests finished, by scenario.", "scenario"),
		successes: f.CounterVec("successes_total", "Requests answered rightly, by scenario.", "scenario"),
		errors: f.CounterVec("errors_total",
			"Failed requests, by scenario and kind (connect, timeout, loss, closed, wrong_reply, server_error, io, unsent).",
			"scenario", "kind"),
		latency: f.GaugeVec("latency_seconds",
			"Latency of successful requests since the start, by quantile (0 is the minimum, 1 the maximum); open-loop latency runs from when each request was due.",
			"quantile"),
		elapsed: f.Gauge("elapsed_seconds", "Time since the load started."),
		target:  f.Gauge("target_rate", "Requests per second the open loop is asked to send (0: closed loop)."),
		byPart: &partHistograms{desc: prometheus.NewDesc("loadgen_request_seconds",
			"Latency of successful requests since the start, by scenario; open-loop latency runs from when each request was due.",
			[]string{"scenario"}, nil)},
		last: map[string]engine.Counts{},
	}
	reg.MustRegister(m.byPart)
	return m
}

// Update adds what happened since the last call.
func (m *Metrics) Update(p engine.Progress) {
	for _, part := range p.Parts {
		prev := m.last[part.Name]
		m.requests.WithLabelValues(part.Name).Add(float64(part.Requests - prev.Requests))
		m.successes.WithLabelValues(part.Name).Add(float64(part.Successes - prev.Successes))
		for kind, n := range part.Errors {
			if d := n - prev.Errors[kind]; d > 0 {
				m.errors.WithLabelValues(part.Name, kind).Add(float64(d))
			}
		}
		m.last[part.Name] = part.Counts.Clone()
	}
	if p.Overall.Count > 0 {
		for _, q := range quantiles {
			m.latency.WithLabelValues(q.label).Set(q.of(p.Overall).Seconds())
		}
	}
	m.elapsed.Set(p.Elapsed.Seconds())
	m.target.Set(p.Rate)
	if p.Run != nil {
		m.byPart.update(p.Run)
	}
}

// partHistograms exports each scenario's HdrHistogram as a Prometheus
// histogram with the lab's latency buckets (those of the servers), so that
// a scraper finds loadgen's latency by scenario in the same shape as the
// servers' own. It is rebuilt from the run's histograms every tick rather
// than observed per request, which keeps Prometheus off the hot path.
type partHistograms struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	hs   []constHistogram
}

type constHistogram struct {
	name    string
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

func (c *partHistograms) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *partHistograms) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.hs {
		ch <- prometheus.MustNewConstHistogram(c.desc, h.count, h.sum, h.buckets, h.name)
	}
}

func (c *partHistograms) update(st *engine.Stats) {
	hs := make([]constHistogram, 0, len(st.Parts))
	for i, p := range st.Parts {
		if i >= len(st.PartLatency) {
			break
		}
		hs = append(hs, bucketed(p.Name, st.PartLatency[i], metrics.LatencyBuckets))
	}
	c.mu.Lock()
	c.hs = hs
	c.mu.Unlock()
}

// bucketed counts the values of rec (microseconds) at or below each bound
// (seconds). A value counts at its HdrHistogram bucket's highest
// equivalent value, so it is never placed below where it was.
func bucketed(name string, rec *latency.Recorder, bounds []float64) constHistogram {
	h := rec.Histogram()
	out := constHistogram{name: name, count: uint64(h.TotalCount()), buckets: make(map[float64]uint64, len(bounds))}
	for _, b := range bounds {
		out.buckets[b] = 0
	}
	if out.count == 0 {
		return out
	}
	out.sum = h.Mean() * float64(h.TotalCount()) / 1e6
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := float64(bar.To) / 1e6
		for _, b := range bounds {
			if v <= b {
				out.buckets[b] += uint64(bar.Count)
			}
		}
	}
	return out
}
