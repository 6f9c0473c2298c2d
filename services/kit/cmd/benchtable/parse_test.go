package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseGo(t *testing.T) {
	const pkg = "pkg: github.com/socklab/socklab/services/autoreply/internal/server\n"
	tests := []struct {
		name  string
		give  string
		want  []Sample
		notes []Note
	}{
		{
			name: "two rounds, procs suffix, package below services",
			give: pkg +
				"BenchmarkTCP/conns=1/impl=ours-2   \t 100\t 54997 ns/op\t 18190 ops/s\t 666 B/op\t 0 allocs/op\n" +
				"BenchmarkTCP/conns=1/impl=ours-2   \t 100\t 50000 ns/op\t 20000 ops/s\n",
			want: []Sample{
				{Workload: "autoreply/server TCP/conns=1", Impl: "ours", Round: 1,
					Units:  []string{"ns/op", "ops/s", "B/op", "allocs/op"},
					Values: map[string]float64{"ns/op": 54997, "ops/s": 18190, "B/op": 666, "allocs/op": 0}},
				{Workload: "autoreply/server TCP/conns=1", Impl: "ours", Round: 2,
					Units:  []string{"ns/op", "ops/s"},
					Values: map[string]float64{"ns/op": 50000, "ops/s": 20000}},
			},
		},
		{
			name: "the same name in another package is another benchmark",
			give: pkg + "BenchmarkX-2 \t 10\t 5 ns/op\n" +
				"pkg: example.com/other\n" + "BenchmarkX-2 \t 10\t 6 ns/op\n",
			want: []Sample{
				{Workload: "autoreply/server X", Round: 1, Units: []string{"ns/op"}, Values: map[string]float64{"ns/op": 5}},
				{Workload: "example.com/other X", Round: 1, Units: []string{"ns/op"}, Values: map[string]float64{"ns/op": 6}},
			},
		},
		{
			name: "a result split by the benchmark's own output",
			give: pkg + "BenchmarkX/impl=raw-2         \t" + "\n" +
				"some log line the benchmark printed\n" +
				"     100\t 7 ns/op\t 3 ops/s\n",
			want: []Sample{{Workload: "autoreply/server X", Impl: "raw", Round: 1,
				Units: []string{"ns/op", "ops/s"}, Values: map[string]float64{"ns/op": 7, "ops/s": 3}}},
		},
		{
			name: "failures and skips, a parent's failure folded into its child's",
			give: pkg +
				"--- FAIL: BenchmarkUDP/interval=20µs/impl=ours\n" +
				"    bench_test.go:233: no reply within the timeout\n" +
				"--- FAIL: BenchmarkUDP\n" +
				"--- SKIP: BenchmarkTCPFile/impl=iperf3\n" +
				"    bench_test.go:12: iperf3 not installed\n" +
				"FAIL\tgithub.com/socklab/socklab/services/moviedb/cmd/moviedb-server [build failed]\n" +
				"FAIL\tgithub.com/socklab/socklab/services/autoreply/internal/server\t1.2s\n",
			notes: []Note{
				{"autoreply/server UDP/interval=20µs impl=ours", "failed: no reply within the timeout"},
				{"autoreply/server TCPFile impl=iperf3", "skipped: iperf3 not installed"},
				{"moviedb/cmd/moviedb-server", "build failed"},
			},
		},
		{
			name: "lines that are not results",
			give: pkg + "goos: linux\nBenchmarkX is slow\nBenchmarkY-2 \t 10\t x ns/op\nPASS\nok \tpkg\t0.1s\n",
		},
	}
	for _, tt := range tests {
		got, notes, err := ParseGo(strings.NewReader(tt.give))
		if err != nil {
			t.Fatalf("%s: ParseGo: %v", tt.name, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ParseGo(%q) =\n%+v\nwant\n%+v", tt.name, tt.give, got, tt.want)
		}
		if !reflect.DeepEqual(notes, tt.notes) {
			t.Errorf("%s: ParseGo(%q) notes = %+v, want %+v", tt.name, tt.give, notes, tt.notes)
		}
	}
}

// TestParseGoRealOutput reads two rounds of a real run over several
// modules (each round a separate go test -count 1, as deploy/bench.sh runs
// them).
func TestParseGoRealOutput(t *testing.T) {
	f, err := os.Open("testdata/go.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	samples, notes, err := ParseGo(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		t.Errorf("notes = %v, want none", notes)
	}
	rounds := map[int]int{}
	for _, s := range samples {
		rounds[s.Round]++
	}
	if rounds[1] != 48 || rounds[2] != 48 || len(rounds) != 2 {
		t.Errorf("samples by round = %v, want 48 in round 1 and 48 in round 2", rounds)
	}
	first := samples[0]
	if first.Workload != "autoreply/server TCP/conns=1/mode=closed" || first.Impl != "ours" || first.Values["ops/s"] != 10451 {
		t.Errorf("first sample = %+v", first)
	}
}

func TestParseTSV(t *testing.T) {
	tests := []struct {
		give    string
		want    []Sample
		notes   []Note
		wantErr string
	}{
		{
			give: "# comment\n\nudp/size=64\t1\tours\tp50-us\t27\nudp/size=64\t1\tours\tp99-us\t84\n" +
				"udp/size=64\t1\tsockperf\tp50-us\t65.446\nlab\t-\tskipped\t-\tlab not running (make up)\n",
			want: []Sample{
				{Workload: "udp/size=64", Impl: "ours", Round: 1, External: true,
					Units: []string{"p50-us", "p99-us"}, Values: map[string]float64{"p50-us": 27, "p99-us": 84}},
				{Workload: "udp/size=64", Impl: "sockperf", Round: 1, External: true,
					Units: []string{"p50-us"}, Values: map[string]float64{"p50-us": 65.446}},
			},
			notes: []Note{{"lab", "skipped: lab not running (make up)"}},
		},
		{give: "w\t1\tours\tops/s\n", wantErr: "line 1: 4 fields"},
		{give: "w\t0\tours\tops/s\t1\n", wantErr: "round"},
		{give: "w\tx\tours\tops/s\t1\n", wantErr: "round"},
		{give: "w\t1\tours\tops/s\tfast\n", wantErr: "value"},
		{give: "\t1\tours\tops/s\t1\n", wantErr: "empty workload"},
		{give: "w\t1\t\tops/s\t1\n", wantErr: "empty impl"},
	}
	for _, tt := range tests {
		got, notes, err := ParseTSV(strings.NewReader(tt.give))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTSV(%q) error = %v, want one about %q", tt.give, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTSV(%q): %v", tt.give, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(notes, tt.notes) {
			t.Errorf("ParseTSV(%q) = %+v, %+v\nwant %+v, %+v", tt.give, got, notes, tt.want, tt.notes)
		}
	}
}

func FuzzParseGo(f *testing.F) {
	for _, s := range []string{
		"pkg: a/services/x/internal/y\nBenchmarkA/impl=ours-2 \t 10\t 5 ns/op\t 3 ops/s\n",
		"BenchmarkA-2\nnoise\n 10\t 5 ns/op\n--- FAIL: BenchmarkA\n    a_test.go:1: why\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		samples, _, err := ParseGo(strings.NewReader(in))
		if err != nil {
			return // only a line longer than the scanner's limit
		}
		// Whatever the input, the table is built and rendered.
		var b strings.Builder
		if err := Render(&b, Build(samples), nil); err != nil {
			t.Fatal(err)
		}
	})
}
