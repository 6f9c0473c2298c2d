package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/autoreply/proto"
	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0"}, []string{"LOG_FORMAT=json"}, io.Discard, pw)
		pw.Close()
	}()
	addr := nettest.WaitLog(t, pr, "listening")["addr"].(string)

	c := nettest.DialLines(t, addr)
	c.Send("hello")
	if r, err := proto.Parse([]byte(c.ReadLine())); err != nil || !r.Matches([]byte("hello")) {
		t.Fatalf("TCP reply: %+v, %v", r, err)
	}
	u := nettest.Dial(t, "udp", addr) // the same port serves UDP
	u.Write([]byte("hi"))
	buf := make([]byte, 512)
	n, err := u.Read(buf)
	if r, perr := proto.Parse(buf[:n]); err != nil || perr != nil || !r.Matches([]byte("hi")) {
		t.Fatalf("UDP reply %q: %v %v", buf[:n], err, perr)
	}
	if err := run(ctx, []string{"healthcheck", "-addr", addr}, nil, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck of a running server = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
	if err := run(context.Background(), []string{"healthcheck", "-addr", addr}, nil, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck of a stopped server passed")
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		args    []string
		environ []string
	}{
		{[]string{"-protocol", "sctp"}, nil},
		{[]string{"-nope"}, nil},
		{[]string{"extra"}, nil},
		{nil, []string{"AUTOREPLY_MAX_CONNS=many"}},
		{nil, []string{"LOG_LEVEL=loud"}},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		err := run(context.Background(), tt.args, tt.environ, io.Discard, &stderr)
		if got := service.ExitCode(err, &stderr); got != 2 {
			t.Errorf("run(%q, %q) exit %d (%v), want 2", tt.args, tt.environ, got, err)
		}
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, nil, io.Discard, &stderr)
	if service.ExitCode(err, io.Discard) != 0 || !strings.Contains(stderr.String(), "AUTOREPLY_ADDR") {
		t.Errorf("-h: %v, help:\n%s", err, stderr.String())
	}
}

// TestHelpDefaults: -h shows the lab map's port as -addr's default and the
// shared settings with this service's variables; a variable overrides the
// preset address as it does a tag's default (-addr's override is the serving
// test's).
func TestHelpDefaults(t *testing.T) {
	tests := []struct {
		environ []string
		want    []string
	}{
		{nil, []string{
			`(default "` + lab.Autoreply.ListenAddr() + `") [$AUTOREPLY_ADDR]`, `(default "both") [$AUTOREPLY_PROTOCOL]`,
			`(default 1000) [$AUTOREPLY_MAX_CONNS]`, `(default 256) [$AUTOREPLY_MAX_CONNS_PER_SOURCE]`, `(default 1) [$AUTOREPLY_UDP_READERS]`,
		}},
		{[]string{"AUTOREPLY_ADDR=127.0.0.1:7", "AUTOREPLY_MAX_CONNS=9"}, []string{
			`(default "127.0.0.1:7") [$AUTOREPLY_ADDR]`, `(default 9) [$AUTOREPLY_MAX_CONNS]`,
		}},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		err := run(context.Background(), []string{"-h"}, tt.environ, io.Discard, &stderr)
		if service.ExitCode(err, io.Discard) != 0 {
			t.Errorf("run(-h) with %q = %v", tt.environ, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("-h with %q lacks %q:\n%s", tt.environ, w, stderr.String())
			}
		}
	}
}
