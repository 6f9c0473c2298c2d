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
