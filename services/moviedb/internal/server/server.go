// Package server answers moviedb requests: one request line and one
// response line per TCP connection (package proto), served from a store.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/moviedb/data"
	"github.com/socklab/socklab/services/moviedb/internal/ports"
	"github.com/socklab/socklab/services/moviedb/internal/store"
	"github.com/socklab/socklab/services/moviedb/proto"
)

// Config is the server's part of the moviedb-server settings.
type Config struct {
	Host        string        `env:"HOST" flag:"host" help:"listen host or address (all interfaces when empty)"`
	Ports       ports.List    `env:"PORTS" envDefault:"5000-5009" flag:"ports" help:"permitted ports, e.g. 5000-5009 or 5000,5001; the first free one is taken (0: any)"`
	DataDir     string        `env:"DATA_DIR" flag:"data-dir" help:"directory of the write-ahead log; empty keeps changes in memory only"`
	Seed        string        `env:"SEED" envDefault:"builtin" flag:"seed" help:"movies of a new database: builtin (the shipped 520 films), none, or JSON file paths; a comma-separated list layers them, a later title replacing an earlier one"`
	Repair      string        `env:"REPAIR" flag:"repair" help:"truncate: cut a bad log tail off (saved aside) and start; empty: refuse to start on a bad log"`
	IdleTimeout time.Duration `env:"IDLE_TIMEOUT" envDefault:"10s" flag:"idle-timeout" help:"time a client has to send its request line"`
	MaxPending  int           `env:"MAX_PENDING_MIB" envDefault:"32" flag:"max-pending-mib" help:"MiB of large responses (over 16 KiB) held at once for clients still reading them; a request that needs more gets a busy error (0: no limit)"`
	netserve.Limits
}

// RepairTruncate is the one value of Config.Repair that repairs.
const RepairTruncate = "truncate"

// Validate reports settings no server can run with.
func (c Config) Validate() error {
	if len(c.Ports.Ports()) == 0 {
		return errors.New("ports: empty port list")
	}
	if c.Repair != "" && c.Repair != RepairTruncate {
		return fmt.Errorf("repair %q: want %q or nothing", c.Repair, RepairTruncate)
	}
	if c.Seed == "" {
		return errors.New("seed: want builtin, none or a file path")
	}
	if c.IdleTimeout <= 0 {
		return errors.New("idle-timeout must be positive")
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	if c.MaxPending < 0 || c.MaxPending > 1<<20 {
		return errors.New("max-pending-mib must be 0 (no limit) to 1048576")
	}
	return nil
}

// SeedMovies loads the movies Seed names. Sources in a comma-separated list
// are layered in order: a movie whose title (case-insensitively) is already
// there replaces it in place, a new one is appended. That is how the lab's
// fleet starts from the same films and still disagrees on a few.
func (c Config) SeedMovies() ([]store.Movie, error) {
	var movies []store.Movie
	at := map[string]int{}
	for _, src := range strings.Split(c.Seed, ",") {
		var layer []proto.Movie
		switch src = strings.TrimSpace(src); src {
		case "builtin":
			layer = data.Builtin()
		case "none", "":
		default:
			var err error
			if layer, err = data.Load(src); err != nil {
				return nil, err
			}
		}
		for _, m := range layer {
			key := strings.ToLower(m.Title)
			if i, ok := at[key]; ok {
				movies[i] = store.Movie(m)
				continue
			}
			at[key] = len(movies)
			movies = append(movies, store.Movie(m))
		}
	}
	return movies, nil
}

// ToStore converts wire movies to the store's. The fields are the same
// today; the types are two so that the disk and the wire can change apart.
func ToStore(ms []proto.Movie) []store.Movie {
	out := make([]store.Movie, len(ms))
	for i := range ms {
		out[i] = store.Movie(ms[i])
	}
	return out
}

// Metrics are the moviedb counters; build them with NewMetrics.
type Metrics struct {
	Requests *prometheus.CounterVec
	Errors   *prometheus.CounterVec
	Latency  *prometheus.HistogramVec
	Pending  prometheus.Gauge

	requests map[proto.Op]prometheus.Counter
	latency  map[proto.Op]prometheus.Observer
	invalid  prometheus.Counter
	errors   map[proto.Code]prometheus.Counter
}

// NewMetrics registers the moviedb metrics with reg, the movie count and
// log counters read from st.
func NewMetrics(reg prometheus.Registerer, st *store.Store) *Metrics {
	f := metrics.For(reg, "moviedb")
	m := &Metrics{
		Requests: f.CounterVec("requests_total",
			"Requests answered, by op (get, all, add, edit; invalid for lines that are no request).", "op"),
		Errors: f.CounterVec("errors_total", "Error responses, by code.", "code"),
		Latency: f.HistogramVec("request_seconds",
			"Time from the request line read to the response written, by op; for add and edit it includes the fsync.",
			metrics.LatencyBuckets, "op"),
		Pending: f.Gauge("pending_response_bytes",
			"Bytes of large responses held for clients still reading them (the budget of MOVIEDB_MAX_PENDING_MIB)."),
		requests: map[proto.Op]prometheus.Counter{},
		latency:  map[proto.Op]prometheus.Observer{},
		errors:   map[proto.Code]prometheus.Counter{},
	}
	f.GaugeFunc("movies", "Movies stored.", func() float64 { return float64(st.Len()) })
	f.CounterFunc("log_syncs_total", "Write-ahead log fsyncs; each covers a batch of writes.",
		func() float64 { return float64(st.Syncs()) })
	f.CounterFunc("log_records_total", "Writes made durable in the write-ahead log (or applied, in memory).",
		func() float64 { return float64(st.Records()) })
	// Children resolved once: a label lookup per request would cost a hash.
	for _, op := range proto.Ops {
		m.requests[op] = m.Requests.WithLabelValues(string(op))
		m.latency[op] = m.Latency.WithLabelValues(string(op))
	}
	m.invalid = m.Requests.WithLabelValues("invalid")
	for _, c := range []proto.Code{proto.CodeBadRequest, proto.CodeNotFound, proto.CodeExists, proto.CodeTooLong,
		proto.CodeTimeout, proto.CodeBusy, proto.CodeUnavailable, proto.CodeInternal} {
		m.errors[c] = m.Errors.WithLabelValues(string(c))
	}
	return m
}

func (m *Metrics) error(c proto.Code) {
	if ctr, ok := m.errors[c]; ok {
		ctr.Inc()
	}
}

// Handler serves one request per connection from Store.
type Handler struct {
	// Store holds the movies.
	Store *store.Store
	// Log receives internal errors; nil logs nothing.
	Log *zap.Logger
	// Metrics counts requests and errors; nil counts nothing.
	Metrics *Metrics
	// MaxPendingBytes bounds the bytes of large responses (over
	// LargeResponseBytes) held at once while their clients read them; a
	// request whose response does not fit gets a busy error. 0 means no
	// limit. TCPServer sets it from Config.MaxPending when it is 0.
	MaxPendingBytes int64

	// pending counts the budget in use; TCPServer makes the one counter
	// every connection shares (copies made by filled share it too).
	pending *atomic.Int64
}

// LargeResponseBytes is the size from which a response counts against
// MaxPendingBytes: a smaller one is copied into the connection's write
// buffer (netserve.DefaultBufferBytes, always there), a larger one is
// written from its own memory, held until the client has taken all of it
// but the socket's send buffer, or the write times out.
const LargeResponseBytes = netserve.DefaultBufferBytes

// SendBufferBytes is the socket send buffer (SO_SNDBUF) of a connection
// that gets a large response; Linux doubles it for its bookkeeping, so the
// kernel holds at most 64 KiB of the response at a time. The default
// grows to 4 MiB (net.ipv4.tcp_wmem), all of it charged to the server's
// memory limit for a client that never reads. 32 KiB still fills a LAN:
// the client reads it in one round trip.
const SendBufferBytes = 32 << 10

// discard counts for a Handler without Metrics: registered nowhere, so its
// gauges, which would read a nil store, are never collected.
var discard = NewMetrics(prometheus.NewRegistry(), nil)

// filled returns h, or a copy of it with a nil Log or Metrics replaced by
// one that does nothing (and a budget counter of its own when TCPServer
// made none).
func (h *Handler) filled() *Handler {
	if h.Log != nil && h.Metrics != nil && h.pending != nil {
		return h
	}
	c := *h
	if c.pending == nil {
		c.pending = new(atomic.Int64)
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Metrics == nil {
		c.Metrics = discard
	}
	return &c
}

// Canned responses for failures before a request is read.
var (
	respBusy     = errorLine(proto.CodeBusy, "server busy; try again")
	respTooLong  = errorLine(proto.CodeTooLong, fmt.Sprintf("request line longer than %d bytes", proto.MaxRequestBytes))
	respTimeout  = errorLine(proto.CodeTimeout, "no request line in time")
	respShutdown = errorLine(proto.CodeUnavailable, "server is shutting down")
	respNoEOL    = errorLine(proto.CodeBadRequest, "connection closed before the end of the request line; end it with \\n")
	respPending  = errorLine(proto.CodeBusy, "server busy: its memory for responses that clients are still reading is full; try again")
)

func errorLine(code proto.Code, msg string) []byte {
	return proto.AppendResponse(nil, proto.Response{Error: &proto.Error{Code: code, Message: msg}})
}

// ServeConn reads one request line, answers it, and returns; the server
// then closes the connection.
func (h *Handler) ServeConn(ctx context.Context, c *netserve.Conn) {
	h = h.filled()
	line, err := c.ReadLine()
	if err != nil {
		h.readFailed(c, err)
		return
	}
	start := time.Now()
	req, err := proto.DecodeRequest(line)
	var (
		out  []byte
		held int64 // of the budget, for out
	)
	switch {
	case err != nil:
		h.Metrics.invalid.Inc()
		out = proto.AppendResponse(nil, h.failure(err))
	case req.Op == proto.OpAll:
		h.Metrics.requests[req.Op].Inc()
		out, held = h.page(req)
	default:
		h.Metrics.requests[req.Op].Inc()
		out = proto.AppendResponse(nil, h.answer(ctx, req))
	}
	if held == 0 && len(out) > LargeResponseBytes {
		// Not a page, yet large: reserve it now that it is built.
		if held = int64(cap(out)); !h.reserve(held) {
			h.Metrics.error(proto.CodeBusy)
			out, held = respPending, 0
		}
	}
	large := held > 0
	if large {
		defer h.release(held)
		// What the kernel takes of a large response is beyond the budget:
		// cap it, so a client that does not read holds at most the
		// budget's share in the server and this much in its socket.
		if tc, ok := c.NetConn().(*net.TCPConn); ok {
			tc.SetWriteBuffer(SendBufferBytes)
		}
	}
	c.Write(out)
	if werr := c.Flush(); werr != nil && large {
		// Most likely the write timed out on a client that does not read:
		// reset the connection rather than leave the kernel an orphan
		// socket holding the rest of the response for minutes.
		if tc, ok := c.NetConn().(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.CloseAbruptly()
	}
	if err == nil {
		h.Metrics.latency[req.Op].Observe(time.Since(start).Seconds())
	}
}

// reserve takes n bytes of the pending-response budget, or reports that
// they do not fit.
func (h *Handler) reserve(n int64) bool {
	if p := h.pending.Add(n); h.MaxPendingBytes > 0 && p > h.MaxPendingBytes {
		h.pending.Add(-n)
		return false
	}
	h.Metrics.Pending.Add(float64(n))
	return true
}

func (h *Handler) release(n int64) {
	h.pending.Add(-n)
	h.Metrics.Pending.Sub(float64(n))
}

// page answers an "all" request, encoding the movies straight from the
// store into a line whose memory is taken from the budget before it is
// allocated, growing as it fills: a request that does not fit gets busy
// without building more than fits. It returns the line and what it holds
// of the budget (0 when the line is small and held nothing); the caller
// releases it.
func (h *Handler) page(req proto.Request) ([]byte, int64) {
	if h.MaxPendingBytes > 0 && h.pending.Load() >= h.MaxPendingBytes {
		h.Metrics.error(proto.CodeBusy)
		return respPending, 0 // never modified: Write copies it
	}
	b := pageBuf{h: h}
	// A typical movie is under 200 bytes.
	if !b.grow(64 + 200*min(req.Limit, h.Store.Len())) {
		h.Metrics.error(proto.CodeBusy)
		return respPending, 0
	}
	b.out = proto.AppendPageStart(b.out)
	i := 0
	next := h.Store.Range(req.Cursor, req.Limit, func(m *store.Movie) {
		pm := (*proto.Movie)(m)
		if b.ok = b.ok && b.grow(proto.PageMovieBound(pm)); b.ok {
			b.out = proto.AppendPageMovie(b.out, i, pm)
			i++
		}
	})
	if !b.ok || !b.grow(len(next)*6+16) {
		h.release(b.held)
		h.Metrics.error(proto.CodeBusy)
		return respPending, 0
	}
	b.out = proto.AppendPageEnd(b.out, next)
	if len(b.out) <= LargeResponseBytes {
		// Small enough for the connection's own buffer: hold nothing.
		h.release(b.held)
		return b.out, 0
	}
	return b.out, b.held
}

// pageBuf is a line being built whose capacity is always reserved from the
// handler's budget (held), so it never allocates past the budget.
type pageBuf struct {
	h    *Handler
	out  []byte
	held int64
	ok   bool
}

// grow makes room for need more bytes, reserving the larger capacity
// first; it reports false when the budget cannot take it.
func (b *pageBuf) grow(need int) bool {
	if cap(b.out)-len(b.out) >= need {
		b.ok = true
		return true
	}
	c := max(2*cap(b.out), len(b.out)+need)
	if !b.h.reserve(int64(c)) {
		return false
	}
	out := make([]byte, len(b.out), c)
	copy(out, b.out)
	b.h.release(b.held)
	b.out, b.held, b.ok = out, int64(c), true
	return true
}

func (h *Handler) readFailed(c *netserve.Conn, err error) {
	var resp []byte
	switch {
	case errors.Is(err, netserve.ErrLineTooLong):
		h.Metrics.invalid.Inc()
		h.Metrics.error(proto.CodeTooLong)
		resp = respTooLong
		c.CloseAbruptly() // the rest of the line is still coming
	case errors.Is(err, netserve.ErrIdleTimeout):
		h.Metrics.error(proto.CodeTimeout)
		resp = respTimeout
	case errors.Is(err, netserve.ErrServerClosed):
		h.Metrics.error(proto.CodeUnavailable)
		resp = respShutdown
	case errors.Is(err, io.ErrUnexpectedEOF):
		h.Metrics.invalid.Inc()
		h.Metrics.error(proto.CodeBadRequest)
		resp = respNoEOL
	default:
		return // io.EOF: a probe that connected and left, or a reset
	}
	c.Write(resp)
	c.Flush()
}

func (h *Handler) answer(ctx context.Context, req proto.Request) proto.Response {
	var (
		m   store.Movie
		err error
	)
	switch req.Op {
	case proto.OpGet:
		var ok bool
		if m, ok = h.Store.Get(req.Title); !ok {
			err = &store.TitleError{Err: store.ErrNotFound, Title: req.Title}
		}
	case proto.OpAdd:
		m, err = h.Store.Add(ctx, store.Movie(*req.Movie))
	case proto.OpEdit:
		m, err = h.Store.Edit(ctx, req.Title, store.Changes(*req.Set))
	default:
		err = fmt.Errorf("op %q passed validation", req.Op)
	}
	if err != nil {
		return h.failure(err)
	}
	pm := proto.Movie(m)
	return proto.Response{OK: true, Movie: &pm}
}

// wireError maps an error of proto (a bad request) or of the store to the
// wire's; anything else is an internal error.
func wireError(err error) *proto.Error {
	var (
		pe *proto.Error
		te *store.TitleError
	)
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &te) && errors.Is(te.Err, store.ErrNotFound):
		return proto.Errorf(proto.CodeNotFound, "no movie titled %q", te.Title)
	case errors.As(err, &te) && errors.Is(te.Err, store.ErrExists):
		return proto.Errorf(proto.CodeExists, "a movie titled %q is already stored", te.Title)
	case errors.Is(err, store.ErrInvalid):
		return proto.Errorf(proto.CodeBadRequest, "%v", err)
	case errors.Is(err, store.ErrClosed):
		return proto.Errorf(proto.CodeUnavailable, "server is shutting down")
	case errors.Is(err, store.ErrLogFailed):
		return proto.Errorf(proto.CodeUnavailable, "cannot store changes: disk write failed")
	case errors.Is(err, store.ErrCanceled):
		return proto.Errorf(proto.CodeUnavailable, "%v", err)
	}
	return proto.Errorf(proto.CodeInternal, "internal error")
}

func (h *Handler) failure(err error) proto.Response {
	pe := wireError(err)
	if pe.Code == proto.CodeInternal {
		h.Log.Error("internal error", zap.Error(err))
	}
	h.Metrics.error(pe.Code)
	return proto.Response{Error: pe}
}

// TCPServer returns a netserve.Server for h configured from cfg.
func (h *Handler) TCPServer(cfg Config) *netserve.Server {
	if h.MaxPendingBytes == 0 {
		h.MaxPendingBytes = int64(cfg.MaxPending) << 20
	}
	if h.pending == nil {
		h.pending = new(atomic.Int64)
	}
	return cfg.Limits.Apply(&netserve.Server{
		Handler:      h,
		IdleTimeout:  cfg.IdleTimeout,
		MaxLineBytes: proto.MaxRequestBytes,
		BusyMessage:  respBusy,
		Log:          h.Log,
	})
}

// Probe is the healthcheck: a server on one of cfg's ports (on loopback
// when Host is empty or unspecified) answers an "all" request for one
// movie. The ports are asked at once, so one that never answers (another
// program) cannot use up the time.
func Probe(cfg Config) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ps := cfg.Ports.Ports()
		errc := make(chan error, len(ps))
		for _, p := range ps {
			go func() {
				addr := health.Loopback(net.JoinHostPort(cfg.Host, strconv.Itoa(p)))
				resp, err := proto.Do(ctx, nil, addr, proto.Request{Op: proto.OpAll, Limit: 1})
				if err == nil && !resp.OK {
					err = resp.Error
				}
				errc <- err
			}()
		}
		var errs []string
		for range ps {
			err := <-errc
			if err == nil {
				return nil // the deferred cancel ends the other probes
			}
			errs = append(errs, err.Error())
		}
		return fmt.Errorf("no moviedb server answers on the port list %q: %s", cfg.Ports, strings.Join(errs, "; "))
	}
}
