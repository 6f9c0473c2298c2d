package netserve_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

// TestGoWaitedFor: Shutdown waits for a goroutine a handler started, and
// the socket stays open for it until it returns.
func TestGoWaitedFor(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	wrote := make(chan error, 1)
	srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(func(p *netserve.Packet) {
		conn, to := p.Conn(), p.From
		p.Go(func(ctx context.Context) {
			close(started)
			<-release
			_, err := conn.WriteToUDPAddrPort([]byte("late"), to)
			wrote <- err
		})
	})}
	addr := nettest.ServeUDP(t, srv)
	c := nettest.Dial(t, "udp", addr)
	c.Write([]byte("go"))
	<-started
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown = %v before the owned goroutine returned", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Errorf("owned goroutine's write during Shutdown = %v, want the socket still open", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if srv.Go(func(context.Context) { t.Error("ran after Shutdown") }) {
		t.Error("Go after Shutdown = true, want false")
	}
}

// TestGoCut: shortly before Shutdown's deadline an owned goroutine's
// context ends with ErrServerClosed; one that returns then lets Shutdown
// end cleanly (nil) within its time.
func TestGoCut(t *testing.T) {
	srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(upper)}
	nettest.ServeUDP(t, srv)
	cause := make(chan error, 1)
	srv.Go(func(ctx context.Context) {
		<-ctx.Done()
		cause <- context.Cause(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v, want nil (the goroutine returned when cut off)", err)
	}
	if ctx.Err() != nil {
		t.Error("Shutdown returned after its deadline")
	}
	if err := <-cause; !errors.Is(err, netserve.ErrServerClosed) {
		t.Errorf("owned goroutine's cause = %v, want ErrServerClosed", err)
	}
}

// TestGoForced: an owned goroutine that does not return when told holds
// Shutdown only until its deadline, which Shutdown then returns.
func TestGoForced(t *testing.T) {
	srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(upper)}
	nettest.ServeUDP(t, srv)
	release := make(chan struct{})
	defer close(release)
	srv.Go(func(ctx context.Context) { <-release })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
	}
}

// TestGoWorkerStopsAfterReads: a worker's context ends once the read loops
// have stopped, and Shutdown then waits for it.
func TestGoWorkerStopsAfterReads(t *testing.T) {
	var served atomic.Int64
	srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(func(p *netserve.Packet) {
		served.Add(1)
		upper(p)
	})}
	addr := nettest.ServeUDP(t, srv)
	stopped := make(chan int64, 1)
	srv.GoWorker(func(ctx context.Context) error {
		<-ctx.Done()
		stopped <- served.Load()
		return ctx.Err()
	})
	c := nettest.Dial(t, "udp", addr)
	c.SetDeadline(time.Now().Add(nettest.Timeout))
	c.Write([]byte("x"))
	if _, err := c.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	select {
	case n := <-stopped:
		if n != 1 {
			t.Errorf("worker stopped after %d datagrams served, want 1", n)
		}
	default:
		t.Error("Shutdown returned before the worker")
	}
}

// loopCounter gives each read loop its own counter.
type loopCounter struct{ loops atomic.Int64 }

func (h *loopCounter) ServePacket(p *netserve.Packet) { panic("the loops' handlers serve") }

func (h *loopCounter) NewLoop(*net.UDPConn) netserve.PacketHandler {
	h.loops.Add(1)
	n := 0
	return netserve.PacketHandlerFunc(func(p *netserve.Packet) {
		n++ // no lock: one loop
		p.Reply(strconv.AppendInt(p.Out, int64(n), 10))
	})
}

func TestLoopHandler(t *testing.T) {
	h := &loopCounter{}
	srv := &netserve.PacketServer{Handler: h, Readers: 3}
	pc := nettest.ListenUDP(t)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServePacket(pc) }()
	c := nettest.Dial(t, "udp", pc.LocalAddr().String())
	c.SetDeadline(time.Now().Add(nettest.Timeout))
	c.Write([]byte("x"))
	buf := make([]byte, 8)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "1" {
		t.Errorf("first reply = %q, %v; want \"1\"", buf[:n], err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-errc // every read loop has run, and called NewLoop first
	if got := h.loops.Load(); got != 3 {
		t.Errorf("NewLoop called %d times, want 3 (one per read loop)", got)
	}
}

// TestGoWorkerFails: a worker's error stops the server, and ServePacket
// returns it.
func TestGoWorkerFails(t *testing.T) {
	srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(upper)}
	pc := nettest.ListenUDP(t)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServePacket(pc) }()
	boom := errors.New("boom")
	srv.GoWorker(func(context.Context) error { return boom })
	select {
	case err := <-errc:
		if !errors.Is(err, boom) {
			t.Errorf("ServePacket = %v, want the worker's error", err)
		}
	case <-time.After(nettest.Timeout):
		t.Fatal("ServePacket still serving after its worker failed")
	}
}

// TestShutdownBoundedWhenStuck: a handler, or an owned goroutine, that
// ignores every signal to stop holds Shutdown only briefly past its
// context: the wait after forcing is bounded too.
func TestShutdownBoundedWhenStuck(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	tcp := &netserve.Server{Handler: netserve.HandlerFunc(func(context.Context, *netserve.Conn) {
		close(started)
		<-release // ignores ctx and the closed connection
	})}
	c := nettest.Dial(t, "tcp", nettest.ServeTCP(t, tcp))
	c.Write([]byte("x\n"))
	<-started
	udp := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(upper)}
	nettest.ServeUDP(t, udp)
	udp.Go(func(context.Context) { <-release })

	for name, shutdown := range map[string]func(context.Context) error{"Server": tcp.Shutdown, "PacketServer": udp.Shutdown} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		start := time.Now()
		err := shutdown(ctx)
		cancel()
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s.Shutdown with a stuck goroutine took %v", name, took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s.Shutdown = %v, want DeadlineExceeded", name, err)
		}
	}
}
