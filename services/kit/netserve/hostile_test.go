package netserve_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

// readFrames reads 10-byte frames with Read (as a length-framed protocol
// does), answering each with "ok\n" or the read error.
func readFrames(errc chan<- error) netserve.HandlerFunc {
	return func(_ context.Context, c *netserve.Conn) {
		var buf [10]byte
		for {
			c.StartMessage()
			if _, err := io.ReadFull(c, buf[:]); err != nil {
				errc <- err
				return
			}
			c.WriteString("ok\n")
			c.Flush()
		}
	}
}

// A client that sends a frame one byte at a time, each within the idle
// timeout, must still be cut at the timeout: the deadline covers the whole
// message, not each read (issue 16, finding 1).
func TestTrickleClosedAtIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errc := make(chan error, 1)
		srv := &netserve.Server{Handler: readFrames(errc), IdleTimeout: 8 * time.Second}
		cli, sc := net.Pipe()
		go srv.ServeConn(sc)
		r := bufio.NewReader(cli)

		// A whole frame at once is served, and the next one gets a fresh
		// deadline.
		io.WriteString(cli, "0123456789")
		if line, err := r.ReadString('\n'); line != "ok\n" {
			t.Fatalf("whole frame: got %q (%v), want ok", line, err)
		}
		start := time.Now()
		for i := 0; i < 10; i++ {
			time.Sleep(3 * time.Second)
			if _, err := cli.Write([]byte{'x'}); err != nil {
				break // the server closed the connection
			}
		}
		err := <-errc
		if !errors.Is(err, netserve.ErrIdleTimeout) {
			t.Fatalf("trickled frame: read error %v, want %v", err, netserve.ErrIdleTimeout)
		}
		synctest.Wait()
		if waited := time.Since(start); waited > 9*time.Second {
			t.Errorf("trickle closed after %v, want at the 8s idle timeout", waited)
		}
		cli.Close()
		synctest.Wait()
	})
}

// A line trickled a byte at a time is cut at the idle timeout too.
func TestTrickledLineClosedAtIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &netserve.Server{Handler: echoLines(), IdleTimeout: 8 * time.Second}
		cli, sc := net.Pipe()
		go srv.ServeConn(sc)
		r := bufio.NewReader(cli)
		got := make(chan string, 1)
		go func() {
			line, _ := r.ReadString('\n')
			got <- line
		}()
		start := time.Now()
		for i := 0; i < 10; i++ {
			time.Sleep(3 * time.Second)
			if _, err := cli.Write([]byte{'x'}); err != nil {
				break
			}
		}
		if line := <-got; line != "ERR idle timeout\n" {
			t.Fatalf("trickled line: got %q, want the idle timeout", line)
		}
		if waited := time.Since(start); waited > 9*time.Second {
			t.Errorf("trickle closed after %v, want at the 8s idle timeout", waited)
		}
		cli.Close()
		synctest.Wait()
	})
}

// With 1,000 idle connections from 127.0.0.1 a client from 127.0.0.2 is
// served at once (issue 16, finding 5): MaxConnsPerSource is on by default.
func TestIdleSourceCannotLockOutAnother(t *testing.T) {
	srv := &netserve.Server{Handler: echoLines(), MaxConns: 1000, BusyMessage: []byte("BUSY\n")}
	addr := nettest.ServeTCP(t, srv)
	nettest.Hold(t, addr, 1000, nil)

	// The listen backlog is first in, first out: this connection is
	// accepted after all 1,000.
	c := nettest.DialFrom(t, "127.0.0.2", addr)
	l := &nettest.LineConn{C: c, R: bufio.NewReader(c)}
	start := time.Now()
	c.SetWriteDeadline(time.Now().Add(nettest.Timeout))
	io.WriteString(c, "hello\n")
	c.SetReadDeadline(time.Now().Add(nettest.Timeout))
	line, err := l.R.ReadString('\n')
	if line != "hello\n" {
		t.Fatalf("client from 127.0.0.2 got %q (%v), want its echo", line, err)
	}
	t.Logf("served in %v; %d connections active", time.Since(start), srv.ActiveConns())
	if n := srv.ActiveConns(); n > netserve.DefaultMaxConnsPerSource+1 {
		t.Errorf("%d connections active, want at most %d from 127.0.0.1 and 1 more", n, netserve.DefaultMaxConnsPerSource)
	}
}

func TestMaxConnsPerSource(t *testing.T) {
	srv := &netserve.Server{Handler: echoLines(), MaxConnsPerSource: 2, BusyMessage: []byte("BUSY\n")}
	addr, a, _ := twoServedThirdBusy(t, srv)

	o := nettest.DialFrom(t, "127.0.0.3", addr)
	io.WriteString(o, "other\n")
	o.SetReadDeadline(time.Now().Add(nettest.Timeout))
	if line, err := bufio.NewReader(o).ReadString('\n'); line != "other\n" {
		t.Fatalf("another source got %q (%v), want its echo", line, err)
	}

	// A closed connection frees its source's slot.
	a.C.Close()
	nettest.Until(t, "the closed connection's slot to be free", func() bool { return srv.ActiveConns() <= 2 })
	d := nettest.DialLines(t, addr)
	d.Send("d")
	d.Expect("d")
}

func TestSourceQuota(t *testing.T) {
	q := netserve.SourceQuota{PerSource: 2, Total: 3}
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("2001:db8::1")
	b2 := netip.MustParseAddr("2001:db8::2") // the same /64
	c := netip.MustParseAddr("2001:db8:0:1::1")
	steps := []struct {
		addr netip.Addr
		want int
	}{
		{a, netserve.QuotaOK},
		{a, netserve.QuotaOK},
		{a, netserve.QuotaSource},
		{b, netserve.QuotaOK},
		{b2, netserve.QuotaTotal},
		{c, netserve.QuotaTotal},
	}
	for i, s := range steps {
		if got := q.Acquire(s.addr); got != s.want {
			t.Errorf("step %d: Acquire(%v) = %d, want %d", i, s.addr, got, s.want)
		}
	}
	q.Release(b)
	if got := q.Acquire(b2); got != netserve.QuotaOK {
		t.Errorf("after Release: Acquire(%v) = %d, want OK", b2, got)
	}
	if got := q.Acquire(b); got != netserve.QuotaTotal {
		t.Errorf("Acquire(%v) = %d, want QuotaTotal", b, got)
	}
	q.Release(a)
	q.Release(a)
	q.Release(b2)
	if src, total := q.Held(a); src != 0 || total != 0 {
		t.Errorf("Held after releasing all = %d, %d, want 0, 0", src, total)
	}
}

// CutWrites ends a write blocked on a client that does not read at the
// time given, long before the WriteTimeout, and bounds later writes too.
func TestCutWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conns := make(chan *netserve.Conn, 1)
		errc := make(chan error, 2)
		srv := &netserve.Server{WriteTimeout: time.Minute, Handler: netserve.HandlerFunc(func(_ context.Context, c *netserve.Conn) {
			conns <- c
			_, err := c.Write(make([]byte, 64<<10)) // more than the buffer: it blocks
			errc <- err
			_, err = c.Write(make([]byte, 64<<10))
			errc <- err
		})}
		cli, sc := net.Pipe()
		defer cli.Close()
		go srv.ServeConn(sc)
		c := <-conns
		synctest.Wait()
		start := time.Now()
		c.CutWrites(start.Add(time.Second))
		for i := range 2 {
			if err := <-errc; !errors.Is(err, netserve.ErrWriteTimeout) {
				t.Fatalf("write %d after CutWrites: %v, want %v", i+1, err, netserve.ErrWriteTimeout)
			}
		}
		if took := time.Since(start); took != time.Second {
			t.Errorf("writes cut after %v, want 1s (not the 1m write timeout)", took)
		}
	})
}

// Once three quarters of a burst of connections (64 or more) have closed,
// their memory is handed back to the system at once, rather than held until
// something allocates again (issue 16, finding 5: autoreply and filestream
// kept the memory of 1,000 connections after they closed).
func TestMemoryGivenBackAfterBurst(t *testing.T) {
	var calls atomic.Int32
	defer netserve.SetFreeOSMemory(func() { calls.Add(1) })()
	srv := &netserve.Server{Handler: echoLines(), MaxConnsPerSource: -1}
	addr := nettest.ServeTCP(t, srv)
	waitActive := func(n int) {
		t.Helper()
		nettest.Until(t, fmt.Sprintf("%d connections active", n), func() bool { return srv.ActiveConns() == n })
	}
	conns := nettest.Hold(t, addr, 300, nil)
	waitActive(300)
	for _, c := range conns[:200] {
		c.Close()
	}
	waitActive(100)
	if n := calls.Load(); n != 0 {
		t.Fatalf("memory given back %d times with a third of the burst still open, want 0", n)
	}
	for _, c := range conns[200:] {
		c.Close()
	}
	waitActive(0)
	// At 75 open (a quarter of 300), then at 11 (75 less 64).
	if n := calls.Load(); n != 2 {
		t.Errorf("memory given back %d times after the burst closed, want twice", n)
	}
}
