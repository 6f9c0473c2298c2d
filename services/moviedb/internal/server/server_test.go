package server

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/moviedb/internal/ports"
	"github.com/socklab/socklab/services/moviedb/internal/store"
	"github.com/socklab/socklab/services/moviedb/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite the expected responses in testdata/")

var testSeed = []store.Movie{
	{Title: "Alien", Year: 1979, Director: "Ridley Scott", Genres: []string{"Horror", "Sci-Fi"}, Runtime: 117, Rating: "R"},
	{Title: "Aliens", Year: 1986, Director: "James Cameron", Genres: []string{"Action", "Sci-Fi"}, Runtime: 137, Rating: "R"},
	{Title: "Amélie", Year: 2001, Director: "Jean-Pierre Jeunet", Genres: []string{"Comedy", "Romance"}, Runtime: 122, Rating: "R"},
	{Title: "Zodiac", Year: 2007, Director: "David Fincher", Genres: []string{"Crime"}, Runtime: 157, Rating: "R"},
}

type fixture struct {
	store   *store.Store
	handler *Handler
	reg     *prometheus.Registry
}

func newFixture(t testing.TB, opts store.Options) *fixture {
	t.Helper()
	if opts.Seed == nil {
		opts.Seed = testSeed
	}
	st, _, err := store.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	return &fixture{store: st, reg: reg, handler: &Handler{Store: st, Log: zap.NewNop(), Metrics: NewMetrics(reg, st)}}
}

// serve runs a real TCP server for f on loopback.
func (f *fixture) serve(t testing.TB, cfg Config) string {
	t.Helper()
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	return serveTCP(t, f.handler.TCPServer(cfg))
}

// serveTCP runs srv on loopback on a listener from ports.Listen, as
// moviedb-server does (no TCP keep-alive), until the test ends.
func serveTCP(t testing.TB, srv *netserve.Server) string {
	t.Helper()
	ln, err := ports.Listen("127.0.0.1", ports.MustParse("0"))
	if err != nil {
		t.Fatal(err)
	}
	return nettest.ServeListener(t, srv, ln)
}

// exchange sends one raw request line on a new connection and returns the
// response line; it fails the test unless the server then closes.
func exchange(t *testing.T, addr, line string) string {
	t.Helper()
	c := nettest.DialLines(t, addr)
	c.Send(line)
	resp := c.ReadLine()
	c.ExpectEOF()
	return resp
}

// TestTranscript replays testdata/transcript.txt against a server seeded
// with testSeed: each "> " line is a request on a new connection, the "< "
// line after it the exact response. Run with -update to rewrite it.
func TestTranscript(t *testing.T) {
	f := newFixture(t, store.Options{})
	addr := f.serve(t, Config{})
	path := "testdata/transcript.txt"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		req, ok := strings.CutPrefix(l, "> ")
		if !ok {
			out.WriteString(l + "\n") // comments and blank lines
			continue
		}
		got := exchange(t, addr, req)
		out.WriteString(l + "\n< " + got + "\n")
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "< ") {
			i++
			if want := lines[i][2:]; got != want && !*update {
				t.Errorf("%s:%d: request %s\n got  %s\n want %s", path, i+1, req, got, want)
			}
		} else if !*update {
			t.Errorf("%s:%d: no expected response after %s", path, i+1, req)
		}
	}
	if *update {
		os.WriteFile(path, []byte(out.String()), 0o644)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, store.Options{})
	addr := f.serve(t, Config{})
	exchange(t, addr, `{"op":"get","title":"alien"}`)
	exchange(t, addr, `{"op":"get","title":"Nope"}`)
	exchange(t, addr, `{"op":"add","movie":{"title":"Heat","year":1995,"director":"Michael Mann"}}`)
	exchange(t, addr, `nonsense`)
	tests := []struct {
		c    prometheus.Collector
		want float64
	}{
		{f.handler.Metrics.Requests.WithLabelValues("get"), 2},
		{f.handler.Metrics.Requests.WithLabelValues("add"), 1},
		{f.handler.Metrics.Requests.WithLabelValues("invalid"), 1},
		{f.handler.Metrics.Errors.WithLabelValues("not_found"), 1},
		{f.handler.Metrics.Errors.WithLabelValues("bad_request"), 1},
	}
	for i, tt := range tests {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%d: metric = %v, want %v", i, got, tt.want)
		}
	}
	for op, want := range map[string]uint64{"get": 2, "add": 1, "all": 0} {
		if got := latencyCount(t, f.reg, op); got != want {
			t.Errorf("moviedb_request_seconds{op=%q} count = %d, want %d", op, got, want)
		}
	}
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(fmt.Sprintf(
		"# HELP moviedb_movies Movies stored.\n# TYPE moviedb_movies gauge\nmoviedb_movies %d\n", len(testSeed)+1)),
		"moviedb_movies"); err != nil {
		t.Error(err)
	}
}

func latencyCount(t *testing.T, reg *prometheus.Registry, op string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "moviedb_request_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "op" && lp.GetValue() == op {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	t.Fatalf("no moviedb_request_seconds{op=%q}", op)
	return 0
}

func TestLineTooLong(t *testing.T) {
	f := newFixture(t, store.Options{})
	addr := f.serve(t, Config{})
	c := nettest.DialLines(t, addr)
	long := `{"op":"get","title":"` + strings.Repeat("a", proto.MaxRequestBytes) + `"}`
	go c.C.Write([]byte(long + "\n")) // the server stops reading half way
	resp, err := proto.DecodeResponse([]byte(c.ReadLine()))
	if err != nil || proto.ErrorCode(resp.Error) != proto.CodeTooLong {
		t.Errorf("response to a long line = %+v, %v; want too_long", resp, err)
	}
}

func TestRequestWithoutNewline(t *testing.T) {
	f := newFixture(t, store.Options{})
	addr := f.serve(t, Config{})
	c := nettest.DialLines(t, addr)
	io.WriteString(c.C, `{"op":"get","title":"Alien"}`)
	c.C.(*net.TCPConn).CloseWrite()
	c.Expect(`{"ok":false,"error":{"code":"bad_request","message":"connection closed before the end of the request line; end it with \\n"}}`)
	c.ExpectEOF()
}

// TestCloseAfterResponse checks that the server ends an exchange with FIN,
// never RST, including when the client sent bytes after its line (they are
// ignored), so that the client reads the whole response and then io.EOF.
func TestCloseAfterResponse(t *testing.T) {
	f := newFixture(t, store.Options{})
	addr := f.serve(t, Config{})
	want := `{"ok":true,"movie":{"title":"Alien","year":1979,"director":"Ridley Scott","genres":["Horror","Sci-Fi"],"runtime":117,"rating":"R"}}`
	for _, extra := range []string{"", "more bytes\n", `{"op":"get","title":"Zodiac"}` + "\n"} {
		c := nettest.DialLines(t, addr)
		io.WriteString(c.C, `{"op":"get","title":"alien"}`+"\n"+extra)
		c.Expect(want)
		c.C.SetReadDeadline(time.Now().Add(nettest.Timeout))
		if b, err := c.R.ReadByte(); err != io.EOF {
			t.Errorf("after the response with %q sent after the line: %q, %v; want io.EOF", extra, b, err)
		}
	}
}

// TestIdleTimeout checks, in virtual time, that a client that sends no
// complete line gets a timeout error after IdleTimeout, not before.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, store.Options{})
		srv := f.handler.TCPServer(Config{IdleTimeout: 3 * time.Second})
		cli, conn := net.Pipe()
		defer cli.Close()
		go srv.ServeConn(conn)
		io.WriteString(cli, `{"op":"get"`)
		start := time.Now()
		line, err := bufio.NewReader(cli).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 3*time.Second {
			t.Errorf("timeout after %v, want 3s", waited)
		}
		if want := `{"ok":false,"error":{"code":"timeout","message":"no request line in time"}}` + "\n"; line != want {
			t.Errorf("got %q, want %q", line, want)
		}
		f.store.Close()
	})
}

// TestBusy: a connection beyond the limit in all, or from one address,
// gets the busy error.
func TestBusy(t *testing.T) {
	tests := []struct {
		name string
		give netserve.Limits
	}{
		{"max-conns", netserve.Limits{MaxConns: 1}},
		{"max-conns-per-source", netserve.Limits{MaxConnsPerSource: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			addr := f.serve(t, Config{Limits: tt.give})
			hold := nettest.DialLines(t, addr) // occupies the one slot: it sends nothing
			// The first connection may not be counted yet when the second arrives;
			// a request on it proves it is being served.
			_ = hold
			deadline := time.Now().Add(nettest.Timeout)
			for {
				c := nettest.DialLines(t, addr)
				c.Send(`{"op":"get","title":"Alien"}`)
				resp, err := proto.DecodeResponse([]byte(c.ReadLine()))
				if err != nil {
					t.Fatal(err)
				}
				// resp.Error is a nil *Error when the request was served: not
				// the nil error ErrorCode takes.
				if resp.Error != nil && resp.Error.Code == proto.CodeBusy {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("never refused as busy: last response %+v", resp)
				}
			}
			hold.C.Close()
		})
	}
}

// TestConcurrentClients runs readers and writers at once on a durable
// store: every write is acknowledged and visible after.
func TestConcurrentClients(t *testing.T) {
	f := newFixture(t, store.Options{Dir: t.TempDir()})
	addr := f.serve(t, Config{})
	ctx := context.Background()
	const clients, each = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, clients*each*2)
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				title := fmt.Sprintf("Client %d film %d", c, i)
				resp, err := proto.Do(ctx, nil, addr, proto.Request{Op: proto.OpAdd,
					Movie: &proto.Movie{Title: title, Year: 2000, Director: "D", Genres: []string{}}})
				if err != nil || !resp.OK {
					errs <- fmt.Errorf("add %s: %+v, %v", title, resp, err)
				}
				resp, err = proto.Do(ctx, nil, addr, proto.Request{Op: proto.OpGet, Title: "alien"})
				if err != nil || !resp.OK || resp.Movie.Title != "Alien" {
					errs <- fmt.Errorf("get alien: %+v, %v", resp, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := f.store.Len(), len(testSeed)+clients*each; got != want {
		t.Errorf("stored %d movies, want %d", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Ports: ports.MustParse("5000"), Seed: "builtin", IdleTimeout: time.Second, Limits: netserve.Limits{MaxConnsPerSource: 256}}
	tests := []struct {
		give func(c *Config)
		want string
	}{
		{func(c *Config) {}, ""},
		{func(c *Config) { c.Repair = "truncate" }, ""},
		{func(c *Config) { c.Repair = "yes" }, `repair "yes"`},
		{func(c *Config) { c.Seed = "" }, "seed"},
		{func(c *Config) { c.IdleTimeout = 0 }, "idle-timeout"},
		{func(c *Config) { c.MaxConns = -1 }, "max-conns"},
		{func(c *Config) { c.MaxConnsPerSource = 0 }, "max-conns-per-source"},
		{func(c *Config) { c.MaxConnsPerSource = -1 }, ""},
		{func(c *Config) { c.MaxPending = -1 }, "max-pending-mib"},
		{func(c *Config) { c.MaxPending = 0 }, ""},
	}
	for i, tt := range tests {
		c := good
		tt.give(&c)
		err := c.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%d: Validate() = %v, want %q", i, err, tt.want)
		}
	}
}

// FuzzServeConn feeds a request line to the real handler over net.Pipe,
// whole and in two writes split anywhere, each on a fresh store: the two
// responses must be equal, and always one valid response line.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		`{"op":"get","title":"alien"}`,
		`{"op":"all","limit":2}`,
		`{"op":"add","movie":{"title":"Heat","year":1995,"director":"Michael Mann"}}`,
		`{"op":"edit","title":"Alien","set":{"runtime":116}}`,
		`{"op":"edit","title":"Alien","set":{"title":"x"}}`,
		`not json`,
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, line []byte, split uint16) {
		in := append(append([]byte{}, line...), '\n')
		whole := serveOnce(t, [][]byte{in})
		i := int(split) % len(in)
		halves := serveOnce(t, [][]byte{in[:i], in[i:]})
		if whole != halves {
			t.Fatalf("input %q: whole -> %q, split at %d -> %q", in, whole, i, halves)
		}
		if whole == "" || !strings.HasSuffix(whole, "\n") || strings.Count(whole, "\n") != 1 {
			t.Fatalf("input %q: response %q is not one line", in, whole)
		}
		if _, err := proto.DecodeResponse([]byte(whole[:len(whole)-1])); err != nil {
			t.Fatalf("input %q: response %q: %v", in, whole, err)
		}
	})
}

func serveOnce(t *testing.T, writes [][]byte) string {
	fx := newFixture(t, store.Options{})
	srv := &netserve.Server{Handler: fx.handler, MaxLineBytes: proto.MaxRequestBytes, IdleTimeout: 5 * time.Second}
	cli, conn := net.Pipe()
	defer cli.Close()
	go func() {
		for _, w := range writes {
			if _, err := cli.Write(w); err != nil {
				return // the server answered and closed before reading it all
			}
		}
	}()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(cli)
		got <- b
	}()
	srv.ServeConn(conn)
	b := <-got
	fx.store.Close()
	return string(b)
}

func TestSeedMoviesLayers(t *testing.T) {
	dir := t.TempDir()
	over := dir + "/over.json"
	os.WriteFile(over, []byte(`[
{"title": "alien", "year": 1980, "director": "Ridley Scott", "genres": ["Horror"], "runtime": 117, "rating": "R"},
{"title": "Lab Film", "year": 2026, "director": "The Lab", "genres": ["Drama"], "runtime": 90, "rating": "NR"}
]
`), 0o644)
	tests := []struct {
		seed      string
		wantLen   int
		wantAlien int // year of Alien, 0 when absent
		wantErr   bool
	}{
		{"builtin", 520, 1979, false},
		{"none", 0, 0, false},
		{"builtin," + over, 521, 1980, false},
		{"none," + over, 2, 1980, false},
		{over + ",builtin", 521, 1979, false},
		{"builtin," + dir + "/missing.json", 0, 0, true},
	}
	for _, tt := range tests {
		movies, err := Config{Seed: tt.seed}.SeedMovies()
		if (err != nil) != tt.wantErr {
			t.Errorf("SeedMovies(%q) error = %v, want error %v", tt.seed, err, tt.wantErr)
			continue
		}
		alien := 0
		for _, m := range movies {
			if strings.EqualFold(m.Title, "alien") {
				alien = m.Year
			}
		}
		if len(movies) != tt.wantLen || alien != tt.wantAlien {
			t.Errorf("SeedMovies(%q) = %d movies, Alien year %d; want %d, %d", tt.seed, len(movies), alien, tt.wantLen, tt.wantAlien)
		}
	}
}

// TestWireError checks that each of the store's errors reaches the client
// with its code, and that an unknown error is internal.
func TestWireError(t *testing.T) {
	tests := []struct {
		give     error
		wantCode proto.Code
		wantMsg  string
	}{
		{&store.TitleError{Err: store.ErrNotFound, Title: "Alien 3"}, proto.CodeNotFound, `no movie titled "Alien 3"`},
		{&store.TitleError{Err: store.ErrExists, Title: "Heat"}, proto.CodeExists, `a movie titled "Heat" is already stored`},
		{fmt.Errorf("%w: no title", store.ErrInvalid), proto.CodeBadRequest, "invalid movie: no title"},
		{store.ErrClosed, proto.CodeUnavailable, "server is shutting down"},
		{fmt.Errorf("%w: disk full", store.ErrLogFailed), proto.CodeUnavailable, "cannot store changes: disk write failed"},
		{fmt.Errorf("%w: outcome unknown: context canceled", store.ErrCanceled), proto.CodeUnavailable, "outcome unknown"},
		{proto.Errorf(proto.CodeBadRequest, "year 1"), proto.CodeBadRequest, "year 1"},
		{errors.New("boom"), proto.CodeInternal, "internal error"},
	}
	for _, tt := range tests {
		got := wireError(tt.give)
		if got.Code != tt.wantCode || !strings.Contains(got.Message, tt.wantMsg) {
			t.Errorf("wireError(%v) = %v, want code %s with %q", tt.give, got, tt.wantCode, tt.wantMsg)
		}
	}
}

// TestPendingBudget is issue 16 finding 6: cheap requests pinned large
// responses. 900 requests of 26 bytes for a 1,000-film page, never read,
// held about 400 KB each for the 30 s write timeout, with no bound but
// max-conns x 4 MiB. Now the responses waiting for their clients share a
// budget (here 1 MiB): clients that ask for a page and do not read it
// (over net.Pipe, which buffers nothing, so each write waits for the
// reader) hold at most that much, the next one gets busy at once, and
// when they leave, pages are served again.
func TestPendingBudget(t *testing.T) {
	f := newFixture(t, store.Options{Seed: ToStore(synthetic(1000))})
	srv := f.handler.TCPServer(Config{IdleTimeout: 10 * time.Second, MaxPending: 1})
	var wg sync.WaitGroup
	defer wg.Wait()
	// ask sends one request for a page on a fresh connection and returns
	// the connection, the first bytes of its answer and a channel closed
	// when the server is done with the connection (its budget is back).
	ask := func() (net.Conn, string, chan struct{}) {
		cli, conn := net.Pipe()
		done := make(chan struct{})
		wg.Go(func() { defer close(done); srv.ServeConn(conn) })
		cli.SetDeadline(time.Now().Add(nettest.Timeout))
		if _, err := io.WriteString(cli, `{"op":"all","limit":1000}`+"\n"); err != nil {
			t.Fatal(err)
		}
		head := make([]byte, len(`{"ok":false`))
		if _, err := io.ReadFull(cli, head); err != nil {
			t.Fatal(err)
		}
		return cli, string(head), done
	}
	var held []net.Conn
	var heldDone []chan struct{}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	busy := ""
	for range 40 { // 40 pages of about 130 KB: 5 MB unread
		cli, head, done := ask()
		if head == `{"ok":false` {
			rest, _ := io.ReadAll(cli)
			busy = head + string(rest)
			cli.Close()
			break
		}
		held = append(held, cli) // reads nothing more: its page waits
		heldDone = append(heldDone, done)
	}
	if busy == "" {
		t.Fatalf("%d clients hold a 1,000-film page each, unread, and the next still got its page; want busy past 1 MiB", len(held))
	}
	if want := string(respPending); busy != want {
		t.Errorf("over the budget: %q, want %q", busy, want)
	}
	if len(held) == 0 {
		t.Fatal("the first page was refused: the budget holds none")
	}
	if p := gaugeValue(t, f.reg, "moviedb_pending_response_bytes"); p > 1<<20 || p < float64(len(held)*1000*100) {
		t.Errorf("pending response bytes %v with %d pages held, want at most 1 MiB", p, len(held))
	}

	for _, c := range held {
		c.Close() // the server's write fails at once; its bytes go back
	}
	held = nil
	// The budget comes back when the server sees its write fail; wait
	// for that, not for time, before asking again.
	for _, done := range heldDone {
		<-done
	}
	if p := gaugeValue(t, f.reg, "moviedb_pending_response_bytes"); p != 0 {
		t.Errorf("pending response bytes %v after the readers left, want 0", p)
	}
	cli, head, _ := ask()
	rest, err := io.ReadAll(cli)
	cli.Close()
	resp, derr := proto.DecodeResponse(append([]byte(head), rest...))
	if err != nil || derr != nil || len(resp.Movies) != 1000 {
		t.Errorf("after the readers left: %d movies, %v, %v; want a page of 1000", len(resp.Movies), err, derr)
	}
	wg.Wait()
	if p := gaugeValue(t, f.reg, "moviedb_pending_response_bytes"); p != 0 {
		t.Errorf("pending response bytes %v after every client left, want 0", p)
	}
}

// gaugeValue returns the value of the gauge named name in reg, or -1.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestWriteTimeoutResets checks that a large response whose client reads
// nothing until the write timeout ends with a reset, so that the kernel
// drops the rest of it at once (a graceful close would leave an orphan
// socket holding it for minutes), and that its budget comes back.
func TestWriteTimeoutResets(t *testing.T) {
	f := newFixture(t, store.Options{Seed: ToStore(synthetic(1000))})
	srv := f.handler.TCPServer(Config{IdleTimeout: 10 * time.Second, MaxPending: 8})
	srv.WriteTimeout = 200 * time.Millisecond
	addr := serveTCP(t, srv)
	// A small receive window, so that the page cannot all be sent.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, `{"op":"all","limit":1000}`+"\n")

	// Wait until the server holds the page, then until it gave up on it.
	deadline := time.Now().Add(nettest.Timeout)
	for held := false; ; time.Sleep(5 * time.Millisecond) {
		p := gaugeValue(t, f.reg, "moviedb_pending_response_bytes")
		held = held || p > 0
		if held && p == 0 && srv.ActiveConns() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still holds the page (pending %v bytes, %d connections)", p, srv.ActiveConns())
		}
	}
	c.SetReadDeadline(time.Now().Add(nettest.Timeout))
	n, err := io.Copy(io.Discard, c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read %d bytes of the page, then %v; want a reset", n, err)
	}
}

// TestNilLogAndMetrics: a Handler without Log and Metrics serves, logging
// and counting nothing (the kit's Handler shape), even for an error.
func TestNilLogAndMetrics(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.handler = &Handler{Store: f.store}
	addr := f.serve(t, Config{})
	if got := exchange(t, addr, `{"op":"get","title":"no such film"}`); !strings.Contains(got, `"error"`) {
		t.Errorf("get of a missing movie = %s, want an error response", got)
	}
	if got := exchange(t, addr, `not json`); !strings.Contains(got, `"error"`) {
		t.Errorf("a bad line = %s, want an error response", got)
	}
}
