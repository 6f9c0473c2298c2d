package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer collects output written by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type running struct {
	addr map[string]string // by protocol
	errc chan error
	log  *syncBuffer
}

// start runs the server with clk and args and returns once it serves.
func start(t *testing.T, ctx context.Context, clk clock.Clock, args ...string) *running {
	t.Helper()
	pr, pw := io.Pipe()
	r := &running{errc: make(chan error, 1), log: &syncBuffer{}}
	environ := []string{"LOG_FORMAT=json"}
	go func() {
		err := runWith(ctx, clk, args, environ, io.MultiWriter(pw, r.log))
		pw.Close()
		r.errc <- err
	}()
	nettest.WaitLog(t, pr, "serving")
	r.addr = map[string]string{}
	for _, line := range strings.Split(r.log.String(), "\n") {
		var m map[string]string
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "listening" {
			r.addr[m["proto"]] = m["addr"]
		}
	}
	return r
}

func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.errc:
		return err
	case <-time.After(nettest.Timeout):
		t.Fatal("server still running")
		return nil
	}
}

func roundTrip(t *testing.T, network, addr, msg string) string {
	t.Helper()
	c := nettest.Dial(t, network, addr)
	c.SetDeadline(time.Now().Add(nettest.Timeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("%s %s: read: %v", network, msg, err)
	}
	c.Close()
	return strings.TrimSuffix(string(buf[:n]), "\n")
}

func TestServeBothProtocols(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := start(t, ctx, clock.Real{}, "127.0.0.1", "0")
	udp, tcp := r.addr["udp"], r.addr["tcp"]
	if udp == "" || tcp == "" {
		t.Fatalf("listening on %v, want udp and tcp", r.addr)
	}
	if udp == tcp {
		// The usual case: TCP took the UDP port. Probe both at once.
		if err := run(ctx, []string{"healthcheck", "-addr", udp}, nil, io.Discard, io.Discard); err != nil {
			t.Errorf("healthcheck = %v", err)
		}
	}
	if got := roundTrip(t, "udp", udp, "HELLO 9876"); !strings.HasPrefix(got, "OK 9876 127.0.0.1 ") {
		t.Errorf("UDP HELLO 9876 = %q, want OK", got)
	}
	// Both protocols share the table. This round trip also makes sure the
	// healthcheck's connection was accepted before the shutdown.
	if got := roundTrip(t, "tcp", tcp, "HELLO 9876\n"); got != "RESET 9876" {
		t.Errorf("TCP HELLO 9876 = %q, want RESET 9876", got)
	}
	cancel()
	if err := r.wait(t); err != nil {
		t.Errorf("run = %v after cancel, want nil", err)
	}
}

// TestIdleExit: with no request for 2 minutes the server closes its sockets
// and returns nil, saying why.
func TestIdleExit(t *testing.T) {
	clk := clock.NewFake(time.Date(2023, 1, 16, 6, 6, 6, 0, time.UTC))
	r := start(t, context.Background(), clk, "-addr", "127.0.0.1:0")
	if got := roundTrip(t, "udp", r.addr["udp"], "HELLO 1"); !strings.HasPrefix(got, "OK 1 ") {
		t.Fatalf("HELLO 1 = %q", got)
	}
	clk.Advance(2 * time.Minute)
	if err := r.wait(t); err != nil {
		t.Fatalf("run = %v after the idle timeout, want nil", err)
	}
	if log := r.log.String(); !strings.Contains(log, `"cause":"idle timeout: no request for 2m0s"`) {
		t.Errorf("log does not give the idle cause:\n%s", log)
	}
	if c, err := net.DialTimeout("tcp", r.addr["tcp"], nettest.Timeout); err == nil {
		c.Close()
		t.Error("TCP listener still accepts after the idle exit")
	}
}

func TestIdleDisabled(t *testing.T) {
	clk := clock.NewFake(time.Date(2023, 1, 16, 6, 6, 6, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := start(t, ctx, clk, "-addr", "127.0.0.1:0", "-idle-timeout", "0", "-protocol", "udp")
	clk.Advance(time.Hour)
	if got := roundTrip(t, "udp", r.addr["udp"], "PING"); got != "PONG" {
		t.Errorf("PING after an hour = %q", got)
	}
	cancel()
	if err := r.wait(t); err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    int
		wantOut string
	}{
		{name: "help", args: []string{"-h"}, want: 0, wantOut: "SERVER_IP SERVER_PORT"},
		// The shared settings, with the lab map's port, and a variable's
		// override of it.
		{name: "help addr", args: []string{"-h"}, want: 0, wantOut: `(default "` + lab.ConnID.ListenAddr() + `") [$CONNID_ADDR]`},
		{name: "help env addr", args: []string{"-h"}, environ: []string{"CONNID_ADDR=127.0.0.1:7"}, want: 0, wantOut: `(default "127.0.0.1:7") [$CONNID_ADDR]`},
		{name: "help protocol", args: []string{"-h"}, want: 0, wantOut: `(default "both") [$CONNID_PROTOCOL]`},
		{name: "help max-conns", args: []string{"-h"}, want: 0, wantOut: `(default 1000) [$CONNID_MAX_CONNS]`},
		{name: "readers", environ: []string{"CONNID_UDP_READERS=65"}, want: 2, wantOut: "udp-readers must be from 1 to 64"},
		{name: "unknown flag", args: []string{"-nope"}, want: 2, wantOut: "flag provided but not defined"},
		{name: "one argument", args: []string{"127.0.0.1"}, want: 2},
		{name: "three arguments", args: []string{"127.0.0.1", "9002", "x"}, want: 2},
		{name: "bad port", args: []string{"127.0.0.1", "http"}, want: 2},
		{name: "port too big", args: []string{"127.0.0.1", "65536"}, want: 2},
		{name: "protocol", args: []string{"-protocol", "sctp"}, want: 2},
		{name: "ttl env", environ: []string{"CONNID_ID_TTL=0s"}, want: 2},
		{name: "ttl env garbage", environ: []string{"CONNID_ID_TTL=soon"}, want: 2},
		{name: "idle negative", args: []string{"-idle-timeout", "-1s"}, want: 2},
		{name: "log level", environ: []string{"LOG_LEVEL=loud"}, args: []string{"-addr", "127.0.0.1:0"}, want: 2},
		{name: "bad address", args: []string{"-addr", "256.0.0.1:0"}, want: 1},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(context.Background(), tt.args, tt.environ, &out, &out)
		var stderr bytes.Buffer
		if got := service.ExitCode(err, &stderr); got != tt.want {
			t.Errorf("%s: exit %d (%v), want %d", tt.name, got, err, tt.want)
		}
		if !strings.Contains(out.String()+stderr.String(), tt.wantOut) {
			t.Errorf("%s: output %q lacks %q", tt.name, out.String()+stderr.String(), tt.wantOut)
		}
	}
}

func TestHealthcheckFails(t *testing.T) {
	pc := nettest.ListenUDP(t) // a socket that never answers
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := run(ctx, []string{"healthcheck", "-protocol", "udp", "-addr", pc.LocalAddr().String()}, nil, io.Discard, io.Discard)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("healthcheck of a silent socket = %v, want an error", err)
	}
}
