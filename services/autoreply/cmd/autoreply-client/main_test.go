package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/autoreply/internal/server"
	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startServer(t *testing.T) (tcpAddr, udpAddr string) {
	h := &server.Handler{Log: zap.NewNop(), Metrics: server.NewMetrics(prometheus.NewRegistry())}
	cfg, err := config.Load[server.Config]("AUTOREPLY_", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.IdleTimeout = time.Minute
	cfg.UDPReaders = 1
	return nettest.ServeTCP(t, h.TCPServer(cfg)), nettest.ServeUDP(t, h.UDPServer(cfg))
}

// replyTimeout replaces the client's default wait for a reply (2s) where
// every reply must come: on a loaded machine under -race one can be late.
var replyTimeout = nettest.Timeout.String()

var summaryRE = regexp.MustCompile(`(?m)^sent=50 replied=50 lost=0 errors=0\nrtt min/p50/p90/p99/max = \S+/\S+/\S+/\S+/\S+$`)

func TestClientAgainstServer(t *testing.T) {
	tcp, udp := startServer(t)
	for _, tc := range []struct{ proto, addr string }{{"tcp", tcp}, {"udp", udp}} {
		var out bytes.Buffer
		args := []string{"-protocol", tc.proto, "-server", tc.addr, "-count", "50", "-interval", "0", "-min-len", "0", "-max-len", "100", "-seed", "42", "-timeout", replyTimeout}
		if err := run(context.Background(), args, nil, &out, io.Discard); err != nil {
			t.Fatalf("%s: run = %v\n%s", tc.proto, err, out.String())
		}
		if !summaryRE.MatchString(out.String()) {
			t.Errorf("%s: summary missing or wrong:\n%s", tc.proto, out.String())
		}
		if got := strings.Count(out.String(), "\n-> "); got < 49 {
			t.Errorf("%s: printed %d exchanges, want 50", tc.proto, got)
		}
	}
}

func TestClientSeedRepeats(t *testing.T) {
	tcp, _ := startServer(t)
	sent := func() string {
		var out bytes.Buffer
		run(context.Background(), []string{"-server", tcp, "-count", "5", "-interval", "0", "-seed", "7", "-timeout", replyTimeout}, nil, &out, io.Discard)
		var lines []string
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "-> ") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	a, b := sent(), sent()
	if a == "" || a != b {
		t.Errorf("-seed 7 sent\n%s\nthen\n%s\nwant the same messages", a, b)
	}
}

func TestClientCountsLoss(t *testing.T) {
	silent := nettest.ListenUDP(t) // never answers
	var out bytes.Buffer
	err := run(context.Background(), []string{"-protocol", "udp", "-server", silent.LocalAddr().String(), "-count", "2", "-interval", "0", "-timeout", "50ms", "-q"}, nil, &out, io.Discard)
	if err == nil || !strings.Contains(out.String(), "sent=2 replied=0 lost=2 errors=0") {
		t.Errorf("against a silent server: %v\n%s", err, out.String())
	}
}

func TestClientWrongReply(t *testing.T) {
	// A server that answers with a reply for some other message.
	srv := &netserve.Server{Handler: netserve.HandlerFunc(func(_ context.Context, c *netserve.Conn) {
		for {
			if _, err := c.ReadLine(); err != nil {
				return
			}
			c.WriteString(`REPLY id=0000000000000001 at=2025-01-01T00:00:00.000000000Z len=3 snippet="abc" note="copy that"` + "\n")
			c.Flush()
		}
	})}
	addr := nettest.ServeTCP(t, srv)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-server", addr, "-count", "1", "-min-len", "10", "-max-len", "10", "-timeout", replyTimeout}, nil, &out, io.Discard)
	if err == nil || !strings.Contains(out.String(), "does not match") || !strings.Contains(out.String(), "errors=1") {
		t.Errorf("wrong reply: %v\n%s", err, out.String())
	}
}

func TestClientUsage(t *testing.T) {
	tests := [][]string{
		{"-protocol", "sctp"},
		{"-min-len", "10", "-max-len", "5"},
		{"-count", "-1"},
		{"-timeout", "0s"},
		{"stray"},
	}
	for _, args := range tests {
		err := run(context.Background(), args, nil, io.Discard, io.Discard)
		if got := service.ExitCode(err, io.Discard); got != 2 {
			t.Errorf("run(%q) exit %d (%v), want 2", args, got, err)
		}
	}
	closed := nettest.ListenTCP(t)
	addr := closed.Addr().String()
	closed.Close()
	err := run(context.Background(), []string{"-server", addr, "-count", "1"}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("unreachable server: %v, want a clear error", err)
	}
}

func TestClientCountZeroStopsOnInterrupt(t *testing.T) {
	tcp, _ := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-server", tcp, "-count", "0", "-interval", "1ms", "-timeout", replyTimeout}, nil, pw, io.Discard)
		pw.Close()
	}()
	// Interrupt once a few replies have been printed.
	buf := make([]byte, 4096)
	seen := 0
	for seen < 3 {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		seen += strings.Count(string(buf[:n]), "<- REPLY")
	}
	cancel()
	rest, _ := io.ReadAll(pr)
	if err := <-done; err != nil {
		t.Errorf("interrupted -count 0 run = %v, want nil", err)
	}
	m := regexp.MustCompile(`sent=(\d+) replied=(\d+) lost=0 errors=0`).FindSubmatch(rest)
	if m == nil || string(m[1]) != string(m[2]) {
		t.Errorf("no clean summary after interrupt (sent must equal replied):\n%s", rest)
	}
}
