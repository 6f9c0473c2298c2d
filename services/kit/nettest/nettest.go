// Package nettest holds loopback helpers for tests of socklab servers: real
// sockets on 127.0.0.1 with kernel-chosen ports, servers stopped and checked
// at the end of the test, and line-oriented send/expect with deadlines so a
// hung server fails the test instead of hanging it.
//
// Every helper calls t.Fatal and so must run on the test's goroutine.
package nettest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/netserve"
)

// Timeout bounds every wait in this package.
const Timeout = 10 * time.Second

// ListenTCP listens on 127.0.0.1 with a port the kernel picks.
func ListenTCP(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen tcp: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// ListenUDP binds 127.0.0.1 with a port the kernel picks.
func ListenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// ServeTCP runs srv on a fresh loopback listener and returns its address. At
// the end of the test it shuts srv down and fails the test unless Serve
// returned ErrServerClosed.
func ServeTCP(t testing.TB, srv *netserve.Server) string {
	t.Helper()
	return ServeListener(t, srv, ListenTCP(t))
}

// ServeListener is ServeTCP on a listener of the caller's, for a service
// that opens its listeners its own way.
func ServeListener(t testing.TB, srv *netserve.Server, ln net.Listener) string {
	t.Helper()
	serveUntilCleanup(t, "Serve", func() error { return srv.Serve(ln) }, srv.Shutdown)
	return ln.Addr().String()
}

// ServeUDP runs srv on a fresh loopback socket and returns its address, with
// the same checks at the end as ServeTCP.
func ServeUDP(t testing.TB, srv *netserve.PacketServer) string {
	t.Helper()
	pc := ListenUDP(t)
	serveUntilCleanup(t, "ServePacket", func() error { return srv.ServePacket(pc) }, srv.Shutdown)
	return pc.LocalAddr().String()
}

// serveUntilCleanup runs serve (named name) in a goroutine until the test
// ends, then shuts it down, failing the test unless both went cleanly.
func serveUntilCleanup(t testing.TB, name string, serve func() error, shutdown func(context.Context) error) {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, netserve.ErrServerClosed) {
			t.Errorf("%s returned %v, want ErrServerClosed", name, err)
		}
	})
}

// Dial connects to addr over network, retrying refused connections until
// Timeout (a server started by another goroutine may not listen yet).
func Dial(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		c, err := net.DialTimeout(network, addr, Timeout)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s %s: %v", network, addr, err)
		}
		time.Sleep(10 * time.Millisecond) // a retry interval, not synchronisation
	}
}

// LineConn sends and expects lines on a connection.
type LineConn struct {
	t testing.TB
	C net.Conn
	R *bufio.Reader
}

// DialLines dials a TCP server and wraps the connection.
func DialLines(t testing.TB, addr string) *LineConn {
	t.Helper()
	c := Dial(t, "tcp", addr)
	return &LineConn{t: t, C: c, R: bufio.NewReaderSize(c, 1<<16)}
}

// Send writes s followed by "\n".
func (l *LineConn) Send(s string) {
	l.t.Helper()
	l.C.SetWriteDeadline(time.Now().Add(Timeout))
	if _, err := io.WriteString(l.C, s+"\n"); err != nil {
		l.t.Fatalf("send %q: %v", s, err)
	}
}

// ReadLine returns the next line without its end, failing the test on error.
func (l *LineConn) ReadLine() string {
	l.t.Helper()
	s, err := l.TryReadLine()
	if err != nil {
		l.t.Fatalf("read line: %v", err)
	}
	return s
}

// TryReadLine returns the next line without its end, or the error.
func (l *LineConn) TryReadLine() (string, error) {
	l.C.SetReadDeadline(time.Now().Add(Timeout))
	s, err := l.R.ReadString('\n')
	if err != nil {
		return s, err
	}
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r"), nil
}

// Expect reads one line and fails the test unless it equals want.
func (l *LineConn) Expect(want string) {
	l.t.Helper()
	if got := l.ReadLine(); got != want {
		l.t.Fatalf("got line %q, want %q", got, want)
	}
}

// ExpectEOF fails the test unless the server closes the connection next.
func (l *LineConn) ExpectEOF() {
	l.t.Helper()
	l.C.SetReadDeadline(time.Now().Add(Timeout))
	b, err := l.R.ReadByte()
	if err == nil {
		rest, _ := l.R.Peek(l.R.Buffered())
		l.t.Fatalf("got %q, want the connection closed", append([]byte{b}, rest...))
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		l.t.Fatalf("got %v, want the connection closed", err)
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// LogWatcher reads JSON log lines from a command's stderr in the
// background, so a test can wait for several of them in turn.
type LogWatcher struct {
	lines chan map[string]any
}

// WatchLog starts reading r. It reads to the end, so the writer never
// blocks; lines beyond the first 10,000 are dropped.
func WatchLog(r io.Reader) *LogWatcher {
	w := &LogWatcher{lines: make(chan map[string]any, 10000)}
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			select {
			case w.lines <- m:
			default:
			}
		}
		io.Copy(io.Discard, r)
	}()
	return w
}

// Wait returns the fields of the next log line whose "msg" is msg, skipping
// others, and fails the test if none comes within Timeout.
func (w *LogWatcher) Wait(t testing.TB, msg string) map[string]any {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-w.lines:
			if !ok {
				t.Fatalf("log ended before %q", msg)
			}
			if m["msg"] == msg {
				return m
			}
		case <-timer.C:
			t.Fatalf("no %q log line within %v", msg, Timeout)
		}
	}
}

// WaitLog reads JSON log lines from r until one whose "msg" is msg, and
// returns its fields; the rest of r is drained. Tests of a command's run use
// it to learn the address a server bound ("listening"). To wait for more
// than one line, use WatchLog.
func WaitLog(t testing.TB, r io.Reader, msg string) map[string]any {
	t.Helper()
	return WatchLog(r).Wait(t, msg)
}

// ServeFunc runs a bare TCP server on loopback, without netserve: an accept
// loop and a goroutine per connection calling serve, which the connection's
// close follows. Tests use it for fakes that answer wrongly on purpose, and
// benchmarks for the raw reference servers. At the end of the test it closes
// the listener and every connection and waits for the goroutines.
func ServeFunc(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	ln := ListenTCP(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// RefusedAddr returns a TCP address on 127.0.0.1 where connections are
// refused until the test ends. A socket bound to the port, not listening,
// holds it: a port closed a moment ago could be taken by any listener,
// another test's server among them, and then answer.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	// No SO_REUSEADDR: a listener that sets it still cannot share the port.
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind 127.0.0.1:0: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// Until waits for cond to hold, looking again every millisecond, and fails
// the test naming what it waited for when Timeout passes first. It is for
// state that has no event to wait on (a counter another goroutine moves),
// never for time itself.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", Timeout, what)
		}
		time.Sleep(time.Millisecond) // a polling interval, not synchronisation
	}
}
