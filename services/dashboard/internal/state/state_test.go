package state

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/socklab/socklab/services/dashboard/internal/scrape"
	"github.com/socklab/socklab/services/kit/lab"
)

// page parses a /metrics page as the scraper does.
func page(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("page: %v\n%s", err, text)
	}
	return fams
}

// autoreplyPage is a /metrics page of autoreply with n messages, e errors,
// fast of them answered within 80µs and the rest within 1.28ms, and c
// open connections.
func autoreplyPage(t *testing.T, n, e, fast, c int) map[string]*dto.MetricFamily {
	return page(t, fmt.Sprintf(`# TYPE autoreply_messages_total counter
autoreply_messages_total{proto="tcp"} %d
autoreply_messages_total{proto="udp"} 0
# TYPE autoreply_errors_total counter
autoreply_errors_total{kind="write"} %d
# TYPE autoreply_connections_active gauge
autoreply_connections_active %d
# TYPE autoreply_reply_seconds histogram
autoreply_reply_seconds_bucket{proto="tcp",le="8e-05"} %d
autoreply_reply_seconds_bucket{proto="tcp",le="0.00128"} %d
autoreply_reply_seconds_bucket{proto="tcp",le="+Inf"} %d
autoreply_reply_seconds_sum{proto="tcp"} 0
autoreply_reply_seconds_count{proto="tcp"} %d
`, n, e, c, fast, n, n, n))
}

func res(node, service string, fams map[string]*dto.MetricFamily, err error) scrape.Result {
	return scrape.Result{Target: scrape.Target{Node: node, Service: service, Addr: node + ":9100"}, Families: fams, Err: err}
}

func nodeNamed(t *testing.T, st State, name string) Node {
	t.Helper()
	for _, n := range st.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node %q in %v", name, names(st))
	return Node{}
}

func names(st State) []string {
	var out []string
	for _, n := range st.Nodes {
		out = append(out, n.Name)
	}
	return out
}

func near(p *float64, want float64) bool {
	return p != nil && math.Abs(*p-want) <= 0.01*math.Abs(want)+1e-9
}

func show(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

var t0 = time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)

func TestMapShowsEveryService(t *testing.T) {
	m := New(lab.Services())
	st := m.State()
	want := []string{"autoreply", "tinytcp", "filestream", "connid", "moviedb-1", "moviedb-2", "moviedb-3", "loadgen", "capture", "dashboard"}
	if got := strings.Join(names(st), " "); got != strings.Join(want, " ") {
		t.Errorf("nodes = %s, want %s", got, strings.Join(want, " "))
	}
	ar := nodeNamed(t, st, "autoreply")
	if len(ar.Ports) != 2 || ar.Ports[0] != (Port{Port: 9000, Transport: "tcp", HostPort: 9000}) || ar.Ports[1].Transport != "udp" {
		t.Errorf("autoreply ports = %+v", ar.Ports)
	}
	if p := nodeNamed(t, st, "moviedb-3").Ports; len(p) != 1 || p[0].HostPort != 5002 || p[0].Port != 5000 {
		t.Errorf("moviedb-3 ports = %+v", p)
	}
	if d := nodeNamed(t, st, "dashboard"); !d.Up || d.Ports[0].HostPort != 8080 {
		t.Errorf("dashboard node = %+v", d)
	}
	if lg := nodeNamed(t, st, "loadgen"); lg.Up || !strings.Contains(lg.Error, "no replica") {
		t.Errorf("loadgen without replicas = %+v", lg)
	}
}

func TestRatesLatencyAndConnections(t *testing.T) {
	m := New(lab.Services())
	m.Ingest(Round{At: t0, Results: []scrape.Result{res("autoreply", "autoreply", autoreplyPage(t, 100, 0, 100, 3), nil)}})
	n := nodeNamed(t, m.State(), "autoreply")
	if !n.Up || n.Live.Rate != nil || !near(n.Live.Conns, 3) {
		t.Errorf("after one scrape: up %v rate %s conns %s; want up, no rate yet, 3", n.Up, show(n.Live.Rate), show(n.Live.Conns))
	}
	// In 2s: 200 more messages, 10 of them slow; 4 errors.
	m.Ingest(Round{At: t0.Add(2 * time.Second), Results: []scrape.Result{res("autoreply", "autoreply", autoreplyPage(t, 300, 4, 290, 5), nil)}})
	n = nodeNamed(t, m.State(), "autoreply")
	if !near(n.Live.Rate, 100) || !near(n.Live.ErrorRate, 2) || !near(n.Live.Conns, 5) {
		t.Errorf("rate %s errors %s conns %s, want 100, 2, 5", show(n.Live.Rate), show(n.Live.ErrorRate), show(n.Live.Conns))
	}
	// p50: rank 100 of 200 in the first bucket (0..80µs) of 190: 42.1µs.
	if !near(n.Live.P50, 0.0421) || n.Live.P99 == nil || *n.Live.P99 <= 0.08 || *n.Live.P99 > 1.28 {
		t.Errorf("p50 %s ms p99 %s ms; want 0.0421 and within (0.08, 1.28]", show(n.Live.P50), show(n.Live.P99))
	}
	if len(n.History.T) != 2 || n.History.Rate[0] != nil || !near(n.History.Rate[1], 100) {
		t.Errorf("history = %+v", n.History)
	}
	// A restarted server counts from zero again.
	m.Ingest(Round{At: t0.Add(3 * time.Second), Results: []scrape.Result{res("autoreply", "autoreply", autoreplyPage(t, 30, 0, 30, 1), nil)}})
	if n = nodeNamed(t, m.State(), "autoreply"); n.Live.Rate == nil || *n.Live.Rate <= 0 {
		t.Errorf("after a restart: rate %s, want positive", show(n.Live.Rate))
	}
}

func TestWindowAndHistoryBounds(t *testing.T) {
	m := New([]lab.Service{lab.Autoreply})
	m.Window, m.Keep = 3*time.Second, 10*time.Second
	for i := range 30 {
		m.Ingest(Round{At: t0.Add(time.Duration(i) * time.Second), Results: []scrape.Result{
			// 10/s for the first 20s, then 50/s.
			res("autoreply", "autoreply", autoreplyPage(t, 10*min(i, 20)+50*max(i-20, 0), 0, 0, 0), nil)}})
	}
	n := nodeNamed(t, m.State(), "autoreply")
	if !near(n.Live.Rate, 50) {
		t.Errorf("rate %s, want 50 (the window is 3s)", show(n.Live.Rate))
	}
	if len(n.History.T) != 11 || n.History.T[0] != t0.Add(19*time.Second).UnixMilli() {
		t.Errorf("history holds %d points from %d, want 11 from 19s", len(n.History.T), n.History.T[0])
	}
}

func TestScrapeFailure(t *testing.T) {
	m := New([]lab.Service{lab.Autoreply})
	m.Ingest(Round{At: t0, Took: 3 * time.Millisecond, Results: []scrape.Result{res("autoreply", "autoreply", autoreplyPage(t, 1, 0, 1, 0), nil)}})
	m.Ingest(Round{At: t0.Add(time.Second), Took: 800 * time.Millisecond, Results: []scrape.Result{res("autoreply", "autoreply", nil, errors.New("connection refused"))}})
	st := m.State()
	n := nodeNamed(t, st, "autoreply")
	if n.Up || n.Error != "connection refused" || n.Live.Rate != nil || len(n.History.T) != 2 || n.History.Rate[1] != nil {
		t.Errorf("down node = %+v", n)
	}
	if st.Scrape.Failed != 1 || st.Scrape.Rounds != 2 || st.Scrape.LastMs != 800 || st.Scrape.MaxMs != 800 || st.Scrape.MeanMs != 401.5 {
		t.Errorf("scrape stats = %+v", st.Scrape)
	}
}

// loadgenPage is a generator's page: target rate, and per scenario its
// requests, successes, errors (kind timeout) and n latencies under 1.28ms.
func loadgenPage(t *testing.T, target float64, scen map[string][3]int) map[string]*dto.MetricFamily {
	var b strings.Builder
	fmt.Fprintf(&b, "# TYPE loadgen_target_rate gauge\nloadgen_target_rate %g\n", target)
	b.WriteString("# TYPE loadgen_requests_total counter\n")
	for s, v := range scen {
		fmt.Fprintf(&b, "loadgen_requests_total{scenario=%q} %d\n", s, v[0])
	}
	b.WriteString("# TYPE loadgen_successes_total counter\n")
	for s, v := range scen {
		fmt.Fprintf(&b, "loadgen_successes_total{scenario=%q} %d\n", s, v[1])
	}
	b.WriteString("# TYPE loadgen_errors_total counter\n")
	for s, v := range scen {
		fmt.Fprintf(&b, "loadgen_errors_total{scenario=%q,kind=\"timeout\"} %d\n", s, v[0]-v[1])
	}
	b.WriteString("# TYPE loadgen_request_seconds histogram\n")
	for s, v := range scen {
		fmt.Fprintf(&b, "loadgen_request_seconds_bucket{scenario=%q,le=\"0.00128\"} %d\n", s, v[2])
		fmt.Fprintf(&b, "loadgen_request_seconds_bucket{scenario=%q,le=\"0.01024\"} %d\n", s, v[1])
		fmt.Fprintf(&b, "loadgen_request_seconds_bucket{scenario=%q,le=\"+Inf\"} %d\n", s, v[1])
		fmt.Fprintf(&b, "loadgen_request_seconds_sum{scenario=%q} 0\nloadgen_request_seconds_count{scenario=%q} %d\n", s, s, v[1])
	}
	return page(t, b.String())
}

func TestLoadgenReplicasAndMerge(t *testing.T) {
	m := New(lab.Services())
	lg := func(node string, fams map[string]*dto.MetricFamily) scrape.Result {
		return res(node, "loadgen", fams, nil)
	}
	m.Ingest(Round{At: t0, Results: []scrape.Result{
		lg("socklab-loadgen-1", loadgenPage(t, 20, map[string][3]int{"tinytcp": {0, 0, 0}, "connid": {0, 0, 0}})),
		lg("socklab-loadgen-2", loadgenPage(t, 30, map[string][3]int{"tinytcp": {0, 0, 0}})),
	}})
	m.Ingest(Round{At: t0.Add(time.Second), Results: []scrape.Result{
		lg("socklab-loadgen-1", loadgenPage(t, 20, map[string][3]int{"tinytcp": {10, 10, 10}, "connid": {10, 8, 0}})),
		lg("socklab-loadgen-2", loadgenPage(t, 30, map[string][3]int{"tinytcp": {30, 30, 0}})),
	}})
	st := m.State()
	if got := strings.Join(names(st), " "); !strings.Contains(got, "moviedb-3 socklab-loadgen-1 socklab-loadgen-2 capture") {
		t.Errorf("nodes = %s, want the replicas in loadgen's place", got)
	}
	l := st.Load
	if len(l.Generators) != 2 {
		t.Fatalf("%d generators, want 2", len(l.Generators))
	}
	g1 := l.Generators[0]
	if g1.Name != "socklab-loadgen-1" || !near(g1.TargetRate, 20) || !near(g1.Live.Rate, 20) || !near(g1.Live.ErrorRate, 2) {
		t.Errorf("generator 1: target %s rate %s errors %s", show(g1.TargetRate), show(g1.Live.Rate), show(g1.Live.ErrorRate))
	}
	if len(g1.Scenarios) != 2 || g1.Scenarios[0].Name != "connid" || g1.Scenarios[0].Errors["timeout"] != 2 || !near(g1.Scenarios[0].P50, 5.76) {
		t.Errorf("generator 1 scenarios = %+v (p50 %s)", g1.Scenarios, show(g1.Scenarios[0].P50))
	}
	mg := l.Merged
	if !near(mg.TargetRate, 50) || !near(mg.Live.Rate, 50) || !near(mg.Live.ErrorRate, 2) {
		t.Errorf("merged: target %s rate %s errors %s, want 50 50 2", show(mg.TargetRate), show(mg.Live.Rate), show(mg.Live.ErrorRate))
	}
	var tt ScenarioFigure
	for _, s := range mg.Scenarios {
		if s.Name == "tinytcp" {
			tt = s
		}
	}
	// 10 under 1.28ms (generator 1) and 30 in 1.28..10.24ms (generator 2):
	// the merged histogram's median is in the second bucket.
	if tt.Requests != 40 || !near(tt.Rate, 40) || tt.P50 == nil || *tt.P50 <= 1.28 || *tt.P99 > 10.24 {
		t.Errorf("merged tinytcp = %+v (p50 %s p99 %s)", tt, show(tt.P50), show(tt.P99))
	}
	// Scaled down to one: the other leaves the map.
	m.Ingest(Round{At: t0.Add(2 * time.Second), Results: []scrape.Result{
		lg("socklab-loadgen-1", loadgenPage(t, 20, map[string][3]int{"tinytcp": {20, 20, 20}})),
	}})
	if st := m.State(); len(st.Load.Generators) != 1 || strings.Contains(strings.Join(names(st), " "), "loadgen-2") {
		t.Errorf("after scaling down: generators %+v, nodes %v", st.Load.Generators, names(st))
	}
}

func writeStatus(t *testing.T, dir string, st CaptureStatus) {
	t.Helper()
	b := fmt.Sprintf(`{"iface":%q,"filter":%q,"file":%q,"packets":%d,"bytes":%d,"drops":%d,"started":%q,"updated":%q}`,
		st.Iface, st.Filter, st.File, st.Packets, st.Bytes, st.Drops, st.Started.Format(time.RFC3339Nano), st.Updated.Format(time.RFC3339Nano))
	tmp := filepath.Join(dir, ".status.tmp")
	if err := os.WriteFile(tmp, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, CaptureStatusFile)); err != nil {
		t.Fatal(err)
	}
}

func TestCapture(t *testing.T) {
	dir := t.TempDir()
	m := New(lab.Services())
	ingest := func(at time.Time) Capture {
		st, err := ReadCaptureStatus(dir)
		m.Ingest(Round{At: at, Capture: st, CaptureErr: err})
		return m.State().Capture
	}
	if c := ingest(t0); c.Recording || c.Status != nil || !strings.Contains(c.Error, "not running") {
		t.Errorf("no status file: %+v", c)
	}
	st := CaptureStatus{Iface: "socklab0", File: "/captures/socklab-20261204-230000.pcap", Packets: 1000, Bytes: 90000, Drops: 2,
		Started: t0, Updated: t0.Add(time.Second)}
	writeStatus(t, dir, st)
	ingest(t0.Add(1200 * time.Millisecond))
	st.Packets, st.Updated = 1500, t0.Add(2*time.Second)
	writeStatus(t, dir, st)
	c := ingest(t0.Add(2200 * time.Millisecond))
	if !c.Recording || c.Status.Drops != 2 || !near(c.PacketRate, 500) || c.OpenCommand != "wireshark captures/socklab-20261204-230000.pcap" {
		t.Errorf("recording: %+v (rate %s)", c, show(c.PacketRate))
	}
	if n := nodeNamed(t, m.State(), "capture"); !n.Up || !near(n.Live.Rate, 500) {
		t.Errorf("capture node = %+v", n)
	}
	// Six seconds without an update: stopped.
	if c := ingest(t0.Add(8 * time.Second)); c.Recording || c.Status == nil {
		t.Errorf("stale status: %+v", c)
	}
	if n := nodeNamed(t, m.State(), "capture"); n.Up || !strings.Contains(n.Error, "older than 5s") {
		t.Errorf("stale capture node = %+v", n)
	}
	if err := os.WriteFile(filepath.Join(dir, CaptureStatusFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := ingest(t0.Add(9 * time.Second)); c.Recording || !strings.Contains(c.Error, CaptureStatusFile) {
		t.Errorf("broken status: %+v", c)
	}
}

func TestImpairments(t *testing.T) {
	tests := []struct {
		give string
		want string // "" for accepted
	}{
		{give: `[]`},
		{give: `[{"service":"autoreply","container":"socklab-autoreply-1","loss_percent":5,"rate":"1mbit","delay":"50ms","jitter":"10ms","since":"2026-12-04T23:00:00Z"}]`},
		{give: `[{"service":"x","loss_percent":101}]`, want: "loss_percent"},
		{give: `[{"loss_percent":1}]`, want: "no service"},
		{give: `{"service":"x"}`, want: "impairments"},
		{give: `[] []`, want: "more than one"},
		{give: `[{"service":"` + strings.Repeat("x", 300) + `"}]`, want: "longer"},
		{give: `[` + strings.Repeat(`{"service":"x"},`, MaxImpairments) + `{"service":"x"}]`, want: "at most"},
	}
	for _, tt := range tests {
		_, err := DecodeImpairments(strings.NewReader(tt.give))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("DecodeImpairments(%.60q) = %v, want success", tt.give, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("DecodeImpairments(%.60q) = %v, want an error about %q", tt.give, err, tt.want)
		}
	}
	list, _ := DecodeImpairments(strings.NewReader(tests[1].give))
	m := New(lab.Services())
	m.SetImpairments(list, t0)
	st := m.State()
	if len(st.Impairments.List) != 1 || !st.Impairments.Updated.Equal(t0) {
		t.Errorf("impairments = %+v", st.Impairments)
	}
	if got := nodeNamed(t, st, "autoreply").Impairment; got != "loss 5%, delay 50ms ±10ms, rate 1mbit" {
		t.Errorf("autoreply impairment = %q", got)
	}
	if got := nodeNamed(t, st, "tinytcp").Impairment; got != "" {
		t.Errorf("tinytcp impairment = %q, want none", got)
	}
}

func TestQuantile(t *testing.T) {
	h := hist{bounds: []float64{1, 2, 4}, cum: []float64{10, 10, 30}, count: 40}
	tests := []struct {
		q    float64
		want float64
	}{
		{0.1, 0.4}, {0.25, 1}, {0.5, 3}, {0.75, 4}, {0.99, 4},
	}
	for _, tt := range tests {
		if got, ok := h.quantile(tt.q); !ok || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, %v; want %v", tt.q, got, ok, tt.want)
		}
	}
	if _, ok := (hist{}).quantile(0.5); ok {
		t.Error("quantile of an empty histogram is known")
	}
}
