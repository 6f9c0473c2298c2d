package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/connid/internal/server"
	"github.com/socklab/socklab/services/connid/internal/store"
	"github.com/socklab/socklab/services/connid/proto"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs a connid server on loopback over both protocols, sharing one
// table, and returns its UDP and TCP addresses.
func serve(t *testing.T) (st *store.Store, udp, tcp string) {
	t.Helper()
	st, err := store.New(clock.Real{}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); st.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h := &server.Handler{Store: st, Metrics: server.NewMetrics(prometheus.NewRegistry(), st)}
	cfg := server.Config{Settings: netserve.Settings{UDPReaders: 1}, ConnTimeout: time.Minute}
	return st, nettest.ServeUDP(t, h.UDPServer(cfg)), nettest.ServeTCP(t, h.TCPServer(cfg))
}

func hostPort(t *testing.T, addr string) (string, string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

var netipClient = netip.MustParseAddrPort("192.0.2.9:1")

// stamp matches the seed timestamps.
var stamp = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}`)

type result struct {
	stdout, stderr string
	exit           int
}

func runClient(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, nil, strings.NewReader(stdin), &stdout, &stderr)
	exit := service.ExitCode(err, &stderr)
	return result{stamp.ReplaceAllString(stdout.String(), "<ts>"), stderr.String(), exit}
}

func TestAgainstServer(t *testing.T) {
	st, udp, tcp := serve(t)
	host, udpPort := hostPort(t, udp)
	_, tcpPort := hostPort(t, tcp)
	// IDs a and b are in use by someone else.
	for _, id := range []string{"a", "b"} {
		if ok, err := st.Claim(store.NewWaiter(), id, netipClient, time.Now()); !ok || err != nil {
			t.Fatalf("claim %s: %v %v", id, ok, err)
		}
	}
	okLine := regexp.MustCompile(`^Connection established (\S+) 127\.0\.0\.1 (\d+) on <ts>$`)
	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantLines  []string // "OK <id>" matches an established line for id
		wantExit   int
		wantStderr string
	}{
		{name: "ok", args: []string{"HELLO", host, udpPort, "9876"}, wantLines: []string{"OK 9876"}},
		{name: "ok over tcp", args: []string{"-protocol", "tcp", "HELLO", host, tcpPort, "9877"}, wantLines: []string{"OK 9877"}},
		{name: "flags after the arguments", args: []string{"HELLO", host, udpPort, "9878", "-timeout", "5s"}, wantLines: []string{"OK 9878"}},
		{name: "reset then ok", args: []string{"-ids", "2678", "HELLO", host, udpPort, "a"}, wantLines: []string{
			"Connection Error a on <ts>", "Enter a new connection ID: 2678", "OK 2678"}},
		{name: "reset then typed id", stdin: "2679\n", args: []string{"HELLO", host, udpPort, "a"}, wantLines: []string{
			"Connection Error a on <ts>", "Enter a new connection ID: 2679", "OK 2679"}},
		{name: "three resets", args: []string{"-ids", "b,9876", "HELLO", host, udpPort, "a"}, wantExit: 1, wantLines: []string{
			"Connection Error a on <ts>", "Enter a new connection ID: b",
			"Connection Error b on <ts>", "Enter a new connection ID: 9876",
			"Connection Error 9876 on <ts>", "Connection Failure on <ts>"},
			wantStderr: "no connection to " + udp + " after 3 tries"},
		{name: "auto", args: []string{"-auto", "-protocol", "tcp", "HELLO", host, tcpPort, "b"}, wantLines: []string{
			"Connection Error b on <ts>", "Enter a new connection ID: *", "OK *"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runClient(t, tt.stdin, tt.args...)
			if r.exit != tt.wantExit || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want %d, %q", r.exit, r.stderr, tt.wantExit, tt.wantStderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if len(lines) != len(tt.wantLines) {
				t.Fatalf("stdout:\n%s\nwant lines like %q", r.stdout, tt.wantLines)
			}
			for i, want := range tt.wantLines {
				got := lines[i]
				switch {
				case strings.HasPrefix(want, "OK "):
					m := okLine.FindStringSubmatch(got)
					if m == nil || (want != "OK *" && m[1] != want[3:]) {
						t.Errorf("line %d = %q, want Connection established %s", i, got, want[3:])
					}
				case strings.HasSuffix(want, "*"):
					if !strings.HasPrefix(got, strings.TrimSuffix(want, "*")) {
						t.Errorf("line %d = %q, want %q", i, got, want)
					}
				case got != want:
					t.Errorf("line %d = %q, want %q", i, got, want)
				}
			}
		})
	}
}

// TestSilentServer: a real UDP socket that never answers; each try times
// out and the next uses a new socket. The timeout is short here; the exact
// 15 s default is tested instantly in internal/client with synctest.
func TestSilentServer(t *testing.T) {
	pc := nettest.ListenUDP(t)
	host, port := hostPort(t, pc.LocalAddr().String())
	r := runClient(t, "", "-timeout", "20ms", "-ids", "2,3", "HELLO", host, port, "1")
	want := "Connection Error 1 on <ts>\nEnter a new connection ID: 2\nConnection Error 2 on <ts>\n" +
		"Enter a new connection ID: 3\nConnection Error 3 on <ts>\nConnection Failure on <ts>\n"
	if r.stdout != want || r.exit != 1 || strings.Count(r.stderr, "no reply from udp "+pc.LocalAddr().String()+" within 20ms") != 3 {
		t.Errorf("stdout:\n%s\nstderr:\n%s\nexit %d", r.stdout, r.stderr, r.exit)
	}
	// Three requests, each from a different socket.
	ports := map[uint16]string{}
	buf := make([]byte, 512)
	for range 3 {
		pc.SetReadDeadline(time.Now().Add(nettest.Timeout))
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		ports[from.Port()] = string(buf[:n])
	}
	if len(ports) != 3 {
		t.Errorf("requests came from %d sockets, want 3: %v", len(ports), ports)
	}
}

// TestUnreachable: nothing listens on the port; the kernel refuses and the
// client says so.
func TestUnreachable(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		var addr string
		if network == "udp" {
			pc := nettest.ListenUDP(t)
			addr = pc.LocalAddr().String()
			pc.Close()
		} else {
			ln := nettest.ListenTCP(t)
			addr = ln.Addr().String()
			ln.Close()
		}
		host, port := hostPort(t, addr)
		r := runClient(t, "", "-protocol", network, "-tries", "1", "HELLO", host, port, "1")
		if r.exit != 1 || !strings.Contains(r.stderr, "refused: is a connid server running there?") ||
			r.stdout != "Connection Error 1 on <ts>\nConnection Failure on <ts>\n" {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", network, r.exit, r.stdout, r.stderr)
		}
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		environ  []string
		wantExit int
		wantErr  string
	}{
		{name: "help", args: []string{"-h"}, wantErr: "usage: connid-client"},
		{name: "no arguments", wantExit: 2, wantErr: "want 4 arguments"},
		{name: "three arguments", args: []string{"HELLO", "127.0.0.1", "9002"}, wantExit: 2, wantErr: "usage: connid-client"},
		{name: "five arguments", args: []string{"HELLO", "127.0.0.1", "9002", "1", "2"}, wantExit: 2, wantErr: "got 5"},
		{name: "not hello", args: []string{"HI", "127.0.0.1", "9002", "1"}, wantExit: 2, wantErr: "must be HELLO"},
		{name: "bad port", args: []string{"HELLO", "127.0.0.1", "x", "1"}, wantExit: 2, wantErr: "not a port number"},
		{name: "port 0", args: []string{"HELLO", "127.0.0.1", "0", "1"}, wantExit: 2, wantErr: "not a port number"},
		{name: "long id", args: []string{"HELLO", "127.0.0.1", "9002", strings.Repeat("x", proto.MaxIDLen+1)}, wantExit: 2, wantErr: "not a connection ID"},
		{name: "bad ids", args: []string{"-ids", "1,,2", "HELLO", "127.0.0.1", "9002", "1"}, wantExit: 2, wantErr: "-ids"},
		{name: "protocol", args: []string{"-protocol", "sctp", "HELLO", "127.0.0.1", "9002", "1"}, wantExit: 2, wantErr: "udp or tcp"},
		{name: "protocol env", environ: []string{"CONNID_CLIENT_PROTOCOL=both"}, args: []string{"HELLO", "127.0.0.1", "9002", "1"}, wantExit: 2, wantErr: "udp or tcp"},
		{name: "timeout", args: []string{"-timeout", "0s", "HELLO", "127.0.0.1", "9002", "1"}, wantExit: 2, wantErr: "-timeout"},
		{name: "timeout env", environ: []string{"CONNID_CLIENT_TIMEOUT=soon"}, wantExit: 2, wantErr: `invalid duration "soon"`},
		{name: "tries", args: []string{"-tries", "0", "HELLO", "127.0.0.1", "9002", "1"}, wantExit: 2, wantErr: "-tries"},
		{name: "unknown flag", args: []string{"HELLO", "127.0.0.1", "9002", "1", "-x"}, wantExit: 2, wantErr: "not defined: -x"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, tt.environ, strings.NewReader(""), &stdout, &stderr)
		exit := service.ExitCode(err, &stderr)
		if exit != tt.wantExit || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant exit %d and %q", tt.name, exit, stderr.String(), tt.wantExit, tt.wantErr)
		}
		if stdout.Len() != 0 {
			t.Errorf("%s: stdout %q, want nothing", tt.name, stdout.String())
		}
	}
}

func TestParseDashDash(t *testing.T) {
	_, udp, _ := serve(t)
	host, port := hostPort(t, udp)
	r := runClient(t, "", "-timeout", "5s", "--", "HELLO", host, port, "-5")
	if r.exit != 0 || !strings.HasPrefix(r.stdout, "Connection established -5 127.0.0.1 ") {
		t.Errorf("ID -5 after --: exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
}
