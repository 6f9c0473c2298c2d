package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/autoreply/internal/server"
	"github.com/socklab/socklab/services/autoreply/proto"
	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// defaults is the configuration of the server's documented defaults.
func defaults() server.Config {
	c, err := config.Load[server.Config]("AUTOREPLY_", nil)
	if err != nil {
		panic(err)
	}
	return c
}

func newReg() *prometheus.Registry { return prometheus.NewRegistry() }

func newHandler(t *testing.T) *server.Handler {
	t.Helper()
	return &server.Handler{Log: zap.NewNop(), Metrics: server.NewMetrics(prometheus.NewRegistry())}
}

func startTCP(t *testing.T, cfg server.Config) (string, *server.Handler) {
	h := newHandler(t)
	return nettest.ServeTCP(t, h.TCPServer(cfg)), h
}

// checkReply fails unless line is a well-formed reply to msg.
func checkReply(t *testing.T, line string, msg []byte) {
	t.Helper()
	r, err := proto.Parse([]byte(line))
	if err != nil {
		t.Fatalf("reply to %q: %v", msg, err)
	}
	if !r.Matches(msg) {
		t.Fatalf("reply %q does not match message %q", line, msg)
	}
}

// stop shuts srv down and waits for its handlers to return. The handler
// counts a message after handing its reply to the socket, so a client that
// has read the reply may still see the count without it; once Shutdown has
// returned, every count is final.
func stop(t *testing.T, srv interface{ Shutdown(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nettest.Timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestTCPReplies(t *testing.T) {
	h := newHandler(t)
	srv := h.TCPServer(defaults())
	addr := nettest.ServeTCP(t, srv)
	c := nettest.DialLines(t, addr)
	msgs := []string{"hello", "", "with spaces  and\ttabs", strings.Repeat("long ", 40), "\x00\x01\xfe\xff binary", "é ü"}
	for _, m := range msgs {
		c.Send(m)
		checkReply(t, c.ReadLine(), []byte(m))
	}
	// A "\r\n" end is not part of the message.
	io.WriteString(c.C, "crlf\r\n")
	checkReply(t, c.ReadLine(), []byte("crlf"))
	stop(t, srv)
	if got := testutil.ToFloat64(h.Metrics.Messages.WithLabelValues("tcp")); got != float64(len(msgs)+1) {
		t.Errorf("tcp messages counted = %v, want %d", got, len(msgs)+1)
	}
}

func TestTCPConcurrentClients(t *testing.T) {
	addr, _ := startTCP(t, defaults())
	const clients, each = 100, 20
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, nettest.Timeout)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(nettest.Timeout))
			r := bufio.NewReader(c)
			for j := range each {
				msg := fmt.Sprintf("client %d message %d", i, j)
				fmt.Fprintf(c, "%s\n", msg)
				line, err := r.ReadString('\n')
				if err != nil {
					errs <- err
					return
				}
				if rp, err := proto.Parse([]byte(strings.TrimSuffix(line, "\n"))); err != nil || !rp.Matches([]byte(msg)) {
					errs <- fmt.Errorf("client %d: reply %q to %q (%v)", i, line, msg, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTCPPipelined(t *testing.T) {
	addr, _ := startTCP(t, defaults())
	c := nettest.DialLines(t, addr)
	const n = 1000
	var all bytes.Buffer
	for i := range n {
		fmt.Fprintf(&all, "pipelined %d\n", i)
	}
	// Everything is written before anything is read.
	c.C.SetWriteDeadline(time.Now().Add(nettest.Timeout))
	if _, err := c.C.Write(all.Bytes()); err != nil {
		t.Fatal(err)
	}
	ids := map[uint64]bool{}
	for i := range n {
		line := c.ReadLine()
		msg := fmt.Sprintf("pipelined %d", i)
		checkReply(t, line, []byte(msg))
		r, _ := proto.Parse([]byte(line))
		if ids[r.ID] {
			t.Fatalf("reply id %016x repeated", r.ID)
		}
		ids[r.ID] = true
	}
}

func TestTCPLineTooLong(t *testing.T) {
	cfg := defaults()
	cfg.MaxLineBytes = 100
	addr, h := startTCP(t, cfg)
	other := nettest.DialLines(t, addr)
	c := nettest.DialLines(t, addr)
	c.Send(strings.Repeat("x", 100))
	checkReply(t, c.ReadLine(), bytes.Repeat([]byte("x"), 100))
	c.Send(strings.Repeat("x", 101))
	c.Expect("ERROR line too long")
	c.ExpectEOF()
	other.Send("still here")
	checkReply(t, other.ReadLine(), []byte("still here"))
	if got := testutil.ToFloat64(h.Metrics.Errors.WithLabelValues("line_too_long")); got != 1 {
		t.Errorf("line_too_long errors = %v, want 1", got)
	}
}

func TestTCPMaxConns(t *testing.T) {
	cfg := defaults()
	cfg.MaxConns = 2
	addr, _ := startTCP(t, cfg)
	a, b := nettest.DialLines(t, addr), nettest.DialLines(t, addr)
	a.Send("a")
	checkReply(t, a.ReadLine(), []byte("a"))
	b.Send("b")
	checkReply(t, b.ReadLine(), []byte("b"))
	c := nettest.DialLines(t, addr)
	c.Expect("ERROR server busy")
	c.ExpectEOF()
	a.Send("a2")
	checkReply(t, a.ReadLine(), []byte("a2"))
}

func TestTCPIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := defaults()
		cfg.IdleTimeout = 5 * time.Minute
		srv := newHandler(t).TCPServer(cfg)
		cli, sc := net.Pipe()
		go srv.ServeConn(sc)
		start := time.Now()
		io.WriteString(cli, "hi\n")
		r := bufio.NewReader(cli)
		line, _ := r.ReadString('\n')
		checkReply(t, strings.TrimSuffix(line, "\n"), []byte("hi"))
		if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("after idling: %v, want the server to close", err)
		}
		if got := time.Since(start); got != 5*time.Minute {
			t.Errorf("closed after %v idle, want 5m", got)
		}
		cli.Close()
	})
}

func TestTCPShutdownWithConnections(t *testing.T) {
	h := newHandler(t)
	srv := h.TCPServer(defaults())
	ln := nettest.ListenTCP(t)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	conns := make([]*nettest.LineConn, 5)
	for i := range conns {
		conns[i] = nettest.DialLines(t, ln.Addr().String())
		conns[i].Send("before shutdown")
		checkReply(t, conns[i].ReadLine(), []byte("before shutdown"))
	}
	// Lines already sent when Shutdown starts are still answered.
	io.WriteString(conns[0].C, "in flight 1\nin flight 2\n")
	checkReply(t, conns[0].ReadLine(), []byte("in flight 1"))
	ctx, cancel := context.WithTimeout(context.Background(), nettest.Timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	checkReply(t, conns[0].ReadLine(), []byte("in flight 2"))
	for _, c := range conns {
		c.ExpectEOF()
	}
	if err := <-errc; !errors.Is(err, netserve.ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
}

func TestUDP(t *testing.T) {
	h := newHandler(t)
	srv := h.UDPServer(defaults())
	addr := nettest.ServeUDP(t, srv)
	c := nettest.Dial(t, "udp", addr)
	buf := make([]byte, 70000)
	for _, msg := range [][]byte{[]byte("hello"), {}, []byte("line\n"), bytes.Repeat([]byte{0xff}, netserve.MaxDatagram)} {
		c.SetDeadline(time.Now().Add(nettest.Timeout))
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("send %d bytes: %v", len(msg), err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reply to %d bytes: %v", len(msg), err)
		}
		if n > proto.MaxLen {
			t.Errorf("reply to %d bytes is %d bytes, over the bound %d", len(msg), n, proto.MaxLen)
		}
		checkReply(t, string(buf[:n]), msg)
	}
	stop(t, srv)
	if got := testutil.ToFloat64(h.Metrics.Messages.WithLabelValues("udp")); got != 4 {
		t.Errorf("udp messages counted = %v, want 4", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*server.Config)
		ok     bool
	}{
		{"defaults", func(*server.Config) {}, true},
		{"protocol", func(c *server.Config) { c.Protocol = "sctp" }, false},
		{"max line", func(c *server.Config) { c.MaxLineBytes = 0 }, false},
		{"max conns", func(c *server.Config) { c.MaxConns = -1 }, false},
		{"readers", func(c *server.Config) { c.UDPReaders = 0 }, false},
		{"per source", func(c *server.Config) { c.MaxConnsPerSource = 0 }, false},
		{"no per-source limit", func(c *server.Config) { c.MaxConnsPerSource = -1 }, true},
		{"credit", func(c *server.Config) { c.UDPCredit = -1 }, false},
	}
	for _, tt := range tests {
		c := defaults()
		tt.modify(&c)
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// TestNilLogAndMetrics: a Handler without Log and Metrics answers over both
// protocols, and for a line too long, counting nothing.
func TestNilLogAndMetrics(t *testing.T) {
	h := &server.Handler{}
	cfg := defaults()
	cfg.MaxLineBytes = 8
	c := nettest.DialLines(t, nettest.ServeTCP(t, h.TCPServer(cfg)))
	c.Send("hello")
	if r, err := proto.Parse([]byte(c.ReadLine())); err != nil || !r.Matches([]byte("hello")) {
		t.Errorf("TCP reply: %+v, %v", r, err)
	}
	c.Send("far too long")
	c.Expect("ERROR line too long")
	u := nettest.Dial(t, "udp", nettest.ServeUDP(t, h.UDPServer(cfg)))
	u.SetDeadline(time.Now().Add(nettest.Timeout))
	u.Write([]byte("hi"))
	buf := make([]byte, 512)
	n, err := u.Read(buf)
	if r, perr := proto.Parse(buf[:n]); err != nil || perr != nil || !r.Matches([]byte("hi")) {
		t.Errorf("UDP reply %q: %v %v", buf[:n], err, perr)
	}
}
