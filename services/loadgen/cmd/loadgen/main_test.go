package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/loadgen/internal/labtest"
	"github.com/socklab/socklab/services/loadgen/internal/progress"
	"github.com/socklab/socklab/services/loadgen/internal/result"
	"github.com/socklab/socklab/services/loadgen/internal/scenario"
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

// answerTimeout replaces the 2s default -timeout in runs that must have no
// error: a reply later than that on a loaded machine would be a timeout (a
// loss over UDP) and fail the test.
var answerTimeout = nettest.Timeout.String()

// environ is a clean environment for run: no LOADGEN_ variable of the
// machine running the tests leaks in.
var environ = []string{"LOG_FORMAT=json"}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), args, environ, &out, &errb)
	code = service.ExitCode(err, &errb)
	return out.String(), errb.String(), code
}

func TestHelp(t *testing.T) {
	_, stderr, code := runCmd(t, "-h")
	if code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	for _, want := range []string{"usage: loadgen", "-rate", "$LOADGEN_RATE", "LOADGEN_TARGET_<SCENARIO>", "loadgen merge"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("-h output lacks %q", want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{args: []string{"-rate", "5", "-concurrency", "2"}, want: "not both"},
		{args: []string{"-scenario", "nope"}, want: "no scenario"},
		{args: []string{"-bogus"}, want: "flag provided but not defined"},
		{args: []string{"extra"}, want: "unexpected arguments"},
		{args: []string{"-duration", "-1s"}, want: "duration"},
		{args: []string{"-scenario", "mix", "-mix", "autoreply-tcp=0"}, want: "weight"},
		{args: []string{"merge"}, want: "no result files"},
		{args: []string{"merge", "-x"}, want: "flag provided but not defined"},
		{args: []string{"scenarios", "x"}, want: "no arguments"},
	}
	for _, tt := range tests {
		_, stderr, code := runCmd(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("loadgen %q: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestScenarios(t *testing.T) {
	stdout, _, code := runCmd(t, "scenarios")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, name := range scenario.Names() {
		if !strings.Contains(stdout, name) {
			t.Errorf("scenarios lacks %s:\n%s", name, stdout)
		}
	}
	if !strings.Contains(stdout, "LOADGEN_TARGET_MOVIEDB_GET") {
		t.Errorf("scenarios does not name the target variables:\n%s", stdout)
	}
}

func TestHealthcheckWithoutMetrics(t *testing.T) {
	if _, stderr, code := runCmd(t, "healthcheck"); code != 0 {
		t.Errorf("healthcheck without METRICS_ADDR: exit %d: %s", code, stderr)
	}
}

// Two generators write results; merge reads them back as one report.
func TestRunResultsAndMerge(t *testing.T) {
	bin := labtest.Build(t, "autoreply", "autoreply-server")
	addr := labtest.Start(t, bin, nil, "-addr", "127.0.0.1:0").Addr
	dir := t.TempDir()

	var results []*result.Result
	for _, id := range []string{"gen-a", "gen-b"} {
		stdout, stderr, code := runCmd(t, "-target", addr, "-requests", "300", "-concurrency", "3",
			"-results", dir, "-id", id, "-json", "-progress", "50ms", "-timeout", answerTimeout)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", id, code, stderr)
		}
		// stdout is the result file itself.
		r, err := result.Decode(strings.NewReader(stdout))
		if err != nil {
			t.Fatalf("%s: stdout is no result: %v\n%s", id, err, stdout)
		}
		file, err := result.ReadFile(filepath.Join(dir, id+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != id || file.ID != id || file.Requests != 300 || file.Successes != 300 || r.Latency != file.Latency {
			t.Errorf("%s: result %+v, file %+v", id, r, file)
		}
		results = append(results, file)
		// stderr holds JSON progress lines, the last one marked done.
		var last progress.Line
		lines := 0
		sc := bufio.NewScanner(strings.NewReader(stderr))
		for sc.Scan() {
			// Progress lines are told from log lines by their elapsed_s
			// field, not by interval_s > 0: the done line's interval is
			// rounded to 0 when a tick came less than 0.5ms before it.
			var fields map[string]json.RawMessage
			var l progress.Line
			if json.Unmarshal(sc.Bytes(), &fields) == nil && fields["elapsed_s"] != nil && json.Unmarshal(sc.Bytes(), &l) == nil {
				last, lines = l, lines+1
			}
		}
		if lines == 0 || !last.Done || last.Requests != 300 {
			t.Errorf("%s: %d progress lines, last %+v; want the last one done at 300", id, lines, last)
		}
	}

	stdout, stderr, code := runCmd(t, "merge", filepath.Join(dir, "gen-a.json"), filepath.Join(dir, "gen-b.json"))
	if code != 0 {
		t.Fatalf("merge: exit %d\n%s", code, stderr)
	}
	report := stdout
	for _, want := range []string{"2 generators: gen-a, gen-b", "requests    600", "successes   600", "errors      0",
		"scenario            requests successes  errors tmo/lost      p50      p90      p99    p99.9      max",
		"autoreply-tcp            600       600       0        0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("merge output lacks %q:\n%s", want, stdout)
		}
	}
	// A directory stands for its *.json files.
	if dirOut, stderr, code := runCmd(t, "merge", dir); code != 0 || dirOut != stdout {
		t.Errorf("merge %s: exit %d (%s), output\n%s\nwant the same as naming the files:\n%s", dir, code, stderr, dirOut, stdout)
	}
	if _, stderr, code := runCmd(t, "merge", t.TempDir()); code != 1 || !strings.Contains(stderr, "no *.json") {
		t.Errorf("merge of an empty directory: exit %d, %q", code, stderr)
	}
	stdout, _, code = runCmd(t, "merge", "-json", filepath.Join(dir, "gen-a.json"), filepath.Join(dir, "gen-b.json"))
	m, err := result.Decode(strings.NewReader(stdout))
	if code != 0 || err != nil {
		t.Fatalf("merge -json: exit %d, %v", code, err)
	}
	want, _ := result.Merge(results...)
	if m.Requests != 600 || m.Latency != want.Latency || m.Seconds != want.Seconds {
		t.Errorf("merge -json = %+v, want %+v", m, want)
	}

	if _, stderr, code := runCmd(t, "merge", filepath.Join(dir, "missing.json")); code != 1 || !strings.Contains(stderr, "missing.json") {
		t.Errorf("merge of a missing file: exit %d, %q", code, stderr)
	}

	// -since leaves out a generator whose last run ended long ago (one
	// scaled away), and says so.
	old := *results[0]
	old.ID, old.Start, old.End = "gen-old", old.Start.Add(-time.Hour), old.End.Add(-time.Hour)
	var buf bytes.Buffer
	if err := old.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gen-old.json"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if all, _, code := runCmd(t, "merge", dir); code != 0 || !strings.Contains(all, "3 generators: gen-a, gen-b, gen-old") {
		t.Errorf("merge without -since: exit %d, want all 3 generators:\n%s", code, all)
	}
	recent, stderr, code := runCmd(t, "merge", "-since", "10m", dir)
	if code != 0 || recent != report || !strings.Contains(stderr, "leaving out") || !strings.Contains(stderr, "gen-old") {
		t.Errorf("merge -since 10m: exit %d, stderr %q, output\n%s\nwant the report of gen-a and gen-b:\n%s", code, stderr, recent, report)
	}
	if _, stderr, code := runCmd(t, "merge", "-since", "10m", filepath.Join(dir, "gen-old.json")); code != 1 || !strings.Contains(stderr, "no result ended within") {
		t.Errorf("merge -since of only an old result: exit %d, %q", code, stderr)
	}
	if _, stderr, code := runCmd(t, "merge", "-since", "-1m", dir); code != 2 || !strings.Contains(stderr, "negative") {
		t.Errorf("merge -since -1m: exit %d, %q", code, stderr)
	}
}

func TestRunTextSummary(t *testing.T) {
	bin := labtest.Build(t, "autoreply", "autoreply-server")
	addr := labtest.Start(t, bin, nil, "-addr", "127.0.0.1:0").Addr
	stdout, stderr, code := runCmd(t, "-scenario", "mix", "-mix", "autoreply-tcp=3,autoreply-udp=1",
		"-target", "autoreply-tcp="+addr+" autoreply-udp="+addr, "-rate", "400", "-connections", "2",
		"-requests", "200", "-progress", "100ms", "-timeout", answerTimeout)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"mix: open loop at 400 req/s over 2 connections", "requests    200", "successes   200",
		"lost        0 (0.000% of datagram requests)", "autoreply-tcp", "150", "autoreply-udp", "p99.9"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "req/s  total") {
		t.Errorf("no human progress line on stderr:\n%s", stderr)
	}
}

// A run where nothing succeeds says so with exit status 1.
func TestRunNothingSucceeds(t *testing.T) {
	stdout, stderr, code := runCmd(t, "-target", nettest.RefusedAddr(t), "-requests", "5", "-progress", "0")
	if code != 1 || !strings.Contains(stderr, "no request succeeded (connect)") || !strings.Contains(stdout, "connect 5") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}

// The metrics endpoint serves the run's counters while it runs.
func TestMetrics(t *testing.T) {
	bin := labtest.Build(t, "autoreply", "autoreply-server")
	addr := labtest.Start(t, bin, nil, "-addr", "127.0.0.1:0").Addr
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	// The run lasts until the test has seen the counters, then is
	// interrupted: a fixed duration would race with the polling below.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		env := append([]string{"METRICS_ADDR=127.0.0.1:0"}, environ...)
		done <- run(ctx, []string{"-target", addr, "-rate", "200", "-duration", "1h", "-progress", "50ms"}, env, io.Discard, pw)
		pw.Close()
	}()
	metricsAddr, _ := nettest.WaitLog(t, pr, "metrics")["addr"].(string)
	var body string
	deadline := time.Now().Add(nettest.Timeout)
	for !strings.Contains(body, `loadgen_successes_total{scenario="autoreply-tcp"}`) || !strings.Contains(body, `loadgen_latency_seconds{quantile="0.99"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("no loadgen counters in /metrics:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
		t.Error("metrics still served after the run")
	}
}

// A running generator's result file appears within seconds of its start
// and merges while the round goes on: `make results` need not wait for the
// round's end.
func TestResultFileDuringTheRound(t *testing.T) {
	bin := labtest.Build(t, "autoreply", "autoreply-server")
	addr := labtest.Start(t, bin, nil, "-addr", "127.0.0.1:0").Addr
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-scenario", "mix", "-mix", "autoreply-tcp=1,autoreply-udp=1",
			"-target", "autoreply-tcp=" + addr + " autoreply-udp=" + addr, "-rate", "200", "-duration", "1m",
			"-results", dir, "-id", "gen-live", "-progress", "100ms", "-timeout", answerTimeout},
			environ, io.Discard, io.Discard)
	}()
	path := filepath.Join(dir, "gen-live.json")
	deadline := time.Now().Add(10 * time.Second)
	var r *result.Result
	for {
		var err error
		if r, err = result.ReadFile(path); err == nil && r.Successes > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no result file with successes 10s into the round: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stdout, stderr, code := runCmd(t, "merge", dir)
	if code != 0 || !strings.Contains(stdout, "autoreply-udp") || !strings.Contains(stdout, "gen-live") {
		t.Errorf("merge during the round: exit %d, %s\n%s", code, stderr, stdout)
	}
	if len(r.Scenarios) != 2 || r.Scenarios[0].Latency == nil {
		t.Errorf("live file's scenarios: %+v", r.Scenarios)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("interrupted run: %v", err)
	}
}
