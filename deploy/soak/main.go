// Command soak runs every lab server from bin/ on loopback under many
// concurrent honest clients for a while (1,000 per server, one request a
// second each, for 10 minutes by default), then reports the requests, the
// errors and each server's resident memory at the start, the peak and the
// end. It exits 1 on any error. `make soak` runs it; SOAK_DURATION sets the
// duration. It is not part of make check.
//
// The clients come from 127.0.0.1 to 127.0.0.<sources>, so that the
// servers' default per-source limits (256 TCP connections, 10,000 connid
// IDs, the UDP amplification credit) see several client hosts, as in a lab
// with several load generators. Traffic goes only to loopback, and every
// loop is bounded by the duration.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type options struct {
	bin      string
	duration time.Duration
	clients  int
	interval time.Duration
	sources  int
	sample   time.Duration
}

func run() error {
	var o options
	d, _ := time.ParseDuration(os.Getenv("SOAK_DURATION"))
	if d == 0 {
		d = 10 * time.Minute
	}
	flag.StringVar(&o.bin, "bin", "bin", "directory of the server binaries")
	flag.DurationVar(&o.duration, "duration", d, "how long the clients run (SOAK_DURATION)")
	flag.IntVar(&o.clients, "clients", 1000, "concurrent clients per server")
	flag.DurationVar(&o.interval, "interval", time.Second, "time between one client's requests")
	flag.IntVar(&o.sources, "sources", 8, "client source addresses 127.0.0.1 to 127.0.0.N")
	flag.DurationVar(&o.sample, "sample", 5*time.Second, "interval of the memory samples")
	flag.Parse()
	if o.duration > time.Hour || o.clients > 5000 || o.sources < 1 || o.sources > 250 {
		return errors.New("bounds: duration at most 1h, clients at most 5000, sources 1 to 250")
	}
	raiseNoFile(uint64(6*o.clients + 1024))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	servers, err := startServers(ctx, o.bin)
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	if err != nil {
		return err
	}

	loadCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		for i := range o.clients {
			src := net.IPv4(127, 0, 0, byte(1+i%o.sources))
			wg.Go(func() { s.client(loadCtx, o, i, src) })
		}
	}
	start := time.Now()
	fmt.Printf("soak: %d servers, %d clients each from %d source addresses, one request per %v each, for %v\n",
		len(servers), o.clients, o.sources, o.interval, o.duration)
	tick := time.NewTicker(o.sample)
	defer tick.Stop()
	// The first sample, once every client has had time to connect and send
	// its first request, is "connected". The start of the flat part is a
	// minute in (a quarter of a shorter run): by then connid's table holds
	// a whole TTL of IDs and every buffer pool is warm.
	connected := time.After(2 * o.interval)
	warm := time.After(min(time.Minute, o.duration/4))
	warmed := false
sampling:
	for {
		select {
		case <-loadCtx.Done():
			break sampling
		case <-connected:
			for _, s := range servers {
				s.mem.connected = rss(s.cmd.Process.Pid)
			}
		case <-warm:
			warmed = true
			for _, s := range servers {
				s.mem.startAt(rss(s.cmd.Process.Pid))
			}
		case <-tick.C:
			if warmed {
				for _, s := range servers {
					s.mem.add(rss(s.cmd.Process.Pid))
				}
			}
			if int(time.Since(start)/time.Minute) != int((time.Since(start)-o.sample)/time.Minute) {
				fmt.Printf("  %v: %s\n", time.Since(start).Round(time.Second), progress(servers))
			}
		}
	}
	for _, s := range servers {
		s.mem.endAt(rss(s.cmd.Process.Pid))
	}
	wg.Wait()
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}

	fmt.Printf("\n%-11s %10s %7s %8s %12s %10s %10s %10s\n", "server", "requests", "errors", "retries", "rss connect", "rss start", "rss peak", "rss end")
	total := int64(0)
	for _, s := range servers {
		fmt.Printf("%-11s %10d %7d %8d %11.1fM %9.1fM %9.1fM %9.1fM\n", s.name, s.ok.Load()+s.errs.Load(), s.errs.Load(), s.retries.Load(),
			mib(s.mem.connected), mib(s.mem.start), mib(s.mem.peak), mib(s.mem.end))
		total += s.errs.Load()
		for _, e := range s.firstErrors() {
			fmt.Printf("    error: %s\n", e)
		}
		if s.exited.Load() {
			fmt.Printf("    the server exited during the soak\n")
			total++
		}
	}
	if total > 0 {
		return fmt.Errorf("%d errors", total)
	}
	fmt.Println("soak: no errors")
	return nil
}

func progress(servers []*server) string {
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "%s %d/%d err, %.1fM  ", s.name, s.ok.Load()+s.errs.Load(), s.errs.Load(), mib(rss(s.cmd.Process.Pid)))
	}
	return b.String()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// memory holds one server's RSS samples: once the clients are connected,
// at the start of the flat part, the peak after it, and at the end.
type memory struct {
	mu                          sync.Mutex
	connected, start, peak, end int64
}

func (m *memory) startAt(b int64) { m.mu.Lock(); m.start, m.peak = b, b; m.mu.Unlock() }
func (m *memory) add(b int64)     { m.mu.Lock(); m.peak = max(m.peak, b); m.mu.Unlock() }
func (m *memory) endAt(b int64)   { m.mu.Lock(); m.end = b; m.peak = max(m.peak, b); m.mu.Unlock() }

// rss reads a process's resident set size from /proc.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// server is one running server binary and its clients' tally.
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string
	client  func(ctx context.Context, o options, i int, src net.IP)
	mem     memory
	ok      atomic.Int64
	errs    atomic.Int64
	retries atomic.Int64
	exited  atomic.Bool
	done    chan struct{}

	errMu  sync.Mutex
	errLog []string
}

func (s *server) fail(err error) {
	s.errs.Add(1)
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if len(s.errLog) < 5 {
		s.errLog = append(s.errLog, err.Error())
	}
}

func (s *server) firstErrors() []string {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return append([]string(nil), s.errLog...)
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// freePort returns a loopback port free for both TCP and UDP just now.
func freePort() (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

func startServers(ctx context.Context, bin string) ([]*server, error) {
	type spec struct {
		name   string
		binary string
		env    func(port int) []string
		client func(s *server) func(ctx context.Context, o options, i int, src net.IP)
	}
	specs := []spec{
		{"autoreply", "autoreply-server", func(p int) []string { return []string{fmt.Sprintf("AUTOREPLY_ADDR=127.0.0.1:%d", p)} }, autoreplyClient},
		{"tinytcp", "tinytcp-server", func(p int) []string { return []string{fmt.Sprintf("TINYTCP_ADDR=127.0.0.1:%d", p)} }, tinytcpClient},
		{"filestream", "filestream-server", func(p int) []string { return []string{fmt.Sprintf("FILESTREAM_ADDR=127.0.0.1:%d", p)} }, filestreamClient},
		{"connid", "connid-server", func(p int) []string {
			return []string{fmt.Sprintf("CONNID_ADDR=127.0.0.1:%d", p), "CONNID_IDLE_TIMEOUT=0"}
		}, connidClient},
		{"moviedb", "moviedb-server", func(p int) []string {
			return []string{"MOVIEDB_HOST=127.0.0.1", fmt.Sprintf("MOVIEDB_PORTS=%d", p)}
		}, moviedbClient},
	}
	var servers []*server
	for _, sp := range specs {
		port, err := freePort()
		if err != nil {
			return servers, err
		}
		path, err := filepath.Abs(filepath.Join(bin, sp.binary))
		if err != nil {
			return servers, err
		}
		s := &server{name: sp.name, addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{})}
		s.client = sp.client(s)
		s.cmd = exec.Command(path)
		s.cmd.Env = append(os.Environ(), append(sp.env(port), "LOG_FORMAT=json", "LOG_LEVEL=warn")...)
		s.cmd.Stdout, s.cmd.Stderr = os.Stdout, os.Stderr
		if err := s.cmd.Start(); err != nil {
			return servers, fmt.Errorf("%s: %w", sp.binary, err)
		}
		servers = append(servers, s)
		go func() {
			s.cmd.Wait()
			s.exited.Store(true)
			close(s.done)
		}()
		if err := waitTCP(ctx, s.addr); err != nil {
			return servers, fmt.Errorf("%s: %w", sp.name, err)
		}
	}
	return servers, nil
}

func waitTCP(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not listening on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond) // a retry interval while the server starts
	}
}

const replyTimeout = 5 * time.Second

// every calls do once per interval until ctx ends, starting at a random
// offset so that the clients' requests spread over the interval.
func every(ctx context.Context, o options, i int, s *server, do func() error) {
	offset := time.Duration(int64(i) * int64(o.interval) / int64(o.clients))
	t := time.NewTimer(offset)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := do(); err != nil {
			if ctx.Err() != nil {
				return // cut by the end of the soak
			}
			s.fail(err)
		} else {
			s.ok.Add(1)
		}
		t.Reset(o.interval)
	}
}

func dialTCP(src net.IP, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: replyTimeout, LocalAddr: &net.TCPAddr{IP: src}}
	return d.Dial("tcp", addr)
}

func dialUDP(src net.IP, addr string) (*net.UDPConn, error) {
	ra, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.DialUDP("udp", &net.UDPAddr{IP: src}, ra)
}

// lineClient keeps one TCP connection and sends a line per request, failing
// a request whose reply is not accepted by check. On a broken connection
// it counts an error and dials again.
func lineClient(ctx context.Context, o options, i int, src net.IP, s *server, hello func(*bufio.Reader) error, line func(n int) string, check func(req, reply string) error) {
	var c net.Conn
	var r *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	n := 0
	every(ctx, o, i, s, func() error {
		if c == nil {
			var err error
			if c, err = dialTCP(src, s.addr); err != nil {
				return err
			}
			r = bufio.NewReader(c)
			c.SetDeadline(time.Now().Add(replyTimeout))
			if hello != nil {
				if err := hello(r); err != nil {
					c.Close()
					c = nil
					return err
				}
			}
		}
		n++
		req := line(n)
		c.SetDeadline(time.Now().Add(replyTimeout))
		_, err := io.WriteString(c, req+"\n")
		var reply string
		if err == nil {
			reply, err = r.ReadString('\n')
		}
		if err == nil {
			err = check(req, strings.TrimRight(reply, "\r\n"))
		}
		if err != nil {
			c.Close()
			c = nil
		}
		return err
	})
}

func payload(i, n, size int) string {
	s := fmt.Sprintf("soak client %d message %d ", i, n)
	for len(s) < size {
		s += "abcdefghijklmnopqrstuvwxyz0123456789"
	}
	return s[:size]
}

// autoreplyClient: half the clients over TCP, half over UDP, 64-byte
// messages (which earn their reply under the 3x budget).
func autoreplyClient(s *server) func(ctx context.Context, o options, i int, src net.IP) {
	check := func(req, reply string) error {
		if !strings.HasPrefix(reply, "REPLY id=") || !strings.Contains(reply, fmt.Sprintf(" len=%d ", len(req))) {
			return fmt.Errorf("autoreply: reply %.80q to a %d-byte message", reply, len(req))
		}
		return nil
	}
	return func(ctx context.Context, o options, i int, src net.IP) {
		if i%2 == 0 {
			lineClient(ctx, o, i, src, s, nil, func(n int) string { return payload(i, n, 64) }, check)
			return
		}
		udpClient(ctx, o, i, src, s, func(n, _ int) []byte { return []byte(payload(i, n, 64)) },
			func(req, reply []byte) error { return check(string(req), string(reply)) })
	}
}

// udpTries is how many times a UDP client sends a request whose reply does
// not come within udpTimeout, as a real UDP client does: a datagram can be
// dropped by a full socket buffer when the machine is busy. Each retry is
// counted; a request is an error only when every try went unanswered.
const (
	udpTries   = 3
	udpTimeout = 2 * time.Second
)

// udpClient sends a datagram per request and waits for its reply; msg
// builds try t of request n (connid asks for a new ID on a retry, as its
// client does, since the first may have been granted).
func udpClient(ctx context.Context, o options, i int, src net.IP, s *server, msg func(n, t int) []byte, check func(req, reply []byte) error) {
	c, err := dialUDP(src, s.addr)
	if err != nil {
		s.fail(err)
		return
	}
	defer c.Close()
	buf := make([]byte, 70000)
	n := 0
	every(ctx, o, i, s, func() error {
		n++
		var bad, err error
		for t := range udpTries {
			if t > 0 {
				s.retries.Add(1)
			}
			req := msg(n, t)
			if _, err = c.Write(req); err != nil {
				return err
			}
			// A reply that does not answer this try (a late one to an
			// earlier try, or a wrong one) is kept as the error and
			// reading goes on until the timeout.
			for {
				c.SetReadDeadline(time.Now().Add(udpTimeout))
				k, rerr := c.Read(buf)
				if rerr != nil {
					err = rerr
					break
				}
				if cerr := check(req, buf[:k]); cerr == nil {
					return nil
				} else {
					bad = cerr
				}
			}
		}
		if bad != nil {
			return bad
		}
		return fmt.Errorf("%s udp: no reply to %d tries: %w", s.name, udpTries, err)
	})
}

func tinytcpClient(s *server) func(ctx context.Context, o options, i int, src net.IP) {
	return func(ctx context.Context, o options, i int, src net.IP) {
		hello := func(r *bufio.Reader) error {
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "WELCOME") {
				return fmt.Errorf("tinytcp: banner %q, %v", line, err)
			}
			return nil
		}
		lineClient(ctx, o, i, src, s, hello, func(n int) string {
			if n%2 == 0 {
				return "TIME"
			}
			return "ECHO " + payload(i, n, 48)
		}, func(req, reply string) error {
			if req == "TIME" && strings.HasPrefix(reply, "TIME ") || req == reply {
				return nil
			}
			return fmt.Errorf("tinytcp: %q answered %q", req, reply)
		})
	}
}

// The filestream framing (services/filestream/README.md).
const (
	fsEcho, fsFile          = 0x01, 0x02
	fsEchoReply, fsFileHead = 0x81, 0x82
)

func fsMsg(typ byte, id uint32, body []byte) []byte {
	b := []byte{'F', 'S', 1, typ, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[4:], uint16(len(body)))
	binary.BigEndian.PutUint32(b[6:], id)
	return append(b, body...)
}

func fsRead(r io.Reader) (typ byte, id uint32, body []byte, err error) {
	var h [10]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	body = make([]byte, binary.BigEndian.Uint16(h[4:]))
	_, err = io.ReadFull(r, body)
	return h[3], binary.BigEndian.Uint32(h[6:]), body, err
}

// filestreamClient: 4 in 5 clients over TCP (ECHO and 4 KiB FILEs in
// turn), the others ECHO over UDP.
func filestreamClient(s *server) func(ctx context.Context, o options, i int, src net.IP) {
	return func(ctx context.Context, o options, i int, src net.IP) {
		if i%5 == 4 {
			udpClient(ctx, o, i, src, s, func(n, _ int) []byte { return fsMsg(fsEcho, uint32(n), []byte(payload(i, n, 64))) },
				func(req, reply []byte) error {
					if len(reply) < 10 || reply[3] != fsEchoReply || !bytes.Equal(reply[10:], req[10:]) {
						return fmt.Errorf("filestream udp: %d-byte reply %x", len(reply), reply[:min(len(reply), 12)])
					}
					return nil
				})
			return
		}
		var c net.Conn
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		n := 0
		every(ctx, o, i, s, func() error {
			if c == nil {
				var err error
				if c, err = dialTCP(src, s.addr); err != nil {
					return err
				}
			}
			n++
			c.SetDeadline(time.Now().Add(replyTimeout))
			err := filestreamTCP(c, i, n)
			if err != nil {
				c.Close()
				c = nil
			}
			return err
		})
	}
}

func filestreamTCP(c net.Conn, i, n int) error {
	const fileSize = 4096
	if n%2 == 0 {
		var size [8]byte
		binary.BigEndian.PutUint64(size[:], fileSize)
		if _, err := c.Write(fsMsg(fsFile, uint32(n), size[:])); err != nil {
			return err
		}
		typ, id, body, err := fsRead(c)
		if err != nil || typ != fsFileHead || id != uint32(n) || len(body) != 14 || binary.BigEndian.Uint64(body) != fileSize {
			return fmt.Errorf("filestream file: header %#x id %d, %v", typ, id, err)
		}
		if _, err := io.CopyN(io.Discard, c, fileSize); err != nil {
			return fmt.Errorf("filestream file: %w", err)
		}
		return nil
	}
	text := []byte(payload(i, n, 64))
	if _, err := c.Write(fsMsg(fsEcho, uint32(n), text)); err != nil {
		return err
	}
	typ, id, body, err := fsRead(c)
	if err != nil || typ != fsEchoReply || id != uint32(n) || !bytes.Equal(body, text) {
		return fmt.Errorf("filestream echo: reply %#x id %d, %v", typ, id, err)
	}
	return nil
}

// connidClient claims a fresh ID per request over UDP: with 1,000 clients
// at one a second and the 30 s TTL, about 30,000 IDs are live, within the
// table's 50,000 and each source's 10,000.
func connidClient(s *server) func(ctx context.Context, o options, i int, src net.IP) {
	return func(ctx context.Context, o options, i int, src net.IP) {
		udpClient(ctx, o, i, src, s, func(n, t int) []byte { return []byte(fmt.Sprintf("HELLO soak-%d-%d-%d", i, n, t)) },
			func(req, reply []byte) error {
				id := strings.TrimPrefix(string(req), "HELLO ")
				if !strings.HasPrefix(string(reply), "OK "+id+" ") {
					return fmt.Errorf("connid: %q answered %q", req, reply)
				}
				return nil
			})
	}
}

// moviedbClient asks for a film on a new connection per request, as the
// protocol has it (one request per connection).
func moviedbClient(s *server) func(ctx context.Context, o options, i int, src net.IP) {
	return func(ctx context.Context, o options, i int, src net.IP) {
		every(ctx, o, i, s, func() error {
			c, err := dialTCP(src, s.addr)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(replyTimeout))
			if _, err := io.WriteString(c, `{"op":"get","title":"Alien"}`+"\n"); err != nil {
				return err
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, `{"ok":true`) {
				return fmt.Errorf("moviedb: reply %.80q, %v", line, err)
			}
			return nil
		})
	}
}

func raiseNoFile(n uint64) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < n {
		l.Cur = min(n, l.Max)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
