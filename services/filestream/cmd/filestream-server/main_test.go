package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/filestream/internal/client"
	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs the command until the test ends and returns the address it
// listens on (TCP and UDP share the port).
func serve(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), []string{"LOG_FORMAT=json"}, io.Discard, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	fields := nettest.WaitLog(t, pr, "listening")
	return fields["addr"].(string)
}

func TestRun(t *testing.T) {
	addr := serve(t)
	for _, p := range []string{"tcp", "udp"} {
		s, err := client.Dial(t.Context(), p, addr, client.Options{Timeout: nettest.Timeout})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.Echo(t.Context(), []byte("hi")); err != nil || string(got) != "hi" {
			t.Errorf("%s echo = %q, %v", p, got, err)
		}
		if res, err := s.File(t.Context(), 100000, nil); err != nil || !res.OK() {
			t.Errorf("%s file = %+v, %v", p, res, err)
		}
		if err := s.Quit(t.Context()); err != nil {
			t.Errorf("%s quit: %v", p, err)
		}
		s.Close()
	}
	if err := run(t.Context(), []string{"healthcheck", "-addr", addr}, nil, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck of a running server: %v", err)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		code    int
		want    string
	}{
		{"help", []string{"-h"}, nil, 0, "usage: filestream-server"},
		// The shared settings, with the lab map's port, and a variable's
		// override of it.
		{"help addr", []string{"-h"}, nil, 0, `(default "` + lab.Filestream.ListenAddr() + `") [$FILESTREAM_ADDR]`},
		{"help env addr", []string{"-h"}, []string{"FILESTREAM_ADDR=127.0.0.1:7"}, 0, `(default "127.0.0.1:7") [$FILESTREAM_ADDR]`},
		{"help per source", []string{"-h"}, nil, 0, `(default 256) [$FILESTREAM_MAX_CONNS_PER_SOURCE]`},
		{"help readers", []string{"-h"}, nil, 0, `(default 1) [$FILESTREAM_UDP_READERS]`},
		{"bad max-conns", nil, []string{"FILESTREAM_MAX_CONNS=-1"}, 2, "max-conns must not be negative"},
		{"unknown flag", []string{"-bogus"}, nil, 2, "flag provided but not defined"},
		{"bad protocol", []string{"-protocol", "sctp"}, nil, 2, "protocol must be tcp, udp or both"},
		{"bad env", nil, []string{"FILESTREAM_PACKET_SIZE=10"}, 2, "packet-size"},
		{"unparsable env", nil, []string{"FILESTREAM_MAX_FILE=lots"}, 2, "FILESTREAM_MAX_FILE"},
		{"arguments", []string{"extra"}, nil, 2, "unexpected arguments"},
		{"bad log level", []string{"-log-level", "loud"}, nil, 2, "log level"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		err := run(t.Context(), tt.args, tt.environ, io.Discard, &stderr)
		code := service.ExitCode(err, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, stderr.String(), tt.code, tt.want)
		}
	}
}

func TestHealthcheckFails(t *testing.T) {
	// A port nobody listens on: take one and release it.
	ln := nettest.ListenTCP(t)
	addr := ln.Addr().String()
	ln.Close()
	err := run(t.Context(), []string{"healthcheck", "-protocol", "tcp", "-addr", addr}, nil, io.Discard, io.Discard)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("healthcheck of nothing = %v, want an error", err)
	}
}
