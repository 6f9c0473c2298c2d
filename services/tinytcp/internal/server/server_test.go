package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

var update = flag.Bool("update", false, "rewrite testdata/transcripts from the server's answers")

// TestTranscripts replays each conversation of testdata/transcripts against
// a server whose clock stands at the seed's instant, and compares the
// conversation it gets, in the client's output form, byte for byte.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			addr, _ := serve(t, newHandler(), defaultConfig(t))
			got := replay(t, addr, want)
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("conversation differs from %s\n--- got\n%s--- want\n%s", file, got, want)
			}
		})
	}
}

// replay plays the client's part of a transcript: "CONNECT to" opens a
// connection, "-> X" sends X; the server's lines ("<- ") are recorded from
// what it sends. A connection must be closed by the server after BYE.
func replay(t *testing.T, addr string, script []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	var lc *nettest.LineConn
	var last string
	hangUp := func() {
		if lc == nil {
			return
		}
		if last == proto.ByeReply {
			lc.ExpectEOF()
		}
		lc.C.Close()
		lc = nil
	}
	for line := range strings.Lines(string(script)) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "CONNECT to "):
			hangUp()
			out.WriteString(line + "\n")
			lc = nettest.DialLines(t, addr)
			last = lc.ReadLine()
			fmt.Fprintf(&out, "<- %s\n", last)
		case strings.HasPrefix(line, "-> "):
			if lc == nil {
				t.Fatalf("transcript sends %q before CONNECT", line)
			}
			fmt.Fprintf(&out, "%s\n", line)
			lc.Send(line[3:])
			reply, err := lc.TryReadLine()
			if err != nil {
				fmt.Fprintf(&out, "== closed (%v)\n", err)
				lc.C.Close()
				lc = nil
				continue
			}
			last = reply
			fmt.Fprintf(&out, "<- %s\n", reply)
		case strings.HasPrefix(line, "<- "):
		default:
			t.Fatalf("transcript line %q: want CONNECT to, -> or <-", line)
		}
	}
	hangUp()
	return out.Bytes()
}

// TestPipelining sends 10,000 commands in one write and expects every
// answer, in order.
func TestPipelining(t *testing.T) {
	addr, _ := serve(t, newHandler(), defaultConfig(t))
	lc := nettest.DialLines(t, addr)
	lc.Expect(proto.DefaultBanner)
	const n = 10000
	var script bytes.Buffer
	want := make([]string, 0, n+1)
	for i := range n {
		switch i % 6 {
		case 0:
			script.WriteString("TIME\n")
			want = append(want, strings.TrimSuffix(seedTIME, "\n"))
		case 1:
			fmt.Fprintf(&script, "ECHO %d  pipelined\n", i)
			want = append(want, fmt.Sprintf("ECHO %d  pipelined", i))
		case 2:
			script.WriteString("help\r\n")
			want = append(want, proto.HelpReply)
		case 3:
			fmt.Fprintf(&script, "NOPE %d\n", i)
			want = append(want, "ERROR UNKNOWN_COMMAND")
		case 4:
			script.WriteString("ECHO\n")
			want = append(want, "ERROR BAD_ARGUMENTS")
		case 5:
			fmt.Fprintf(&script, "echo %d\r\n", i)
			want = append(want, fmt.Sprintf("ECHO %d", i))
		}
	}
	script.WriteString("QUIT\n")
	want = append(want, proto.ByeReply)

	errc := make(chan error, 1)
	go func() {
		lc.C.SetWriteDeadline(time.Now().Add(nettest.Timeout))
		_, err := lc.C.Write(script.Bytes())
		errc <- err
	}()
	for i, w := range want {
		if got := lc.ReadLine(); got != w {
			t.Fatalf("reply %d = %q, want %q", i, got, w)
		}
	}
	lc.ExpectEOF()
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
}

// countingListener counts the writes of the connections it accepts.
type countingListener struct {
	net.Listener
	mu     sync.Mutex
	writes int
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes++
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// TestPipeliningFewWrites checks on a real socket that a burst of 10,000
// commands is not answered with a write per line.
func TestPipeliningFewWrites(t *testing.T) {
	ln := &countingListener{Listener: nettest.ListenTCP(t)}
	srv := newHandler().TCPServer(defaultConfig(t))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer func() {
		srv.Shutdown(context.Background())
		<-errc
	}()
	lc := nettest.DialLines(t, ln.Addr().String())
	lc.Expect(proto.DefaultBanner)
	const n = 10000
	go func() {
		lc.C.SetWriteDeadline(time.Now().Add(nettest.Timeout))
		lc.C.Write(append(bytes.Repeat([]byte("ECHO x\n"), n), "QUIT\n"...))
	}()
	for i := range n {
		if got := lc.ReadLine(); got != "ECHO x" {
			t.Fatalf("reply %d = %q", i, got)
		}
	}
	lc.Expect(proto.ByeReply)
	lc.ExpectEOF()
	ln.mu.Lock()
	writes := ln.writes
	ln.mu.Unlock()
	if writes > n/50 {
		t.Errorf("%d commands answered in %d writes, want at most %d", n, writes, n/50)
	}
	t.Logf("%d commands answered in %d writes", n, writes)
}

// TestLongLineSocket checks that a huge line gets its error and a close,
// and that the server goes on serving others meanwhile.
func TestLongLineSocket(t *testing.T) {
	addr, _ := serve(t, newHandler(), defaultConfig(t))
	other := nettest.DialLines(t, addr)
	other.Expect(proto.DefaultBanner)

	lc := nettest.DialLines(t, addr)
	lc.Expect(proto.DefaultBanner)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lc.C.SetWriteDeadline(time.Now().Add(nettest.Timeout))
		// The server stops reading; this write ends in a reset or EPIPE.
		lc.C.Write(append([]byte("ECHO "), bytes.Repeat([]byte("y"), 4<<20)...))
	}()
	lc.Expect("ERROR LINE_TOO_LONG")
	lc.ExpectEOF()
	<-done

	other.Send("ECHO still here")
	other.Expect("ECHO still here")
	late := nettest.DialLines(t, addr)
	late.Expect(proto.DefaultBanner)
	late.Send("TIME")
	late.Expect(strings.TrimSuffix(seedTIME, "\n"))
}

// TestConcurrentClients runs many clients at once, each in lockstep and in
// bursts, all connected at the same time.
func TestConcurrentClients(t *testing.T) {
	const clients, rounds = 64, 50
	addr, srv := serve(t, newHandler(), defaultConfig(t))
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	errc := make(chan error, clients)
	ready.Add(clients)
	for i := range clients {
		wg.Go(func() {
			errc <- client(addr, i, rounds, &ready, start)
		})
	}
	ready.Wait() // every client has its banner
	if n := srv.ActiveConns(); n != clients {
		t.Errorf("ActiveConns = %d with %d clients connected", n, clients)
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
}

// client runs one client of TestConcurrentClients; it runs off the test
// goroutine, so it returns errors instead of failing the test.
func client(addr string, id, rounds int, ready *sync.WaitGroup, start <-chan struct{}) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("client %d: %w", id, err)
		}
	}()
	c, err := net.DialTimeout("tcp", addr, nettest.Timeout)
	if err != nil {
		ready.Done()
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(nettest.Timeout))
	r := bufio.NewReader(c)
	banner, err := r.ReadString('\n')
	ready.Done()
	if err != nil || banner != wantBanner {
		return fmt.Errorf("banner %q, %v", banner, err)
	}
	<-start
	expect := func(want string) error {
		got, err := r.ReadString('\n')
		if err != nil || got != want {
			return fmt.Errorf("got %q, %v; want %q", got, err, want)
		}
		return nil
	}
	for i := range rounds {
		// One command alone, then a burst of three in one write.
		fmt.Fprintf(c, "ECHO %d/%d\n", id, i)
		if err := expect(fmt.Sprintf("ECHO %d/%d\n", id, i)); err != nil {
			return err
		}
		fmt.Fprintf(c, "time\nECHO  %d \nBOGUS\n", i)
		for _, want := range []string{seedTIME, fmt.Sprintf("ECHO  %d \n", i), "ERROR UNKNOWN_COMMAND\n"} {
			if err := expect(want); err != nil {
				return err
			}
		}
	}
	io.WriteString(c, "QUIT\n")
	return expect("BYE\n")
}

func TestServerBusy(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.MaxConns = 2
	h := newHandler()
	srv := h.TCPServer(cfg)
	srv.Metrics = netserve.NewMetrics(prometheus.NewRegistry(), "tinytcp")
	addr := nettest.ServeTCP(t, srv)

	a := nettest.DialLines(t, addr)
	a.Expect(proto.DefaultBanner)
	b := nettest.DialLines(t, addr)
	b.Expect(proto.DefaultBanner)
	c := nettest.DialLines(t, addr)
	c.Expect("ERROR SERVER_BUSY")
	c.ExpectEOF()
	if n := testutil.ToFloat64(srv.Metrics.Refused); n != 1 {
		t.Errorf("connections_refused_total = %v, want 1", n)
	}

	a.Send("ECHO still served")
	a.Expect("ECHO still served")
	a.Send("QUIT")
	a.Expect(proto.ByeReply)
	a.ExpectEOF()
	// The slot frees once a's handler has returned, after its close (which
	// waits up to 100ms for a to close its side): retry for a bounded time.
	deadline := time.Now().Add(nettest.Timeout)
	for {
		d := nettest.DialLines(t, addr)
		line := d.ReadLine()
		if line == proto.DefaultBanner {
			break
		}
		if line != "ERROR SERVER_BUSY" || time.Now().After(deadline) {
			t.Fatalf("after a client left: got %q", line)
		}
		d.C.Close()
		time.Sleep(2 * time.Millisecond) // a retry interval, not synchronisation
	}
}

// TestIdleTimeout runs in a synctest bubble: the clock advances only when
// every goroutine is blocked, so the timeout is exact and instant.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler()
		cfg := defaultConfig(t) // IdleTimeout 5m
		srv := h.TCPServer(cfg)
		cc, sc := net.Pipe()
		defer cc.Close()
		go srv.ServeConn(sc)
		r := bufio.NewReader(cc)
		start := time.Now()
		expectLine(t, r, wantBanner)

		time.Sleep(4 * time.Minute)
		io.WriteString(cc, "TIME\n")
		expectLine(t, r, seedTIME)
		if got := time.Since(start); got != 4*time.Minute {
			t.Errorf("answered after %v", got)
		}
		// Half a line does not count as activity: the deadline is per line.
		time.Sleep(time.Minute)
		io.WriteString(cc, "TI")
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("read after idling: %v, want EOF", err)
		}
		if got := time.Since(start); got != 9*time.Minute {
			t.Errorf("closed after %v, want 9m (5m after the last complete line)", got)
		}
		if n := testutil.ToFloat64(h.Metrics.IdleTimeouts); n != 1 {
			t.Errorf("idle_timeouts_total = %v, want 1", n)
		}
	})
}

// TestIdleTimeoutStream checks that a client streaming pipelined commands
// whose writes end mid-line, so that the server's input never drains, is
// not taken for an idle one however long it goes on.
func TestIdleTimeoutStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler()
		srv := h.TCPServer(defaultConfig(t)) // IdleTimeout 5m
		cc, sc := net.Pipe()
		defer cc.Close()
		go srv.ServeConn(sc)
		r := bufio.NewReader(cc)
		expectLine(t, r, wantBanner)

		const bursts, perBurst = 12, 20
		replies := make(chan error, 1)
		go func() {
			for i := range bursts * perBurst {
				got, err := r.ReadString('\n')
				if want := fmt.Sprintf("ECHO %d\n", i); err != nil || got != want {
					replies <- fmt.Errorf("reply %d: got %q, %v; want %q", i, got, err, want)
					return
				}
			}
			replies <- nil
		}()
		start := time.Now()
		io.WriteString(cc, "ECHO 0")
		n := 1
		for range bursts {
			time.Sleep(time.Minute)
			var b strings.Builder
			for range perBurst {
				fmt.Fprintf(&b, "\nECHO %d", n)
				n++
			}
			if _, err := io.WriteString(cc, b.String()); err != nil {
				t.Fatalf("write after %v: %v", time.Since(start), err)
			}
		}
		io.WriteString(cc, "\n")
		if err := <-replies; err != nil {
			t.Fatal(err)
		}
		if n := testutil.ToFloat64(h.Metrics.IdleTimeouts); n != 0 {
			t.Errorf("idle_timeouts_total = %v after a %v stream, want 0", n, time.Since(start))
		}
	})
}

// TestWriteTimeout checks that a client that never reads does not hold the
// server's goroutine beyond the write timeout.
func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHandler()
		cfg := defaultConfig(t)
		cfg.WriteTimeout = 30 * time.Second
		srv := h.TCPServer(cfg)
		cc, sc := net.Pipe() // a pipe write blocks until the other end reads
		defer cc.Close()
		start := time.Now()
		done := make(chan struct{})
		go func() {
			srv.ServeConn(sc)
			close(done)
		}()
		<-done
		if got := time.Since(start); got != 30*time.Second {
			t.Errorf("handler returned after %v, want 30s", got)
		}
		if n := testutil.ToFloat64(h.Metrics.WriteErrors); n != 1 {
			t.Errorf("write_errors_total = %v, want 1", n)
		}
	})
}

func expectLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	got, err := r.ReadString('\n')
	if err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// TestShutdownIdle checks that Shutdown closes idle connections at once,
// returns nil, and stops accepting.
func TestShutdownIdle(t *testing.T) {
	ln := nettest.ListenTCP(t)
	srv := newHandler().TCPServer(defaultConfig(t))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var conns []*nettest.LineConn
	for range 3 {
		lc := nettest.DialLines(t, ln.Addr().String())
		lc.Expect(proto.DefaultBanner)
		conns = append(conns, lc)
	}
	conns[0].Send("ECHO before")
	conns[0].Expect("ECHO before")

	ctx, cancel := context.WithTimeout(context.Background(), nettest.Timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, lc := range conns {
		lc.ExpectEOF()
	}
	if err := <-errc; !errors.Is(err, netserve.ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("dial after Shutdown succeeded")
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestShutdownInFlight shuts down while a client's pipelined burst is being
// answered: what the client gets must be a correct, in-order prefix of the
// answers, and Shutdown must return once the handler has stopped.
func TestShutdownInFlight(t *testing.T) {
	ln := nettest.ListenTCP(t)
	srv := newHandler().TCPServer(defaultConfig(t))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	lc := nettest.DialLines(t, ln.Addr().String())
	lc.Expect(proto.DefaultBanner)
	const n = 100000
	var script bytes.Buffer
	for i := range n {
		fmt.Fprintf(&script, "ECHO %d\n", i)
	}
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		lc.C.SetWriteDeadline(time.Now().Add(nettest.Timeout))
		lc.C.Write(script.Bytes()) // ends early once the server closes
	}()
	lc.Expect("ECHO 0")

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), nettest.Timeout)
		defer cancel()
		shutdown <- srv.Shutdown(ctx)
	}()
	got := 1
	for ; got < n; got++ {
		line, err := lc.TryReadLine()
		if err != nil {
			break // closed by the shutdown
		}
		if want := fmt.Sprintf("ECHO %d", got); line != want {
			t.Fatalf("reply %d = %q, want %q", got, line, want)
		}
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-errc; !errors.Is(err, netserve.ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	lc.C.Close()
	<-writeDone
	t.Logf("%d of %d pipelined commands answered before the shutdown closed the connection", got, n)
}

// TestNetcat talks to the server with netcat-openbsd, a client that knows
// nothing of TinyTCP.
func TestNetcat(t *testing.T) {
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("nc (netcat-openbsd) is not installed")
	}
	addr, _ := serve(t, newHandler(), defaultConfig(t))
	host, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		name string
		args []string
		give string
		want string
	}{
		{
			name: "LF",
			give: "TIME\nECHO  hi  there \nhelp\nNOPE\nQUIT\nTIME\n",
			want: wantBanner + seedTIME + "ECHO  hi  there \n" + proto.HelpReply + "\nERROR UNKNOWN_COMMAND\nBYE\n",
		},
		{
			name: "CRLF",
			args: []string{"-C"}, // nc sends "\r\n" line ends, as telnet does
			give: "time\nEcho Hello from client\nECHO\nquit\n",
			want: wantBanner + seedTIME + "ECHO Hello from client\nERROR BAD_ARGUMENTS\nBYE\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), nettest.Timeout)
			defer cancel()
			args := append(append([]string{}, tt.args...), "-w", "10", host, port)
			cmd := exec.CommandContext(ctx, nc, args...)
			cmd.Stdin = strings.NewReader(tt.give)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("nc %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
			}
			if string(out) != tt.want {
				t.Errorf("nc got %q, want %q", out, tt.want)
			}
		})
	}
}
