package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeDocker writes a docker stand-in that lists two filestream replicas,
// a connid container and a load generator that stops once listed (its
// namespace cannot be joined, inspect says it no longer runs), logs every
// call, and answers `run ... apply` and
// `run ... show` from a state file per container, as the image would.
func fakeDocker(t *testing.T) (path, logFile string) {
	t.Helper()
	dir := t.TempDir()
	logFile = filepath.Join(dir, "calls.log")
	script := `#!/bin/sh
echo "$*" >> ` + logFile + `
dir=` + dir + `
if [ "$1" = ps ]; then
  printf 'id2 socklab-filestream-2 filestream\nid1 socklab-filestream-1 filestream\nid3 socklab-connid-1 connid\nid4 socklab-loadgen-1 loadgen\n'
  exit 0
fi
if [ "$1" = inspect ]; then
  case "$*" in *id4*) echo false ;; *) echo true ;; esac
  exit 0
fi
# run --rm --network container:ID ... IMAGE CMD ARGS
id=$(echo "$*" | sed -n 's/.*--network container:\([^ ]*\).*/\1/p')
if [ "$id" = id4 ]; then
  echo "docker: Error response from daemon: cannot join network of a non running container: id4" >&2
  exit 125
fi
case "$*" in
  *" apply "*-loss*) echo '{"service":"","container":"","loss_percent":10,"rate":"","delay":"","jitter":"","since":"2026-12-04T23:00:00Z"}' | tee "$dir/$id" ;;
  *" apply "*) rm -f "$dir/$id"; echo null ;;
  *" show "*) if [ -f "$dir/$id" ]; then cat "$dir/$id"; else echo null; fi ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
`
	path = filepath.Join(dir, "docker")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, logFile
}

type dashboard struct {
	mu   sync.Mutex
	puts [][]map[string]any
}

func (d *dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut || r.URL.Path != "/api/impairments" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		return
	}
	var list []map[string]any
	if err := json.NewDecoder(r.Body).Decode(&list); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	d.puts = append(d.puts, list)
	d.mu.Unlock()
}

func runImpair(t *testing.T, environ []string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, environ, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return stdout.String(), err
}

func TestSetListClear(t *testing.T) {
	docker, calls := fakeDocker(t)
	dash := &dashboard{}
	srv := httptest.NewServer(dash)
	defer srv.Close()
	env := []string{"IMPAIR_DOCKER=" + docker, "IMPAIR_DASHBOARD=" + srv.URL, "COMPOSE_PROJECT_NAME=socklab-e2e"}

	out, err := runImpair(t, env, "set", "filestream", "-loss", "10%")
	if err != nil {
		t.Fatalf("set: %v", err)
	}
	for _, want := range []string{"socklab-filestream-1: loss 10%, both directions", "socklab-filestream-2: loss 10%, both directions"} {
		if !strings.Contains(out, want) {
			t.Errorf("set output %q lacks %q", out, want)
		}
	}
	log, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"label=com.docker.compose.project=socklab-e2e", "network=socklab-e2e_lab",
		"run --rm --network container:id1 --cap-drop ALL --cap-add NET_ADMIN --user 0:0",
		"socklab/impair:dev apply -dev eth0 -since ", "-loss 10%",
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("docker calls lack %q:\n%s", want, log)
		}
	}
	if strings.Contains(string(log), "container:id3 --cap-drop ALL --cap-add NET_ADMIN --user 0:0 --read-only --security-opt no-new-privileges:true --log-driver none socklab/impair:dev apply") {
		t.Errorf("set filestream touched connid:\n%s", log)
	}

	out, err = runImpair(t, env, "list", "-json")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list -json: %v in %q", err, out)
	}
	if len(list) != 2 || list[0]["container"] != "socklab-filestream-1" || list[0]["service"] != "filestream" || list[0]["loss_percent"] != 10.0 {
		t.Errorf("list -json = %v, want the two filestream replicas at 10%%", list)
	}
	dash.mu.Lock()
	if len(dash.puts) != 1 || len(dash.puts[0]) != 2 {
		t.Errorf("dashboard got %v, want one PUT of 2 entries", dash.puts)
	}
	dash.mu.Unlock()

	if _, err := runImpair(t, env, "clear", "filestream"); err != nil {
		t.Fatalf("clear: %v", err)
	}
	out, err = runImpair(t, env, "list")
	if err != nil || strings.TrimSpace(out) != "no impairment in force" {
		t.Errorf("list after clear = %q, %v", out, err)
	}
	dash.mu.Lock()
	if len(dash.puts) != 2 || len(dash.puts[1]) != 0 {
		t.Errorf("dashboard after clear got %v, want an empty list", dash.puts)
	}
	dash.mu.Unlock()
}

func TestNoDashboardIsFine(t *testing.T) {
	docker, _ := fakeDocker(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	env := []string{"IMPAIR_DOCKER=" + docker, "IMPAIR_DASHBOARD=" + url}
	if _, err := runImpair(t, env, "set", "filestream", "-loss", "10%"); err != nil {
		t.Errorf("set without a dashboard: %v", err)
	}
}

func TestErrors(t *testing.T) {
	docker, _ := fakeDocker(t)
	env := []string{"IMPAIR_DOCKER=" + docker, "IMPAIR_DASHBOARD="}
	tests := []struct {
		args  []string
		want  string
		usage bool
	}{
		{nil, "", true},
		{[]string{"frobnicate"}, "unknown command", true},
		{[]string{"set"}, "needs a SERVICE", true},
		{[]string{"set", "filestream", "extra"}, "unexpected", true},
		{[]string{"set", "filestream", "-loss", "150%"}, "loss", false},
		{[]string{"set", "filestream", "-rate", "2000"}, "unit", false},
		{[]string{"set", "filestream", "-jitter", "5ms"}, "jitter needs a delay", false},
		{[]string{"set", "tinytcp", "-loss", "5%"}, "no running container of tinytcp", false},
	}
	for _, tt := range tests {
		_, err := runImpair(t, env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, errUsage) != tt.usage {
			t.Errorf("impair %q = %v, want an error with %q (usage %v)", tt.args, err, tt.want, tt.usage)
		}
	}
}
