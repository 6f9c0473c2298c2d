package server

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/connid/internal/store"
	"github.com/socklab/socklab/services/connid/proto"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2023, 1, 16, 6, 6, 6, 123456000, time.UTC)

type fixture struct {
	clk *clock.Fake
	st  *store.Store
	h   *Handler
	nm  *netserve.Metrics
}

// newFixture returns a handler on a fake clock with the expiry sweeper
// running until the end of the test.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := clock.NewFake(t0)
	st, err := store.New(clk, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	f := &fixture{clk: clk, st: st, nm: netserve.NewMetrics(reg, "connid")}
	f.h = &Handler{Store: st, Clock: clk, Idle: NewIdle(clk, 2*time.Minute), Metrics: NewMetrics(reg, st)}
	ctx, cancel := contextWithCancel()
	done := make(chan struct{})
	go func() { defer close(done); st.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// serveUDP serves with the given number of reader goroutines. Tests that
// use a PING as a barrier ("everything sent before it has been handled")
// need 1: with more, another reader may answer the PING first.
func (f *fixture) serveUDP(t *testing.T, readers int) string {
	srv := f.h.UDPServer(Config{Settings: netserve.Settings{UDPReaders: readers}})
	srv.Metrics = f.nm
	return nettest.ServeUDP(t, srv)
}

func (f *fixture) serveTCP(t *testing.T) string {
	srv := f.h.TCPServer(Config{ConnTimeout: time.Minute})
	srv.Metrics = f.nm
	return nettest.ServeTCP(t, srv)
}

type step struct {
	client bool
	text   string
	raw    bool // text is exact bytes (quoted in the file)
}

// readTranscript parses a transcript file: "C: " and "S: " lines, "#"
// comments.
func readTranscript(t *testing.T, name string) []step {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		who, text, ok := strings.Cut(line, ": ")
		if !ok || (who != "C" && who != "S") {
			t.Fatalf("%s:%d: want C: or S:, got %q", name, i+1, line)
		}
		s := step{client: who == "C", text: text}
		if strings.HasPrefix(text, `"`) {
			if s.text, err = strconv.Unquote(text); err != nil {
				t.Fatalf("%s:%d: %v", name, i+1, err)
			}
			s.raw = true
		}
		steps = append(steps, s)
	}
	return steps
}

func expand(s string, local net.Addr) string {
	host, port, _ := net.SplitHostPort(local.String())
	return strings.NewReplacer("{ip}", host, "{port}", port).Replace(s)
}

func TestUDPTranscript(t *testing.T) {
	f := newFixture(t)
	c := nettest.Dial(t, "udp", f.serveUDP(t, 1))
	buf := make([]byte, 2048)
	read := func() string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(nettest.Timeout))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return string(buf[:n])
	}
	for _, s := range readTranscript(t, "testdata/udp.txt") {
		switch {
		case s.client:
			if _, err := c.Write([]byte(s.text)); err != nil {
				t.Fatalf("write %q: %v", s.text, err)
			}
		case s.text == "-":
			// One reader serves a socket's datagrams in order, so if the
			// PING is answered first, nothing came for the datagram before.
			c.Write([]byte(proto.Ping))
			if got := read(); got != proto.Pong {
				t.Fatalf("got %q, want no reply (then PONG)", got)
			}
		default:
			if got, want := read(), expand(s.text, c.LocalAddr()); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}
	m := f.h.Metrics
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"requests udp", m.Requests.WithLabelValues("udp"), 15}, // 12 + 3 PINGs
		{"ok", m.Handshakes.WithLabelValues("ok"), 3},
		{"reset", m.Handshakes.WithLabelValues("reset"), 2},
		{"bad replied", m.BadRequests.WithLabelValues("replied"), 3},
		{"bad dropped", m.BadRequests.WithLabelValues("dropped"), 3},
		{"write errors", m.Errors.WithLabelValues("write"), 0},
	}
	for _, ch := range checks {
		if got := testutil.ToFloat64(ch.c); got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, got, ch.want)
		}
	}
	if f.st.Len() != 3 {
		t.Errorf("IDs in use = %d, want 3", f.st.Len())
	}
}

// TestUDPOversized: datagrams beyond MaxMessageBytes are dropped and
// counted; the server goes on.
func TestUDPOversized(t *testing.T) {
	f := newFixture(t)
	c := nettest.Dial(t, "udp", f.serveUDP(t, 1))
	big := "HELLO " + strings.Repeat("x", MaxMessageBytes)
	c.Write([]byte(big))
	c.Write([]byte(proto.Ping))
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(nettest.Timeout))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != proto.Pong {
		t.Fatalf("after an oversized datagram got %q, %v; want PONG only", buf[:n], err)
	}
	if got := testutil.ToFloat64(f.nm.Oversized); got != 1 {
		t.Errorf("oversized datagrams = %v, want 1", got)
	}
}

func TestTCPTranscript(t *testing.T) {
	f := newFixture(t)
	lc := nettest.DialLines(t, f.serveTCP(t))
	for _, s := range readTranscript(t, "testdata/tcp.txt") {
		switch {
		case s.client && s.raw:
			lc.C.SetWriteDeadline(time.Now().Add(nettest.Timeout))
			if _, err := lc.C.Write([]byte(s.text)); err != nil {
				t.Fatalf("write %q: %v", s.text, err)
			}
		case s.client:
			lc.Send(s.text)
		case s.text == "<EOF>":
			lc.ExpectEOF()
		default:
			lc.Expect(expand(s.text, lc.C.LocalAddr()))
		}
	}
	m := f.h.Metrics
	if got := testutil.ToFloat64(m.BadRequests.WithLabelValues("replied")); got != 5 {
		t.Errorf("bad requests replied = %v, want 5", got)
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("tcp")); got != 11 {
		t.Errorf("tcp requests = %v, want 11", got)
	}
}

// TestExpiry: an ID is refused until its TTL has passed, then granted to
// whoever asks, and the sweeper takes it out of the in-use gauge.
func TestExpiry(t *testing.T) {
	f := newFixture(t)
	addr := f.serveUDP(t, 2)
	a, b := nettest.Dial(t, "udp", addr), nettest.Dial(t, "udp", addr)
	hello := func(c net.Conn, id string) string {
		t.Helper()
		c.SetDeadline(time.Now().Add(nettest.Timeout))
		c.Write(proto.AppendHello(nil, id))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return string(buf[:n])
	}
	steps := []struct {
		advance time.Duration
		c       net.Conn
		want    string
	}{
		{0, a, "OK 7 " + expand("{ip} {port}", a.LocalAddr())},
		{29 * time.Second, b, "RESET 7"},
		{time.Second, b, "OK 7 " + expand("{ip} {port}", b.LocalAddr())},
		{0, a, "RESET 7"},
	}
	for i, st := range steps {
		f.clk.Advance(st.advance)
		if got := hello(st.c, "7"); got != st.want {
			t.Fatalf("step %d: got %q, want %q", i, got, st.want)
		}
	}
	if got := f.st.Expired(); got != 1 {
		t.Errorf("expired = %d, want 1", got)
	}
}

// TestManyClients: clients over UDP and TCP ask for the same IDs at once;
// each ID must be granted exactly once.
func TestManyClients(t *testing.T) {
	f := newFixture(t)
	udpAddr, tcpAddr := f.serveUDP(t, 2), f.serveTCP(t)
	const udpClients, tcpClients, ids = 24, 8, 40
	type result struct {
		oks []string
		err error
	}
	results := make(chan result, udpClients+tcpClients)
	var wg sync.WaitGroup
	for n := range udpClients + tcpClients {
		wg.Go(func() {
			var r result
			defer func() { results <- r }()
			network, addr := "udp", udpAddr
			if n >= udpClients {
				network, addr = "tcp", tcpAddr
			}
			c, err := net.DialTimeout(network, addr, nettest.Timeout)
			if err != nil {
				r.err = err
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			buf := make([]byte, 256)
			for i := range ids {
				id := strconv.Itoa((i + n) % ids)
				c.SetDeadline(time.Now().Add(nettest.Timeout))
				msg := proto.AppendHello(nil, id)
				var reply []byte
				if network == "tcp" {
					c.Write(append(msg, '\n'))
					reply, err = br.ReadBytes('\n')
				} else {
					c.Write(msg)
					var k int
					k, err = c.Read(buf)
					reply = buf[:k]
				}
				if err != nil {
					r.err = fmt.Errorf("%s client %d, ID %s: %w", network, n, id, err)
					return
				}
				rep, err := proto.ParseReply(reply)
				if err != nil || rep.ID != id {
					r.err = fmt.Errorf("%s client %d: reply %q to ID %s (%v)", network, n, reply, id, err)
					return
				}
				if rep.Kind == proto.KindOK {
					r.oks = append(r.oks, id)
				}
			}
		})
	}
	wg.Wait()
	close(results)
	granted := map[string]int{}
	for r := range results {
		if r.err != nil {
			t.Error(r.err)
		}
		for _, id := range r.oks {
			granted[id]++
		}
	}
	for i := range ids {
		if n := granted[strconv.Itoa(i)]; n != 1 {
			t.Errorf("ID %d granted %d times, want exactly once", i, n)
		}
	}
	m := f.h.Metrics
	if ok, reset := testutil.ToFloat64(m.Handshakes.WithLabelValues("ok")), testutil.ToFloat64(m.Handshakes.WithLabelValues("reset")); ok != ids || ok+reset != ids*(udpClients+tcpClients) {
		t.Errorf("ok, reset = %v, %v; want %d, %d", ok, reset, ids, ids*(udpClients+tcpClients-1))
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Settings: netserve.Settings{Protocol: "both", UDPReaders: 1, Limits: netserve.Limits{MaxConns: 10, MaxConnsPerSource: 256}},
		IDTTL: 30 * time.Second, IdleTimeout: 2 * time.Minute, ConnTimeout: time.Minute, MaxIDs: 50000, MaxIDsPerSource: 10000}
	tests := []struct {
		name string
		give func(*Config)
		want string
	}{
		{"good", func(*Config) {}, ""},
		{"idle off", func(c *Config) { c.IdleTimeout = 0 }, ""},
		{"protocol", func(c *Config) { c.Protocol = "sctp" }, "protocol"},
		{"ttl", func(c *Config) { c.IDTTL = 0 }, "id-ttl"},
		{"idle", func(c *Config) { c.IdleTimeout = -time.Second }, "idle-timeout"},
		{"conn", func(c *Config) { c.ConnTimeout = 0 }, "conn-timeout"},
		{"maxconns", func(c *Config) { c.MaxConns = -1 }, "max-conns"},
		{"readers", func(c *Config) { c.UDPReaders = 0 }, "udp-readers"},
		{"per source", func(c *Config) { c.MaxConnsPerSource = 0 }, "max-conns-per-source"},
		{"no per-source limit", func(c *Config) { c.MaxConnsPerSource = -1 }, ""},
		{"max ids", func(c *Config) { c.MaxIDs = 0 }, "max-ids"},
	}
	for _, tt := range tests {
		c := good
		tt.give(&c)
		err := c.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate() = %v, want error mentioning %q", tt.name, err, tt.want)
		}
	}
}

// TestNilMetrics: a Handler without Metrics and Log answers over both
// protocols, counting nothing (the kit's Handler shape).
func TestNilMetrics(t *testing.T) {
	f := newFixture(t)
	f.h.Metrics = nil
	u := nettest.Dial(t, "udp", f.serveUDP(t, 1))
	u.SetDeadline(time.Now().Add(nettest.Timeout))
	u.Write([]byte("HELLO nil-udp"))
	buf := make([]byte, 256)
	n, err := u.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "OK nil-udp ") {
		t.Errorf("UDP HELLO = %q, %v; want OK", buf[:n], err)
	}
	c := nettest.DialLines(t, f.serveTCP(t))
	c.Send("HELLO nil-udp")
	c.Expect("RESET nil-udp")
	c.Send("HELLO " + strings.Repeat("x", MaxMessageBytes+1))
	c.Expect(proto.ErrorBadRequest)
}
