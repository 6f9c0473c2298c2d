package scenario

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/loadgen/internal/labtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	labtest.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var tags atomic.Int64

// opts are the options of every test run, with target. Each has its own
// tag, as each run of a generator has.
func opts(target string) Options {
	return Options{
		Target: target, Timeout: 5 * time.Second, Size: 100,
		FileSize: 100_000, StreamCount: 5, StreamInterval: time.Millisecond, StreamSize: 64,
		Tag: fmt.Sprintf("test%d", tags.Add(1)),
	}
}

// run runs the scenario name against target with cfg (its Parts filled in).
func run(t *testing.T, name string, o Options, cfg engine.Config) *engine.Stats {
	t.Helper()
	spec, ok := Lookup(name)
	if !ok {
		t.Fatalf("no scenario %s", name)
	}
	sc, err := spec.New(o)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	cfg.Parts = []engine.Part{{Name: name, Weight: 1, Scenario: sc}}
	st, err := engine.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wantAllGood fails the test unless every one of want requests succeeded.
func wantAllGood(t *testing.T, st *engine.Stats, want int64) {
	t.Helper()
	if st.Total.Requests != want || st.Total.Successes != want || len(st.Total.Errors) != 0 {
		t.Errorf("counts = %+v, want %d successes and no error", st.Total, want)
	}
	if st.Latency.Count() != want {
		t.Errorf("%d latencies, want %d", st.Latency.Count(), want)
	}
}

// wantAllKind fails the test unless every one of want requests failed with
// kind.
func wantAllKind(t *testing.T, st *engine.Stats, want int64, kind string) {
	t.Helper()
	if st.Total.Requests != want || st.Total.Errors[kind] != want {
		t.Errorf("counts = %+v, want %d errors of kind %s", st.Total, want, kind)
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		give string
		want string // formatted result, or "error: <part of it>"
	}{
		{give: "autoreply-tcp=3,autoreply-udp=1", want: "autoreply-tcp=3 autoreply-udp=1"},
		{give: " autoreply-udp , autoreply-tcp=2 ", want: "autoreply-udp=1 autoreply-tcp=2"},
		{give: "", want: "error: empty"},
		{give: "autoreply-tcp=0", want: "error: weight"},
		{give: "autoreply-tcp=x", want: "error: weight"},
		{give: "nope=1", want: "error: no scenario"},
		{give: "mix=1", want: "error: no scenario"},
		{give: "autoreply-tcp,autoreply-tcp", want: "error: twice"},
		{give: "autoreply-tcp=9999,autoreply-udp=9999", want: "error: add up"},
	}
	for _, tt := range tests {
		ws, err := ParseMix(tt.give)
		var got string
		if err != nil {
			got = "error: " + err.Error()
		} else {
			var parts []string
			for _, w := range ws {
				parts = append(parts, fmt.Sprintf("%s=%d", w.Name, w.Weight))
			}
			got = strings.Join(parts, " ")
		}
		if strings.HasPrefix(tt.want, "error: ") {
			if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, strings.TrimPrefix(tt.want, "error: ")) {
				t.Errorf("ParseMix(%q) = %s, want %s", tt.give, got, tt.want)
			}
		} else if got != tt.want {
			t.Errorf("ParseMix(%q) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

func TestAppendPayload(t *testing.T) {
	tests := []struct {
		seq  uint64
		size int
		want string
	}{
		{seq: 1, size: 1, want: "1"},
		{seq: 1, size: 5, want: "1-abc"},
		{seq: 36, size: 8, want: "10-abcde"},
		{seq: 7, size: 70, want: "7-" + filler + filler[:70-2-len(filler)]},
	}
	for _, tt := range tests {
		if got := string(appendPayload(nil, tt.seq, tt.size)); got != tt.want {
			t.Errorf("appendPayload(%d, %d) = %q, want %q", tt.seq, tt.size, got, tt.want)
		}
	}
}

func TestSpecsHaveTargets(t *testing.T) {
	for _, s := range Specs {
		if s.Target == "" || s.New == nil || s.Help == "" {
			t.Errorf("scenario %s lacks a default target, constructor or help", s.Name)
		}
	}
}
