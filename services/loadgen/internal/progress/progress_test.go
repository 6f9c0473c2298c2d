package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socklab/socklab/services/kit/latency"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

func tick(elapsed time.Duration, reqs, ok int64, errs map[string]int64, final bool) engine.Progress {
	total := engine.Counts{Requests: reqs, Successes: ok, Errors: errs}
	return engine.Progress{
		Elapsed: elapsed, Interval: time.Second, Requests: 1000, Successes: 990,
		Total: total, Parts: []engine.PartCounts{{Name: "autoreply-tcp", Counts: total}},
		Latency: latency.Summary{Count: 990, Min: time.Microsecond, P50: 100 * time.Microsecond,
			P90: 200 * time.Microsecond, P99: 900 * time.Microsecond, Max: 2 * time.Millisecond},
		Overall: latency.Summary{Count: ok, P50: 100 * time.Microsecond, P99: time.Millisecond, Max: 3 * time.Millisecond},
		Final:   final,
	}
}

func TestPrinter(t *testing.T) {
	tests := []struct {
		name  string
		p     Printer
		final bool
		want  string // "" for no output
	}{
		{name: "human", want: "   2.0s      1000 req/s  total 2000  ok 1990  errors 10  p50 100µs  p99 900µs  max 2ms\n"},
		{name: "human final", final: true, want: ""},
		{name: "live", p: Printer{Live: true}, want: "\r\033[K   2.0s      1000 req/s  total 2000  ok 1990  errors 10  p50 100µs  p99 900µs  max 2ms"},
		{name: "live final", p: Printer{Live: true}, final: true, want: "\r\033[K   2.0s      1000 req/s  total 2000  ok 1990  errors 10  p50 100µs  p99 900µs  max 2ms\n"},
		{name: "json", p: Printer{JSON: true},
			want: `{"elapsed_s":2,"interval_s":1,"rate":1000,"requests":2000,"successes":1990,"errors":{"timeout":10},"p50_us":100,"p90_us":200,"p99_us":900,"max_us":2000}` + "\n"},
		{name: "json final", p: Printer{JSON: true}, final: true,
			want: `{"elapsed_s":2,"interval_s":1,"rate":1000,"requests":2000,"successes":1990,"errors":{"timeout":10},"p50_us":100,"p90_us":200,"p99_us":900,"max_us":2000,"done":true}` + "\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		tt.p.W = &buf
		tt.p.Print(tick(2*time.Second, 2000, 1990, map[string]int64{"timeout": 10}, tt.final))
		if buf.String() != tt.want {
			t.Errorf("%s: printed %q\nwant     %q", tt.name, buf.String(), tt.want)
		}
	}
	// A JSON line decodes into Line.
	var buf bytes.Buffer
	(&Printer{W: &buf, JSON: true}).Print(tick(time.Second, 5, 5, nil, false))
	var l Line
	if err := json.Unmarshal(buf.Bytes(), &l); err != nil || l.Requests != 5 {
		t.Errorf("JSON line %q: %v, %+v", buf.String(), err, l)
	}
}

func TestMetricsAddDeltas(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.Update(tick(time.Second, 1000, 990, map[string]int64{"timeout": 10}, false))
	m.Update(tick(2*time.Second, 2500, 2480, map[string]int64{"timeout": 15, "closed": 5}, false))
	want := `
# HELP loadgen_errors_total Failed requests, by scenario and kind (connect, timeout, loss, closed, wrong_reply, server_error, io, unsent).
# TYPE loadgen_errors_total counter
loadgen_errors_total{kind="closed",scenario="autoreply-tcp"} 5
loadgen_errors_total{kind="timeout",scenario="autoreply-tcp"} 15
# HELP loadgen_requests_total Requests finished, by scenario.
# TYPE loadgen_requests_total counter
loadgen_requests_total{scenario="autoreply-tcp"} 2500
# HELP loadgen_successes_total Requests answered rightly, by scenario.
# TYPE loadgen_successes_total counter
loadgen_successes_total{scenario="autoreply-tcp"} 2480
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"loadgen_requests_total", "loadgen_successes_total", "loadgen_errors_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.latency.WithLabelValues("0.99")); got != 0.001 {
		t.Errorf("p99 gauge = %v, want 0.001", got)
	}
	if got := testutil.ToFloat64(m.elapsed); got != 2 {
		t.Errorf("elapsed = %v, want 2", got)
	}
}

// The target rate and each scenario's latency histogram reach /metrics,
// the histogram in the servers' buckets, counted from the run so far.
func TestMetricsByScenario(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	fast, slow := latency.New(), latency.New()
	for range 100 {
		fast.Record(50 * time.Microsecond)
	}
	for range 10 {
		slow.Record(2 * time.Millisecond)
	}
	p := tick(time.Second, 110, 110, nil, false)
	p.Rate = 250
	p.Run = &engine.Stats{
		Parts: []engine.PartCounts{
			{Name: "fast", Counts: engine.Counts{Requests: 100, Successes: 100}},
			{Name: "slow", Counts: engine.Counts{Requests: 10, Successes: 10}},
		},
		PartLatency: []*latency.Recorder{fast, slow},
	}
	m.Update(p)
	if got := testutil.ToFloat64(m.target); got != 250 {
		t.Errorf("target rate = %v, want 250", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		count uint64
		le    float64 // a bound...
		below uint64  // ...and how many are at or below it
	}
	wants := map[string]want{
		"fast": {count: 100, le: 80e-6, below: 100},
		"slow": {count: 10, le: 1.28e-3, below: 0},
	}
	found := 0
	for _, mf := range mfs {
		if mf.GetName() != "loadgen_request_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			name := mt.GetLabel()[0].GetValue()
			w, ok := wants[name]
			if !ok {
				t.Errorf("histogram for unknown scenario %q", name)
				continue
			}
			found++
			h := mt.GetHistogram()
			if h.GetSampleCount() != w.count {
				t.Errorf("%s: %d samples, want %d", name, h.GetSampleCount(), w.count)
			}
			var at *float64
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == w.le {
					n := float64(b.GetCumulativeCount())
					at = &n
				}
			}
			if at == nil || uint64(*at) != w.below {
				t.Errorf("%s: bucket le=%v holds %v, want %d", name, w.le, at, w.below)
			}
		}
	}
	if found != 2 {
		t.Errorf("%d scenario histograms exported, want 2", found)
	}
}
