package main

import (
	"bytes"
	"flag"
	"io"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/table.md")

func TestMedian(t *testing.T) {
	tests := []struct {
		give []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{0.9, 0.9, 5}, 0.9},
	}
	for _, tt := range tests {
		give := append([]float64(nil), tt.give...)
		if got := median(give); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.give, got, tt.want)
		}
		if !reflect.DeepEqual(give, tt.give) {
			t.Errorf("median(%v) reordered its argument to %v", tt.give, give)
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}

func goSample(workload, impl string, round int, kv ...any) Sample {
	s := Sample{Workload: workload, Impl: impl, Round: round}
	for i := 0; i < len(kv); i += 2 {
		s.add(kv[i].(string), kv[i+1].(float64))
	}
	return s
}

func TestBuild(t *testing.T) {
	const tcp = "autoreply/server TCP/conns=1"
	const fan = "moviedb/fleet Fanout/servers=3"
	samples := []Sample{
		// -count style (A A B B) and round style (A B A B) pair the same way.
		goSample(tcp, "ours", 1, "ns/op", 10.0, "ops/s", 90.0),
		goSample(tcp, "ours", 2, "ns/op", 10.0, "ops/s", 50.0),
		goSample(tcp, "raw", 1, "ns/op", 10.0, "ops/s", 100.0),
		goSample(tcp, "perline", 1, "ops/s", 10.0),
		goSample(tcp, "raw", 2, "ns/op", 10.0, "ops/s", 100.0),
		goSample(tcp, "ours", 3, "ops/s", 80.0), // no raw in round 3
		// An inline reference, and figures of ours alone.
		goSample(fan, "ours", 1, "fanout-p50-µs", 120.0, "ops/s", 5.0, "slowest-single-p50-µs", 100.0),
		goSample("connid/store Claim", "", 1, "ns/op", 5.0, "B/id", 900.0),
		goSample("filestream/server Memory", "ours", 1, "ns/op", 5.0, "heap-peak-MB", 1.5),
		goSample("filestream/server UDPStream/interval=5µs", "ours", 1, "ns/op", 5.0, "loss%", 0.5, "ops/s", 1e5),
		// A benchmark without impl and without figures is left out.
		goSample("autoreply/server Reply", "", 1, "ns/op", 5.0),
		// External rows compare every metric.
		{Workload: "udp", Impl: "ours", Round: 1, External: true, Units: []string{"p50-us", "p99-us"},
			Values: map[string]float64{"p50-us": 20, "p99-us": 80}},
		{Workload: "udp", Impl: "sockperf", Round: 1, External: true, Units: []string{"p50-us", "p99-us"},
			Values: map[string]float64{"p50-us": 40, "p99-us": 80}},
	}
	want := []Row{
		{Workload: tcp, Ours: "ours", Ref: "raw", Unit: "ops/s", OursVal: 70, RefVal: 100, Ratios: []float64{0.9, 0.5}, Target: &targets[0]},
		{Workload: tcp, Ours: "ours", Ref: "perline", Unit: "ops/s", OursVal: 90, RefVal: 10, Ratios: []float64{9}},
		{Workload: fan, Ours: "ours", Ref: "slowest-single", Unit: "p50-µs", OursVal: 120, RefVal: 100, Ratios: []float64{1.2}, Target: &targets[5]},
		{Workload: "connid/store Claim", Unit: "B/id", OursVal: 900},
		{Workload: "filestream/server Memory", Ours: "ours", Unit: "heap-peak-MB", OursVal: 1.5},
		{Workload: "filestream/server UDPStream/interval=5µs", Ours: "ours", Unit: "ops/s", OursVal: 1e5},
		{Workload: "filestream/server UDPStream/interval=5µs", Ours: "ours", Unit: "loss%", OursVal: 0.5},
		{Workload: "udp", Ours: "ours", Ref: "sockperf", Unit: "p50-us", OursVal: 20, RefVal: 40, Ratios: []float64{0.5}},
		{Workload: "udp", Ours: "ours", Ref: "sockperf", Unit: "p99-us", OursVal: 80, RefVal: 80, Ratios: []float64{1}},
	}
	got := Build(samples)
	if len(got) != len(want) {
		t.Fatalf("Build made %d rows, want %d:\n%s", len(got), len(want), dump(got))
	}
	for i := range want {
		g, w := got[i], want[i]
		same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
		if g.Workload != w.Workload || g.Ours != w.Ours || g.Ref != w.Ref || g.Unit != w.Unit ||
			!same(g.OursVal, w.OursVal) || !same(g.RefVal, w.RefVal) || g.Target != w.Target ||
			!approx(g.Ratios, w.Ratios) {
			t.Errorf("row %d = %+v\nwant      %+v", i, g, w)
		}
	}
}

func approx(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9 {
			return false
		}
	}
	return true
}

func dump(rows []Row) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(
			strings.Join([]string{r.Workload, r.Ours, r.Ref, r.Unit}, " | "), "\n", " "), "  ", " ")))
		b.WriteString("\n")
	}
	return b.String()
}

func TestTargetFor(t *testing.T) {
	tests := []struct {
		workload, ref, unit string
		want                string
	}{
		{"autoreply/server TCP/conns=1", "raw", "ops/s", "≥ 0.9"},
		{"tinytcp/server Pipelined/conns=64", "perline", "ops/s", "≥ 5"},
		{"filestream/server TCPFile/size=123456789", "iperf3", "MB/s", "≥ 0.8"},
		{"filestream/server TCPFile/size=1048576", "iperf3", "MB/s", ""},
		{"connid/server Handshake/clients=8", "raw", "ops/s", "≥ 0.8"},
		{"moviedb/fleet Fanout/servers=10", "slowest-single", "p50-µs", "≤ 1.2"},
		{"loadgen/scenario ClosedLoop/conns=16", "raw", "ops/s", "≥ 0.95"},
		{"open-loop p99 at 70% capacity/autoreply-tcp rate=7000/s", "raw", "p99-us", "≤ 1.3"},
		{"capture/capture Record/size=100", "raw", "MB/s", "≥ 0.9"},       // issue 8: every ours vs raw
		{"capture/filter Match/pkt=udp4", "gopacket", "ops/s", ""},        // no target for other peers
		{"some/latency", "raw", "p99-us", ""},                             // ≥ 0.9 is for throughputs
		{"lab in containers vs host loopback/x", "loopback", "ops/s", ""}, // report only
		{"udp ping-pong/size=64", "sockperf", "p50-us", ""},
		{"lab throughput while recording socklab0/autoreply-udp", "tcpdump", "ops/s", "≥ 0.9"},
		{"capture kernel drops under lab load/autoreply-udp", "", "drops", "≤ 0 every round"},
		{"capture kernel drops under lab load/autoreply-udp", "tcpdump", "drops", ""}, // a figure, not a ratio
		{"connid/store Claim", "", "B/id", ""},                                        // no target for figures alone
	}
	for _, tt := range tests {
		got := ""
		if tg := targetFor(tt.workload, tt.ref, tt.unit); tg != nil {
			got = tg.String()
		}
		if got != tt.want {
			t.Errorf("targetFor(%q, %q, %q) = %q, want %q", tt.workload, tt.ref, tt.unit, got, tt.want)
		}
	}
}

// TestAbsoluteTarget renders a figure held to a bound in every round: one
// round over it fails the row even when the median is within it.
func TestAbsoluteTarget(t *testing.T) {
	const w = "capture kernel drops under lab load/autoreply-udp conns=8 c=64"
	tests := []struct {
		rounds []float64
		want   string
	}{
		{[]float64{0, 0, 0}, "| " + w + " | 0 drops (lower is better), rounds 0–0 of 3 | — | — | ≤ 0 every round | yes |"},
		{[]float64{0, 12, 0}, "| " + w + " | 0 drops (lower is better), rounds 0–12.0 of 3 | — | — | ≤ 0 every round | **no** |"},
		{[]float64{7}, "| " + w + " | 7.00 drops (lower is better) | — | — | ≤ 0 every round | **no** |"},
	}
	for _, tt := range tests {
		var samples []Sample
		for i, v := range tt.rounds {
			samples = append(samples, Sample{Workload: w, Impl: "ours", Round: i + 1, External: true,
				Units: []string{"drops"}, Values: map[string]float64{"drops": v}})
		}
		var b strings.Builder
		if err := Render(&b, Build(samples), nil); err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(b.String(), "\n")[2]; got != tt.want {
			t.Errorf("rounds %v render\n%s\nwant\n%s", tt.rounds, got, tt.want)
		}
	}
}

func TestNum(t *testing.T) {
	tests := []struct {
		give float64
		want string
	}{
		{0, "0"}, {0.01231, "0.0123"}, {3.385, "3.38"}, {22.99, "23.0"}, {901.3, "901"},
		{9581, "9581"}, {18190, "18.2k"}, {820000, "820k"}, {2794912, "2.79M"}, {math.NaN(), "?"},
	}
	for _, tt := range tests {
		if got := num(tt.give); got != tt.want {
			t.Errorf("num(%v) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestGolden renders the table of real output: two rounds of Go
// benchmarks, a failed benchmark, and two rounds of deploy/bench.sh's
// external measurements. Run with -update after a deliberate change.
func TestGolden(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"-tsv", "testdata/ext.tsv", "testdata/go.txt", "testdata/fail.txt"}, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("run = %d, stderr %q", code, errOut.String())
	}
	if *update {
		if err := os.WriteFile("testdata/table.md", out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/table.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("table differs from testdata/table.md (go test -update to accept):\n%s", out.String())
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		args  []string
		stdin string
		want  int
	}{
		{[]string{"-nope"}, "", 2},
		{[]string{"-h"}, "", 0},
		{[]string{"testdata/missing.txt"}, "", 1},
		{[]string{"-tsv", "testdata/go.txt", "testdata/go.txt"}, "", 1}, // not a TSV
		{nil, "PASS\nok \tx\t0.1s\n", 1},                                // no results
		{nil, "pkg: p\nBenchmarkA/impl=ours-2 \t 1\t 2 ns/op\t 3 ops/s\n", 0},
	}
	for _, tt := range tests {
		if got := run(tt.args, strings.NewReader(tt.stdin), io.Discard, io.Discard); got != tt.want {
			t.Errorf("run(%q) = %d, want %d", tt.args, got, tt.want)
		}
	}
}
