package netserve_test

import (
	"bufio"
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

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoLines answers each line with "<line>\n", or with "ERR <error>" and
// returns on the first read error.
func echoLines() netserve.HandlerFunc {
	return func(_ context.Context, c *netserve.Conn) {
		for {
			line, err := c.ReadLine()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					fmt.Fprintf(c, "ERR %v\n", err)
				}
				return
			}
			c.Write(append(line, '\n'))
			c.FlushIfDrained()
		}
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		name string
		max  int
		give string
		want string
	}{
		{"plain", 0, "a\nbc\n", "a\nbc\n"},
		{"crlf", 0, "a\r\nb\r\n", "a\nb\n"},
		{"empty lines", 0, "\n\r\n", "\n\n"},
		{"lone cr kept inside", 0, "a\rb\n", "a\rb\n"},
		{"binary", 0, "\x00\xff\x01\n", "\x00\xff\x01\n"},
		{"exactly max", 4, "abcd\n", "abcd\n"},
		{"exactly max with crlf", 4, "abcd\r\n", "abcd\n"},
		{"over max", 4, "abcde\n", "ERR line too long\n"},
		{"over buffer under max", 40000, strings.Repeat("x", 30000) + "\n", strings.Repeat("x", 30000) + "\n"},
		{"over buffer and max", 20000, strings.Repeat("x", 30000) + "\n", "ERR line too long\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &netserve.Server{Handler: echoLines(), MaxLineBytes: tt.max}
			cli, sc := net.Pipe()
			done := make(chan struct{})
			go func() { srv.ServeConn(sc); close(done) }()
			go io.WriteString(cli, tt.give)
			got := make([]byte, len(tt.want))
			cli.SetReadDeadline(time.Now().Add(nettest.Timeout))
			n, err := io.ReadFull(cli, got)
			cli.Close()
			<-done
			if err != nil || string(got[:n]) != tt.want {
				t.Errorf("ReadLine(%q) wrote %q, want %q", trunc(tt.give), trunc(string(got[:n])), trunc(tt.want))
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:20] + "..." + s[len(s)-20:]
	}
	return s
}

func TestReadLineUnexpectedEOF(t *testing.T) {
	got := make(chan error, 1)
	srv := &netserve.Server{Handler: netserve.HandlerFunc(func(_ context.Context, c *netserve.Conn) {
		_, err := c.ReadLine()
		got <- err
	})}
	addr := nettest.ServeTCP(t, srv)
	c := nettest.Dial(t, "tcp", addr)
	io.WriteString(c, "half a line")
	c.(*net.TCPConn).CloseWrite()
	select {
	case err := <-got:
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ReadLine after a partial line and EOF = %v, want io.ErrUnexpectedEOF", err)
		}
	case <-time.After(nettest.Timeout):
		t.Fatal("ReadLine did not return")
	}
}

func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &netserve.Server{Handler: echoLines(), IdleTimeout: time.Minute}
		cli, sc := net.Pipe()
		go srv.ServeConn(sc)
		r := bufio.NewReader(cli)

		start := time.Now()
		io.WriteString(cli, "hi\n")
		if line, _ := r.ReadString('\n'); line != "hi\n" {
			t.Fatalf("got %q, want %q", line, "hi\n")
		}
		line, err := r.ReadString('\n')
		if line != "ERR idle timeout\n" {
			t.Fatalf("after idling got %q (%v), want the idle timeout", line, err)
		}
		if waited := time.Since(start); waited != time.Minute {
			t.Errorf("idle close after %v, want exactly %v", waited, time.Minute)
		}
		cli.Close()
		synctest.Wait()
	})
}

func TestMaxConns(t *testing.T) {
	srv := &netserve.Server{Handler: echoLines(), MaxConns: 2, BusyMessage: []byte("BUSY\n")}
	addr, a, b := twoServedThirdBusy(t, srv)

	// The others are unharmed, and a closed slot is free again.
	a.Send("still")
	a.Expect("still")
	b.C.Close()
	nettest.Until(t, "the closed connection's slot to be free", func() bool { return srv.ActiveConns() <= 1 })
	d := nettest.DialLines(t, addr)
	d.Send("d")
	d.Expect("d")
}

// twoServedThirdBusy serves srv, whose limit is two connections from
// 127.0.0.1, and checks that two are served and a third gets BUSY and is
// closed. It returns the address and the two connections served.
func twoServedThirdBusy(t *testing.T, srv *netserve.Server) (addr string, a, b *nettest.LineConn) {
	t.Helper()
	addr = nettest.ServeTCP(t, srv)
	a = nettest.DialLines(t, addr)
	b = nettest.DialLines(t, addr)
	a.Send("a")
	a.Expect("a")
	b.Send("b")
	b.Expect("b")
	c := nettest.DialLines(t, addr)
	c.Expect("BUSY")
	c.ExpectEOF()
	return addr, a, b
}

func TestPipelinedBurstInOrder(t *testing.T) {
	srv := &netserve.Server{Handler: echoLines()}
	addr := nettest.ServeTCP(t, srv)
	c := nettest.DialLines(t, addr)
	const n = 5000
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	go func() { io.WriteString(c.C, b.String()) }()
	for i := range n {
		c.Expect(fmt.Sprintf("line %d", i))
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	srv := &netserve.Server{Handler: netserve.HandlerFunc(func(_ context.Context, c *netserve.Conn) {
		for {
			line, err := c.ReadLine()
			if err != nil {
				return
			}
			if string(line) == "slow" {
				close(started)
				<-release
			}
			c.Write(append(line, '\n'))
			c.FlushIfDrained()
		}
	})}
	ln := nettest.ListenTCP(t)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	c := nettest.DialLines(t, ln.Addr().String())
	idle := nettest.DialLines(t, ln.Addr().String())
	idle.Send("hello")
	idle.Expect("hello")
	// "slow" and the two lines after it arrive together; all three are
	// in flight when Shutdown starts and must be answered.
	io.WriteString(c.C, "slow\nafter1\nafter2\n")
	<-started

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	if err := <-serveErr; !errors.Is(err, netserve.ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	// New connections are refused once Serve has returned.
	if c2, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c2.Close()
		t.Error("dial after Shutdown succeeded, want refused")
	}
	close(release)
	for _, want := range []string{"slow", "after1", "after2"} {
		c.Expect(want)
	}
	c.ExpectEOF()
	idle.ExpectEOF()
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
	if err := srv.Serve(nettest.ListenTCP(t)); !errors.Is(err, netserve.ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestShutdownGivesUp(t *testing.T) {
	stuck := make(chan struct{})
	var ctxEnded sync.WaitGroup
	ctxEnded.Add(1)
	srv := &netserve.Server{Handler: netserve.HandlerFunc(func(ctx context.Context, c *netserve.Conn) {
		c.ReadLine()
		close(stuck)
		<-ctx.Done() // a handler that only stops when told
		ctxEnded.Done()
	})}
	addr := nettest.ServeTCP(t, srv)
	c := nettest.DialLines(t, addr)
	c.Send("x")
	<-stuck
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown of a stuck handler = %v, want DeadlineExceeded", err)
	}
	ctxEnded.Wait()
}

func TestWriteTimeoutFreesHandler(t *testing.T) {
	done := make(chan error, 1)
	srv := &netserve.Server{
		WriteTimeout: 100 * time.Millisecond,
		Handler: netserve.HandlerFunc(func(_ context.Context, c *netserve.Conn) {
			chunk := make([]byte, 64<<10)
			for {
				if _, err := c.Write(chunk); err != nil {
					done <- err
					return
				}
			}
		}),
	}
	addr := nettest.ServeTCP(t, srv)
	nettest.Dial(t, "tcp", addr) // never reads
	select {
	case err := <-done:
		if !errors.Is(err, netserve.ErrWriteTimeout) {
			t.Errorf("write to a client that never reads = %v, want ErrWriteTimeout", err)
		}
	case <-time.After(nettest.Timeout):
		t.Fatal("handler still blocked writing to a client that never reads")
	}
}
