package server

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

// scriptConn is an in-memory net.Conn: each read returns bytes of one chunk
// only (as if each chunk were one TCP segment), then io.EOF; writes are
// collected.
type scriptConn struct {
	chunks  [][]byte
	out     bytes.Buffer
	writes  int
	discard bool // count writes but keep nothing (benchmarks)
}

func (c *scriptConn) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.writes++
	if c.discard {
		return len(p), nil
	}
	return c.out.Write(p)
}

var scriptAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: proto.DefaultPort}

func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return scriptAddr }
func (c *scriptConn) RemoteAddr() net.Addr             { return scriptAddr }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// session serves one connection whose client sends chunks and then closes,
// and returns everything the server wrote and how many writes it took.
func session(h *Handler, cfg Config, chunks ...[]byte) ([]byte, int) {
	srv := h.TCPServer(cfg)
	c := &scriptConn{}
	for _, ch := range chunks {
		c.chunks = append(c.chunks, bytes.Clone(ch))
	}
	srv.ServeConn(c)
	return c.out.Bytes(), c.writes
}

const (
	wantBanner = proto.DefaultBanner + "\n"
	seedTIME   = "TIME 2025-09-12T17:24:13-05:00\n"
)

// TestCommands sends each line alone, exactly as given on the wire, and
// expects exactly the given bytes back after the banner.
func TestCommands(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{give: "TIME\n", want: seedTIME},
		{give: "TIME\r\n", want: seedTIME},
		{give: "time\n", want: seedTIME},
		{give: "tImE\r\n", want: seedTIME},
		{give: "TIME  \n", want: seedTIME},
		{give: "ECHO Hello from client\n", want: "ECHO Hello from client\n"},
		{give: "ECHO Hello from client\r\n", want: "ECHO Hello from client\n"},
		{give: "echo  a  b  \n", want: "ECHO  a  b  \n"},
		{give: "ECHO a\r\r\n", want: "ECHO a\r\n"}, // one line end stripped, no more
		{give: "ECHO \x00\xff\x1b[0m\n", want: "ECHO \x00\xff\x1b[0m\n"},
		{give: "ECHO héllo ✓\n", want: "ECHO héllo ✓\n"},
		{give: "ECHO QUIT\n", want: "ECHO QUIT\n"},
		{give: "HELP\n", want: proto.HelpReply + "\n"},
		{give: "help\r\n", want: proto.HelpReply + "\n"},
		{give: "ECHO\n", want: "ERROR BAD_ARGUMENTS\n"},
		{give: "ECHO \r\n", want: "ERROR BAD_ARGUMENTS\n"},
		{give: "TIME now\n", want: "ERROR BAD_ARGUMENTS\n"},
		{give: "HELP TIME\n", want: "ERROR BAD_ARGUMENTS\n"},
		{give: "QUIT now\n", want: "ERROR BAD_ARGUMENTS\n"},
		{give: "DATE\n", want: "ERROR UNKNOWN_COMMAND\n"},
		{give: "\n", want: "ERROR UNKNOWN_COMMAND\n"},
		{give: "\r\n", want: "ERROR UNKNOWN_COMMAND\n"},
		{give: " TIME\n", want: "ERROR UNKNOWN_COMMAND\n"},
		{give: "TIME\r\r\n", want: "ERROR UNKNOWN_COMMAND\n"}, // verb "TIME\r"
		{give: "QUIT\n", want: "BYE\n"},
		{give: "quit\r\n", want: "BYE\n"},
		{give: "TIME", want: ""}, // no line end before the client closed: not a command
	}
	cfg := defaultConfig(t)
	for _, tt := range tests {
		got, _ := session(newHandler(), cfg, []byte(tt.give))
		if want := wantBanner + tt.want; string(got) != want {
			t.Errorf("send %q: got %q, want %q", tt.give, got, want)
		}
	}
}

func TestQuitEndsSession(t *testing.T) {
	got, _ := session(newHandler(), defaultConfig(t), []byte("TIME\nQUIT\nTIME\nHELP\n"))
	if want := wantBanner + seedTIME + "BYE\n"; string(got) != want {
		t.Errorf("got %q, want %q (nothing after BYE)", got, want)
	}
}

func TestLongLine(t *testing.T) {
	cfg := defaultConfig(t)
	max := cfg.MaxLineBytes
	text := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name, give, want string
	}{
		{name: "max", give: "ECHO " + text(max-5) + "\n", want: "ECHO " + text(max-5) + "\n"},
		{name: "max with CRLF", give: "ECHO " + text(max-5) + "\r\n", want: "ECHO " + text(max-5) + "\n"},
		{name: "max+1", give: "ECHO " + text(max-4) + "\nTIME\n", want: "ERROR LINE_TOO_LONG\n"},
		{name: "max+1 with CRLF", give: "ECHO " + text(max-4) + "\r\nTIME\n", want: "ERROR LINE_TOO_LONG\n"},
		{name: "no line end", give: text(1 << 20), want: "ERROR LINE_TOO_LONG\n"},
		{name: "after good lines", give: "TIME\n" + text(max+1) + "\nTIME\n", want: seedTIME + "ERROR LINE_TOO_LONG\n"},
	}
	for _, tt := range tests {
		h := newHandler()
		got, _ := session(h, cfg, []byte(tt.give))
		if want := wantBanner + tt.want; string(got) != want {
			t.Errorf("%s: got %.80q... (%d bytes), want %.80q... (%d bytes)", tt.name, got, len(got), want, len(want))
		}
		tooLong := testutil.ToFloat64(h.Metrics.Errors.WithLabelValues(string(proto.LineTooLong)))
		if wantN := float64(strings.Count(tt.want, "LINE_TOO_LONG")); tooLong != wantN {
			t.Errorf("%s: errors_total{code=LINE_TOO_LONG} = %v, want %v", tt.name, tooLong, wantN)
		}
	}
}

// TestSplitReads feeds a conversation in chunks cut at every byte: the
// replies must not depend on where a TCP read ends.
func TestSplitReads(t *testing.T) {
	in := []byte("TIME\r\nECHO  split  me \nhelp\nNOPE\nECHO\r\nQUIT\n")
	want, _ := session(newHandler(), defaultConfig(t), in)
	for i := range len(in) + 1 {
		got, _ := session(newHandler(), defaultConfig(t), in[:i], in[i:])
		if !bytes.Equal(got, want) {
			t.Errorf("split at %d: got %q, want %q", i, got, want)
		}
	}
	for i := range len(in) {
		var chunks [][]byte
		for j := range in[i:] {
			chunks = append(chunks, in[i+j:i+j+1])
		}
		got, _ := session(newHandler(), defaultConfig(t), append([][]byte{in[:i]}, chunks...)...)
		if !bytes.Equal(got, want) {
			t.Errorf("byte by byte from %d: got %q, want %q", i, got, want)
		}
	}
}

// TestFlushWhenDrained checks that a pipelined burst is answered in few
// writes, and that a command arriving alone is answered at once.
func TestFlushWhenDrained(t *testing.T) {
	burst := bytes.Repeat([]byte("ECHO x\n"), 1000)
	got, writes := session(newHandler(), defaultConfig(t), burst)
	if n := bytes.Count(got, []byte("ECHO x\n")); n != 1000 {
		t.Fatalf("got %d replies, want 1000", n)
	}
	// The banner, then one flush for the burst (7000 bytes fit the buffer).
	if writes != 2 {
		t.Errorf("burst of 1000 commands answered in %d writes, want 2", writes)
	}
	_, writes = session(newHandler(), defaultConfig(t), []byte("TIME\n"), []byte("TIME\n"), []byte("TIME\n"))
	if writes != 4 {
		t.Errorf("3 commands in 3 reads answered in %d writes, want 4 (banner + one each)", writes)
	}
}

func TestTimeZone(t *testing.T) {
	at := time.Date(2025, 9, 12, 22, 24, 13, 0, time.UTC)
	tests := []struct {
		zone, want string
	}{
		{zone: "UTC", want: "TIME 2025-09-12T22:24:13+00:00\n"},
		{zone: "America/Bogota", want: "TIME 2025-09-12T17:24:13-05:00\n"},
		{zone: "Asia/Kolkata", want: "TIME 2025-09-13T03:54:13+05:30\n"},
		{zone: "Europe/Paris", want: "TIME 2025-09-13T00:24:13+02:00\n"},
	}
	for _, tt := range tests {
		loc, err := time.LoadLocation(tt.zone)
		if err != nil {
			t.Fatal(err)
		}
		h := &Handler{Location: loc, Now: func() time.Time { return at }}
		got, _ := session(h, defaultConfig(t), []byte("TIME\n"))
		if want := wantBanner + tt.want; string(got) != want {
			t.Errorf("zone %s: got %q, want %q", tt.zone, got, want)
		}
	}
}

// TestTimeCache checks the reuse of TIME's text within a second.
func TestTimeCache(t *testing.T) {
	tc := timeCache{loc: seedTime.Location()}
	base := seedTime.UTC()
	tests := []struct {
		give time.Time
		want string
	}{
		{give: base.Add(200 * time.Millisecond), want: "TIME 2025-09-12T17:24:13-05:00"},
		{give: base.Add(999 * time.Millisecond), want: "TIME 2025-09-12T17:24:13-05:00"},
		{give: base.Add(time.Second), want: "TIME 2025-09-12T17:24:14-05:00"},
		{give: base.Add(time.Hour + time.Second), want: "TIME 2025-09-12T18:24:14-05:00"},
		{give: base.Add(-time.Minute), want: "TIME 2025-09-12T17:23:13-05:00"},
		{give: base.Add(-time.Minute), want: "TIME 2025-09-12T17:23:13-05:00"},
	}
	for _, tt := range tests {
		if got := tc.appendTime([]byte("x"), tt.give); string(got) != "x"+tt.want {
			t.Errorf("appendTime(%v) = %q, want %q", tt.give, got, "x"+tt.want)
		}
	}
}

func TestBanner(t *testing.T) {
	h := newHandler()
	h.Banner = "WELCOME to the lab"
	got, _ := session(h, defaultConfig(t), []byte("QUIT\n"))
	if want := "WELCOME to the lab\nBYE\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMetrics(t *testing.T) {
	h := newHandler()
	session(h, defaultConfig(t), []byte("TIME\ntime\nECHO a\nHELP\nNOPE\nECHO\nTIME x\nQUIT\n"))
	m := h.Metrics
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"commands TIME", testutil.ToFloat64(m.Commands.WithLabelValues("TIME")), 2},
		{"commands ECHO", testutil.ToFloat64(m.Commands.WithLabelValues("ECHO")), 1},
		{"commands HELP", testutil.ToFloat64(m.Commands.WithLabelValues("HELP")), 1},
		{"commands QUIT", testutil.ToFloat64(m.Commands.WithLabelValues("QUIT")), 1},
		{"errors UNKNOWN_COMMAND", testutil.ToFloat64(m.Errors.WithLabelValues("UNKNOWN_COMMAND")), 1},
		{"errors BAD_ARGUMENTS", testutil.ToFloat64(m.Errors.WithLabelValues("BAD_ARGUMENTS")), 2},
		{"errors LINE_TOO_LONG", testutil.ToFloat64(m.Errors.WithLabelValues("LINE_TOO_LONG")), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if n := histogramCount(t, m); n != 8 {
		t.Errorf("command_seconds count = %d, want 8", n)
	}
}

func histogramCount(t *testing.T, m *Metrics) uint64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	m.latency.Collect(ch)
	var d dto.Metric
	if err := (<-ch).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram().GetSampleCount()
}

func TestNilMetrics(t *testing.T) {
	h := &Handler{Now: func() time.Time { return seedTime }, Location: seedTime.Location()}
	got, _ := session(h, defaultConfig(t), []byte("TIME\nNOPE\nQUIT\n"))
	if want := wantBanner + seedTIME + "ERROR UNKNOWN_COMMAND\nBYE\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

var _ netserve.Handler = (*Handler)(nil)
