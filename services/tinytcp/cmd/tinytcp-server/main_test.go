package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start runs the command until the end of the test and returns the
// addresses it logged.
func start(t *testing.T, args, environ []string) (addr, metricsAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, environ, io.Discard, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run returned %v after cancel, want nil", err)
		}
	})
	if !strings.Contains(strings.Join(args, " "), "-metrics-addr") {
		return nettest.WaitLog(t, pr, "listening")["addr"].(string), ""
	}
	// nettest.WaitLog drains the log once it has found its line, so the
	// two addresses are taken from one pass.
	found := make(chan [2]string, 1)
	go func() {
		var addrs [2]string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			switch m["msg"] {
			case "listening":
				addrs[0], _ = m["addr"].(string)
			case "metrics":
				addrs[1], _ = m["addr"].(string)
				found <- addrs
				io.Copy(io.Discard, pr)
				return
			}
		}
		close(found)
	}()
	select {
	case addrs, ok := <-found:
		if !ok || addrs[0] == "" {
			t.Fatalf("log ended without the listening and metrics lines")
		}
		return addrs[0], addrs[1]
	case <-time.After(nettest.Timeout):
		t.Fatal("no listening and metrics log lines")
		return "", ""
	}
}

func TestRun(t *testing.T) {
	addr, metricsAddr := start(t,
		[]string{"-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0", "-banner", "WELCOME to the test"},
		[]string{"TZ=Asia/Kolkata", "TINYTCP_MAX_LINE=16"})
	lc := nettest.DialLines(t, addr)
	lc.Expect("WELCOME to the test")
	lc.Send("TIME")
	reply := lc.ReadLine()
	r, err := proto.ParseReply([]byte(reply))
	if err != nil || r.Kind != proto.KindTime || !strings.HasSuffix(reply, "+05:30") {
		t.Errorf("TIME got %q (%v), want a time at +05:30", reply, err)
	}
	lc.Send("ECHO 1234567890") // 15 bytes: within TINYTCP_MAX_LINE
	lc.Expect("ECHO 1234567890")
	lc.Send("ECHO 12345678901") // 16 bytes
	lc.Expect("ECHO 12345678901")
	lc.Send("ECHO 123456789012") // 17 bytes
	lc.Expect("ERROR LINE_TOO_LONG")
	lc.ExpectEOF()

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`tinytcp_commands_total{verb="TIME"} 1`,
		`tinytcp_commands_total{verb="ECHO"} 2`,
		`tinytcp_errors_total{code="LINE_TOO_LONG"} 1`,
		`tinytcp_connections_total 1`,
		`tinytcp_command_seconds_count 3`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	addr, _ := start(t, []string{"-addr", "127.0.0.1:0"}, nil)
	ctx := context.Background()
	if err := run(ctx, []string{"healthcheck", "-addr", addr}, nil, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck of a running server: %v", err)
	}

	ln := nettest.ListenTCP(t) // greets with something else
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if c, err := ln.Accept(); err == nil {
			io.WriteString(c, "HELLO\n")
			c.Close()
		}
	}()
	if err := run(ctx, []string{"healthcheck", "-addr", ln.Addr().String()}, nil, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck of a server greeting HELLO succeeded")
	}
	<-accepted

	if err := run(ctx, []string{"healthcheck", "-addr", nettest.RefusedAddr(t)}, nil, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck of a closed port succeeded")
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args     []string
		environ  []string
		wantCode int
		wantErr  string
	}{
		{args: []string{"-h"}, wantCode: 0, wantErr: "TINYTCP_IDLE_TIMEOUT"},
		// The lab map's port, a variable's override of it, and the shared
		// connection limits.
		{args: []string{"-h"}, wantCode: 0, wantErr: `(default "` + lab.TinyTCP.ListenAddr() + `") [$TINYTCP_ADDR]`},
		{args: []string{"-h"}, environ: []string{"TINYTCP_ADDR=127.0.0.1:7"}, wantCode: 0, wantErr: `(default "127.0.0.1:7") [$TINYTCP_ADDR]`},
		{args: []string{"-h"}, wantCode: 0, wantErr: `(default 256) [$TINYTCP_MAX_CONNS_PER_SOURCE]`},
		{args: []string{"-max-conns-per-source", "0"}, wantCode: 2, wantErr: "max-conns-per-source must be -1 (no limit) or at least 1"},
		{args: []string{"extra"}, wantCode: 2, wantErr: "unexpected arguments"},
		{args: []string{"-nope"}, wantCode: 2, wantErr: "flag provided but not defined"},
		{args: []string{"-max-line", "0"}, wantCode: 2, wantErr: "max-line"},
		{args: []string{"-banner", "HELLO"}, wantCode: 2, wantErr: "banner must begin with WELCOME"},
		{args: []string{"-idle-timeout", "0s"}, wantCode: 2, wantErr: "idle-timeout"},
		{args: []string{"-tz", "Mars/Olympus_Mons"}, wantCode: 2, wantErr: "Mars/Olympus_Mons"},
		{environ: []string{"TZ=Nowhere/Town"}, wantCode: 2, wantErr: "Nowhere/Town"},
		{environ: []string{"TINYTCP_MAX_CONNS=many"}, wantCode: 2, wantErr: "TINYTCP_MAX_CONNS"},
		{args: []string{"-log-level", "loud", "-addr", "127.0.0.1:0"}, wantCode: 2, wantErr: "log level"},
		{args: []string{"-addr", "256.0.0.1:1"}, wantCode: 1, wantErr: "256.0.0.1"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		err := run(context.Background(), tt.args, tt.environ, io.Discard, &stderr)
		code := service.ExitCode(err, &stderr)
		if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("run(%q, env %q) exit %d, stderr %q; want exit %d mentioning %q",
				tt.args, tt.environ, code, stderr.String(), tt.wantCode, tt.wantErr)
		}
	}
}
