package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/filestream/internal/server"
	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer runs a real server on loopback and returns its TCP and UDP
// addresses.
func startServer(t *testing.T) (tcp, udp string) {
	t.Helper()
	cfg, err := config.Load[server.Config]("FILESTREAM_", []string{"FILESTREAM_MAX_FILE=2000000", "FILESTREAM_UDP_RATE=5000000"})
	if err != nil {
		t.Fatal(err)
	}
	h := &server.Handler{Config: cfg}
	tcp = nettest.ServeTCP(t, h.TCPServer())
	udp = nettest.ServeUDP(t, h.UDPServer())
	return tcp, udp
}

// timings matches what varies from run to run in a transcript.
var timings = regexp.MustCompile(`[0-9]+\.[0-9]+(ms| MB/s)`)

func mask(b []byte) []byte { return timings.ReplaceAll(b, []byte("N$1")) }

// TestTranscripts runs the client against a real server, once per
// protocol, with commands from -c and from a pipe, and compares the output
// (timings masked) with testdata/<name>.golden.
func TestTranscripts(t *testing.T) {
	tcp, udp := startServer(t)
	addr := map[string]string{"tcp": tcp, "udp": udp}
	tests := []struct {
		name  string
		proto string
		args  []string
		stdin string
	}{
		{"tcp_flags", "tcp", []string{"-c", "hello, filestream", "-c", "0", "-c", "1", "-c", "1048576",
			"-c", "2000001", "-c", "stream 1 5", "-c", "stream 0.1 5", "-c", "quit"}, ""},
		{"udp_stdin", "udp", nil, "hello over udp\n1048576\nstream\n1\n2000001\nstream 1 1000\nquit\n"},
		{"tcp_print", "tcp", []string{"-print-file"}, "100\nquit\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"-protocol", tt.proto, "-server", addr[tt.proto]}, tt.args...)
			if err := run(t.Context(), args, nil, strings.NewReader(tt.stdin), &stdout, &stderr); err != nil {
				t.Fatalf("run: %v (stderr %q)", err, stderr.String())
			}
			got := mask(stdout.Bytes())
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				os.WriteFile(golden, got, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// TestHostsFile: without -server the first line of the hosts file is the
// server (stdin is not a terminal, so nothing is asked).
func TestHostsFile(t *testing.T) {
	tcp, _ := startServer(t)
	hosts := filepath.Join(t.TempDir(), "hosts.txt")
	os.WriteFile(hosts, []byte("# lab\n"+tcp+"\n127.0.0.1:1\n"), 0o644)
	var stdout bytes.Buffer
	err := run(t.Context(), []string{"-hosts", hosts}, nil, strings.NewReader("via hosts\n"), &stdout, io.Discard)
	if err != nil || stdout.String() != "echo: via hosts\n" {
		t.Errorf("run = %v, output %q", err, stdout.String())
	}
	// The environment works as the flags do. The first host is a TCP-only
	// test server: UDP to its port is refused (ICMP), which the client
	// reports and goes on.
	stdout.Reset()
	err = run(t.Context(), nil, []string{"FILESTREAM_HOSTS=" + hosts, "FILESTREAM_PROTOCOL=udp"}, strings.NewReader("via env\n"), &stdout, io.Discard)
	if err != nil || !strings.HasPrefix(stdout.String(), "error: ") || !strings.Contains(stdout.String(), "refused") {
		t.Errorf("udp to a tcp-only address: run = %v, output %q", err, stdout.String())
	}
}

func TestUsage(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.txt")
	os.WriteFile(bad, []byte("no port here\n"), 0o644)
	tests := []struct {
		name    string
		args    []string
		environ []string
		code    int
		want    string
	}{
		{"help", []string{"-h"}, nil, 0, "usage: filestream-client"},
		{"protocol", []string{"-protocol", "both"}, nil, 2, "protocol must be tcp or udp"},
		{"env protocol", nil, []string{"FILESTREAM_PROTOCOL=sctp"}, 2, "protocol must be tcp or udp"},
		{"server", []string{"-server", "nowhere"}, nil, 2, "not host:port"},
		{"missing hosts file", []string{"-hosts", "/nonexistent/hosts.txt"}, nil, 2, "no such file"},
		{"bad hosts file", []string{"-hosts", bad}, nil, 2, "line 1"},
		{"arguments", []string{"hello"}, nil, 2, "commands go in -c"},
		{"timeout", []string{"-timeout", "0s"}, nil, 2, "timeout"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		err := run(t.Context(), tt.args, tt.environ, strings.NewReader(""), io.Discard, &stderr)
		code := service.ExitCode(err, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, stderr.String(), tt.code, tt.want)
		}
	}
}

func TestServerDown(t *testing.T) {
	ln := nettest.ListenTCP(t)
	addr := ln.Addr().String()
	ln.Close()
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"-server", addr, "-c", "hi"}, nil, nil, io.Discard, &stderr)
	if code := service.ExitCode(err, &stderr); code != 1 || !strings.Contains(stderr.String(), "refused") {
		t.Errorf("exit %d, stderr %q; want 1 and connection refused", code, stderr.String())
	}
}
