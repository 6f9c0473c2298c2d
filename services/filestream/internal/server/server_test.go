package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/filestream/internal/client"
	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/nettest"
)

type testServer struct {
	h        *Handler
	tcp, udp string
}

// testConfig is the default configuration, with a UDP pace a loaded test
// machine's loopback takes without loss.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := config.Load[Config]("FILESTREAM_", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.UDPRate = 5_000_000
	return cfg
}

func start(t *testing.T, mod func(*Config)) *testServer {
	t.Helper()
	return startWith(t, mod, nil)
}

// startWith runs a server whose Config mod changes and whose test hooks
// setup sets before it serves.
func startWith(t *testing.T, mod func(*Config), setup func(*Handler)) *testServer {
	t.Helper()
	cfg := testConfig(t)
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &Handler{Config: cfg}
	if setup != nil {
		setup(h)
	}
	ts := &testServer{h: h}
	ts.tcp = nettest.ServeTCP(t, h.TCPServer())
	ts.udp = nettest.ServeUDP(t, h.UDPServer())
	return ts
}

func (ts *testServer) addr(protocol string) string {
	if protocol == "tcp" {
		return ts.tcp
	}
	return ts.udp
}

func dial(t *testing.T, protocol, addr string, timeout time.Duration) client.Session {
	t.Helper()
	s, err := client.Dial(t.Context(), protocol, addr, client.Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var protocols = []string{"tcp", "udp"}

func TestDefaults(t *testing.T) {
	cfg, err := config.Load[Config]("FILESTREAM_", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Protocol != "both" || cfg.Addr != ":9001" || cfg.MaxFile != 123456789 ||
		cfg.StreamLimit != 100 || cfg.MinInterval != time.Millisecond || cfg.PacketSize != 1200 {
		t.Errorf("defaults = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		env  string
		want string
	}{
		{"protocol", "FILESTREAM_PROTOCOL=sctp", "protocol"},
		{"max file", "FILESTREAM_MAX_FILE=-1", "max-file"},
		{"stream limit", "FILESTREAM_STREAM_LIMIT=0", "stream-limit"},
		{"interval", "FILESTREAM_MIN_INTERVAL=1m", "min-interval"},
		{"packet size", "FILESTREAM_PACKET_SIZE=20", "packet-size"},
		{"transfers", "FILESTREAM_UDP_TRANSFERS=0", "udp-transfers"},
	}
	for _, tt := range tests {
		cfg, err := config.Load[Config]("FILESTREAM_", []string{tt.env})
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error about %s", tt.name, err, tt.want)
		}
	}
}

func TestEcho(t *testing.T) {
	ts := start(t, nil)
	tests := []struct {
		name string
		give []byte
	}{
		{"text", []byte("hello, filestream")},
		{"empty", []byte{}},
		{"binary", []byte("\x00FS\x01\x02\xff\n")},
		{"large", bytes.Repeat([]byte("x"), 60000)},
	}
	for _, p := range protocols {
		s := dial(t, p, ts.addr(p), nettest.Timeout)
		for _, tt := range tests {
			got, err := s.Echo(t.Context(), tt.give)
			if err != nil || !bytes.Equal(got, tt.give) {
				t.Errorf("%s %s: Echo = %.40q, %v; want %.40q", p, tt.name, got, err, tt.give)
			}
		}
		// Text that no message can carry is refused before it is sent.
		if _, err := s.Echo(t.Context(), make([]byte, proto.MaxBody+1)); err == nil {
			t.Errorf("%s: echo of %d bytes accepted", p, proto.MaxBody+1)
		}
		if got, err := s.Echo(t.Context(), []byte("still fine")); err != nil || string(got) != "still fine" {
			t.Errorf("%s: echo after a refused one = %q, %v", p, got, err)
		}
	}
}

func content(n int) []byte {
	b := make([]byte, n)
	proto.FillContent(b, 0)
	return b
}

func TestFile(t *testing.T) {
	ts := start(t, nil)
	for _, p := range protocols {
		s := dial(t, p, ts.addr(p), nettest.Timeout)
		for _, n := range []int{0, 1, 1000, 1 << 20} {
			var sink bytes.Buffer
			res, err := s.File(t.Context(), uint64(n), &sink)
			if err != nil {
				t.Fatalf("%s File(%d): %v", p, n, err)
			}
			if !res.OK() || res.CRC != proto.ContentCRC(int64(n)) || res.Received != uint64(n) {
				t.Errorf("%s File(%d) = %+v, want all %d bytes with CRC %#x", p, n, res, n, proto.ContentCRC(int64(n)))
			}
			if !bytes.Equal(sink.Bytes(), content(n)) {
				t.Errorf("%s File(%d): content differs from the pattern", p, n)
			}
			if p == "udp" && (res.Packets.Lost != 0 || res.Packets.Duplicates != 0 || res.TimedOut) {
				t.Errorf("%s File(%d): %v, timed out %v", p, n, res.Packets, res.TimedOut)
			}
		}
		// The connection or socket serves the next command.
		if got, err := s.Echo(t.Context(), []byte("after")); err != nil || string(got) != "after" {
			t.Errorf("%s: echo after files = %q, %v", p, got, err)
		}
	}
}

// TestFileLargest sends the seed's largest file, 123456789 characters, over
// TCP and checks its checksum, and that the server held no copy of it.
func TestFileLargest(t *testing.T) {
	if testing.Short() {
		t.Skip("123456789 bytes over loopback; skipped with -short")
	}
	ts := start(t, nil)
	s := dial(t, "tcp", ts.tcp, nettest.Timeout)
	const n = 123456789
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := s.File(t.Context(), n, nil)
	runtime.ReadMemStats(&after)
	if err != nil || !res.OK() || res.CRC != proto.ContentCRC(n) {
		t.Fatalf("File(%d) = %+v, %v", n, res, err)
	}
	// Server and client together: a few buffers, never the file.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("transfer of %d bytes allocated %d bytes", n, alloc)
	}
	t.Logf("%d bytes in %v (%.0f MB/s)", n, res.Elapsed, res.Throughput()/1e6)
}

func TestErrors(t *testing.T) {
	ts := start(t, func(c *Config) { c.MaxFile = 5000; c.StreamLimit = 10; c.PacketSize = 500 })
	tests := []struct {
		name string
		do   func(s client.Session) error
		want proto.Code
	}{
		{"file over limit", func(s client.Session) error { _, err := s.File(t.Context(), 5001, nil); return err }, proto.CodeTooLarge},
		{"file far over", func(s client.Session) error { _, err := s.File(t.Context(), 1<<63, nil); return err }, proto.CodeTooLarge},
		{"stream count 0", stream(t, time.Millisecond, 0, 0), proto.CodeStream},
		{"stream count over", stream(t, time.Millisecond, 11, 0), proto.CodeStream},
		{"stream too fast", stream(t, 500*time.Microsecond, 5, 0), proto.CodeStream},
		{"stream too slow", stream(t, 11*time.Second, 5, 0), proto.CodeStream},
		{"stream packet too big", stream(t, time.Millisecond, 5, 501), proto.CodeStream},
		{"stream packet too small", stream(t, time.Millisecond, 5, 10), proto.CodeStream},
	}
	for _, p := range protocols {
		s := dial(t, p, ts.addr(p), nettest.Timeout)
		for _, tt := range tests {
			var e *proto.ErrorReply
			if err := tt.do(s); !errors.As(err, &e) || e.Code != tt.want {
				t.Errorf("%s %s: %v, want ERROR %v", p, tt.name, err, tt.want)
			}
		}
		// Still in step after every refusal.
		if res, err := s.File(t.Context(), 5000, nil); err != nil || !res.OK() {
			t.Errorf("%s: file at the limit after errors = %+v, %v", p, res, err)
		}
	}
}

func stream(t *testing.T, interval time.Duration, count uint32, size uint16) func(client.Session) error {
	return func(s client.Session) error {
		_, err := s.Stream(t.Context(), client.StreamParams{Interval: interval, Count: count, Size: size})
		return err
	}
}

func TestStream(t *testing.T) {
	ts := start(t, nil)
	const count, interval = 30, 2 * time.Millisecond
	// A stall of a loaded machine (a descheduled sender) can delay packet
	// 0, after which the overdue packets leave at once, early relative to
	// it, or delay the packets after it by more than the tolerance. Either
	// makes a correct schedule look wrong, never a wrong one (unpaced,
	// drifting, too slow) right; so the timing must hold on one of a few
	// streams, and the packet counts on every one.
	const attempts = 5
	for _, p := range protocols {
		for _, size := range []uint16{0, 1200} {
			s := dial(t, p, ts.addr(p), nettest.Timeout)
			var off []string
			for attempt := range attempts {
				res, err := s.Stream(t.Context(), client.StreamParams{Interval: interval, Count: count, Size: size})
				if err != nil {
					t.Fatalf("%s Stream: %v", p, err)
				}
				if res.Packets.Received != count || res.Packets.Lost != 0 || res.Packets.Duplicates != 0 {
					t.Errorf("%s size %d: %v", p, size, res.Packets)
				}
				if p == "tcp" && !res.EndSeen {
					t.Errorf("tcp stream without END")
				}
				// Send times relative to packet 0, which may itself have left a
				// little late: the schedule holds within a loaded machine's
				// tolerance and does not drift (exact timing is tested on a
				// fake clock in TestStreamExact).
				off = off[:0]
				for i := 1; i < count; i++ {
					want := time.Duration(i) * interval
					if got := res.Sent[i]; got < want-10*time.Millisecond || got > want+250*time.Millisecond {
						off = append(off, fmt.Sprintf("%s: packet %d sent %v after the first, want about %v", p, i, got, want))
					}
				}
				if len(off) == 0 {
					break
				}
				t.Logf("%s size %d, stream %d of %d off schedule (%d packets, first: %s)", p, size, attempt+1, attempts, len(off), off[0])
			}
			for _, o := range off {
				t.Error(o)
			}
		}
	}
}

func TestManyClients(t *testing.T) {
	ts := start(t, nil)
	const clients = 8
	errs := make(chan error, 2*clients)
	for i := range clients {
		for _, p := range protocols {
			go func() {
				s, err := client.Dial(t.Context(), p, ts.addr(p), client.Options{Timeout: nettest.Timeout})
				if err != nil {
					errs <- err
					return
				}
				defer s.Close()
				res, err := s.File(t.Context(), uint64(100_000+i), nil)
				if err == nil && !res.OK() {
					err = errors.New(p + ": file not intact")
				}
				errs <- err
			}()
		}
	}
	for range 2 * clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestTCPDisconnect: a client that leaves in the middle of the largest file
// frees its server goroutine at once, long before the write timeout.
func TestTCPDisconnect(t *testing.T) {
	done := make(chan struct{}, 1)
	ts := startWith(t, func(c *Config) { c.WriteTimeout = time.Minute },
		func(h *Handler) { h.connDone = func() { done <- struct{}{} } })
	c := nettest.Dial(t, "tcp", ts.tcp)
	c.Write(proto.AppendFileRequest(nil, 1, proto.FileRequest{Size: 123456789}))
	buf := make([]byte, 1<<16)
	c.SetReadDeadline(time.Now().Add(nettest.Timeout))
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	c.Close()
	select {
	case <-done:
	case <-time.After(nettest.Timeout):
		t.Fatal("server still sending after the client left")
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("server took %v to notice", d)
	}
}

func TestTCPMalformed(t *testing.T) {
	ts := start(t, nil)
	tests := []struct {
		name  string
		give  []byte
		want  proto.Code
		close bool
	}{
		{"text", []byte("hello\n"), proto.CodeMalformed, true},
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), proto.CodeMalformed, true},
		{"version", []byte("FS\x09\x01\x00\x00\x00\x00\x00\x01"), proto.CodeVersion, true},
		{"unknown type", []byte("FS\x01\x42\x00\x03\x00\x00\x00\x01abc"), proto.CodeType, false},
		{"reply type", proto.AppendBye(nil, 1), proto.CodeType, false},
		{"short file body", []byte("FS\x01\x02\x00\x03\x00\x00\x00\x01abc"), proto.CodeMalformed, false},
		{"short stream body", []byte("FS\x01\x03\x00\x01\x00\x00\x00\x01a"), proto.CodeMalformed, false},
	}
	for _, tt := range tests {
		c := nettest.Dial(t, "tcp", ts.tcp)
		c.SetDeadline(time.Now().Add(nettest.Timeout))
		c.Write(tt.give)
		m, _, err := proto.ReadMessage(c, nil)
		if err != nil || m.Type != proto.TypeError {
			t.Errorf("%s: got %v %q, %v; want ERROR", tt.name, m.Type, m.Body, err)
			continue
		}
		if e, _ := proto.ParseError(m.Body); e == nil || e.Code != tt.want {
			t.Errorf("%s: got %v, want code %v", tt.name, e, tt.want)
		}
		c.Write(proto.AppendEcho(nil, 2, []byte("still there?")))
		m, _, err = proto.ReadMessage(c, nil)
		if tt.close {
			if err == nil {
				t.Errorf("%s: connection still open (%v)", tt.name, m.Type)
			}
		} else if err != nil || m.Type != proto.TypeEchoReply {
			t.Errorf("%s: echo after the error = %v, %v", tt.name, m.Type, err)
		}
	}
}

func TestTCPQuit(t *testing.T) {
	ts := start(t, nil)
	c := nettest.Dial(t, "tcp", ts.tcp)
	c.SetDeadline(time.Now().Add(nettest.Timeout))
	c.Write(proto.AppendQuit(nil, 9, nil))
	m, _, err := proto.ReadMessage(c, nil)
	if err != nil || m.Type != proto.TypeBye || m.ID != 9 {
		t.Fatalf("QUIT answered with %v id %d, %v", m.Type, m.ID, err)
	}
	if _, _, err := proto.ReadMessage(c, nil); err == nil {
		t.Fatal("connection open after BYE")
	}
}

func TestTCPBusy(t *testing.T) {
	ts := start(t, func(c *Config) { c.MaxConns = 1 })
	first := dial(t, "tcp", ts.tcp, nettest.Timeout)
	if _, err := first.Echo(t.Context(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	second := dial(t, "tcp", ts.tcp, nettest.Timeout)
	var e *proto.ErrorReply
	if _, err := second.Echo(t.Context(), []byte("x")); !errors.As(err, &e) || e.Code != proto.CodeBusy {
		t.Fatalf("second connection: %v, want ERROR busy", err)
	}
}

// udpRaw is a bare UDP socket talking to addr.
func udpRaw(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c := nettest.Dial(t, "udp", addr)
	return c.(*net.UDPConn)
}

// untilMarker sends req then an ECHO marker and returns every datagram
// that arrives before the marker's echo. The server answers datagrams in
// order from one read loop, so everything req caused directly is in.
func untilMarker(t *testing.T, c *net.UDPConn, req []byte) [][]byte {
	t.Helper()
	c.Write(req)
	marker := proto.AppendEcho(nil, 0xFFFFFFFF, []byte("marker"))
	c.Write(marker)
	var got [][]byte
	buf := make([]byte, 70000)
	for range 10000 {
		c.SetReadDeadline(time.Now().Add(nettest.Timeout))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("waiting for the marker: %v", err)
		}
		if m, err := proto.ParseDatagram(buf[:n]); err == nil && m.Type == proto.TypeEchoReply && m.ID == 0xFFFFFFFF {
			return got
		}
		got = append(got, append([]byte(nil), buf[:n]...))
	}
	t.Fatal("no marker")
	return nil
}

func TestUDPMalformed(t *testing.T) {
	ts := start(t, nil)
	c := udpRaw(t, ts.udp)
	tests := []struct {
		name string
		give string
		want proto.Code // 0: no answer at all
	}{
		{"one byte", "x", 0},
		{"text", "hello, server\n", proto.CodeMalformed},
		{"version", "FS\x09\x01\x00\x00\x00\x00\x00\x01", proto.CodeVersion},
		{"unknown type", "FS\x01\x42\x00\x00\x00\x00\x00\x01", proto.CodeType},
		{"reply type", "FS\x01\x88\x00\x00\x00\x00\x00\x01", proto.CodeType},
		{"length mismatch", "FS\x01\x01\x00\x09\x00\x00\x00\x01abc", proto.CodeMalformed},
		{"short file body", "FS\x01\x02\x00\x03\x00\x00\x00\x01abc", proto.CodeMalformed},
		{"odd cookie", "FS\x01\x04\x00\x03\x00\x00\x00\x01abc", proto.CodeMalformed},
	}
	for _, tt := range tests {
		got := untilMarker(t, c, []byte(tt.give))
		total := 0
		for _, g := range got {
			total += len(g)
		}
		if total > 3*len(tt.give) {
			t.Errorf("%s: %d bytes in answer to %d", tt.name, total, len(tt.give))
		}
		if tt.want == 0 {
			if len(got) != 0 {
				t.Errorf("%s: got %q, want nothing", tt.name, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s: got %d datagrams, want one ERROR", tt.name, len(got))
			continue
		}
		m, err := proto.ParseDatagram(got[0])
		e, _ := proto.ParseError(m.Body)
		if err != nil || m.Type != proto.TypeError || e == nil || e.Code != tt.want {
			t.Errorf("%s: got %q, want ERROR %v", tt.name, got[0], tt.want)
		}
	}
}

// TestAntiAmplification: an address that has not echoed a cookie receives
// at most 3 times the bytes of its request (a RETRY), never a file or a
// stream, and a cookie is good only for the address it was minted for.
func TestAntiAmplification(t *testing.T) {
	starts := make(chan struct{}, 10)
	ts := startWith(t, nil, func(h *Handler) { h.started = func() { starts <- struct{}{} } })
	victim, attacker := udpRaw(t, ts.udp), udpRaw(t, ts.udp)

	requests := []struct {
		name  string
		build func(cookie []byte) []byte
	}{
		{"file", func(c []byte) []byte {
			return proto.AppendFileRequest(nil, 1, proto.FileRequest{Size: 1 << 20, Cookie: c})
		}},
		{"stream", func(c []byte) []byte {
			return proto.AppendStreamRequest(nil, 1, proto.StreamRequest{Interval: time.Millisecond, Count: 100, Size: 1200, Cookie: c})
		}},
	}
	for _, r := range requests {
		req := r.build(nil)
		got := untilMarker(t, victim, req)
		total := 0
		for _, g := range got {
			total += len(g)
		}
		if total > 3*len(req) {
			t.Errorf("%s: unvalidated request of %d bytes got %d", r.name, len(req), total)
		}
		if len(got) != 1 {
			t.Fatalf("%s: got %d datagrams, want one RETRY", r.name, len(got))
		}
		m, _ := proto.ParseDatagram(got[0])
		cookie, err := proto.ParseRetry(m.Body)
		if m.Type != proto.TypeRetry || err != nil {
			t.Fatalf("%s: got %v, want RETRY", r.name, m.Type)
		}
		// The victim's cookie presented from another address is no good.
		stolen := r.build(cookie)
		got = untilMarker(t, attacker, stolen)
		if len(got) != 1 || got[0][3] != byte(proto.TypeRetry) {
			t.Errorf("%s: stolen cookie answered with %q, want a fresh RETRY", r.name, got)
		}
		if len(starts) != 0 {
			t.Fatalf("%s: a transfer started without a valid cookie", r.name)
		}
		// A forged cookie neither.
		forged := append([]byte(nil), cookie...)
		forged[len(forged)-1] ^= 1
		if got := untilMarker(t, victim, r.build(forged)); len(got) != 1 || got[0][3] != byte(proto.TypeRetry) {
			t.Errorf("%s: forged cookie answered with %d datagrams", r.name, len(got))
		}
		if len(starts) != 0 {
			t.Fatalf("%s: a transfer started with a forged cookie", r.name)
		}
	}
	// With its own cookie, the client is served: the client library
	// answers the RETRY by itself.
	s := dial(t, "udp", ts.udp, nettest.Timeout)
	if res, err := s.File(t.Context(), 5000, nil); err != nil || !res.OK() {
		t.Fatalf("validated file = %+v, %v", res, err)
	}
	if len(starts) != 1 {
		t.Fatalf("%d transfers started, want 1", len(starts))
	}
}

func TestUDPBusy(t *testing.T) {
	started := make(chan struct{}, 1)
	ts := startWith(t, func(c *Config) { c.UDPTransfers = 1 },
		func(h *Handler) { h.started = func() { started <- struct{}{} } })
	long := make(chan error, 1)
	first := dial(t, "udp", ts.udp, nettest.Timeout)
	ctx, cancel := context.WithCancel(t.Context())
	defer func() {
		cancel()
		<-long
		// QUIT with the cookie stops the server's side of the stream.
		if err := first.Quit(t.Context()); err != nil {
			t.Error(err)
		}
		// Waiting on h.wg here would race with a transfer the read loop
		// may still be starting; poll the count of transfers instead.
		deadline := time.Now().Add(nettest.Timeout)
		for ts.h.inFlight() > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling a counter, bounded by the deadline
		}
		if n := ts.h.inFlight(); n != 0 {
			t.Errorf("%d transfers still running after QUIT", n)
		}
	}()
	go func() {
		_, err := first.Stream(ctx, client.StreamParams{Interval: time.Second, Count: 100})
		long <- err
	}()
	<-started
	second := dial(t, "udp", ts.udp, nettest.Timeout)
	var e *proto.ErrorReply
	if _, err := second.File(t.Context(), 10, nil); !errors.As(err, &e) || e.Code != proto.CodeBusy {
		t.Fatalf("second transfer: %v, want ERROR busy", err)
	}
}
