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
	MaxConns    int           `env:"MAX_CONNS" envDefault:"1000" flag:"max-conns" help:"connections served at once; more get a busy error (0: no limit)"`
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
	if c.MaxConns < 0 {
		return errors.New("max-conns must not be negative")
	}
	return nil
}

// SeedMovies loads the movies Seed names. Sources in a comma-separated list
// are layered in order: a movie whose title (case-insensitively) is already
// there replaces it in place, a new one is appended. That is how the lab's
// fleet starts from the same films and still disagrees on a few.
func (c Config) SeedMovies() ([]proto.Movie, error) {
	var movies []proto.Movie
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
				movies[i] = m
				continue
			}
			at[key] = len(movies)
			movies = append(movies, m)
		}
	}
	return movies, nil
}

// Metrics are the moviedb counters; build them with NewMetrics.
type Metrics struct {
	Requests *prometheus.CounterVec
	Errors   *prometheus.CounterVec
	Latency  *prometheus.HistogramVec

	requests map[proto.Op]prometheus.Counter
	latency  map[proto.Op]prometheus.Observer
	invalid  prometheus.Counter
	errors   map[proto.Code]prometheus.Counter
}

// NewMetrics registers the moviedb metrics with reg, the movie count and
// log counters read from st.
func NewMetrics(reg prometheus.Registerer, st *store.Store) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "moviedb", Name: "requests_total",
			Help: "Requests answered, by op (get, all, add, edit; invalid for lines that are no request).",
		}, []string{"op"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "moviedb", Name: "errors_total", Help: "Error responses, by code.",
		}, []string{"code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "moviedb", Name: "request_seconds",
			Help:    "Time from the request line read to the response written, by op; for add and edit it includes the fsync.",
			Buckets: metrics.LatencyBuckets,
		}, []string{"op"}),
		requests: map[proto.Op]prometheus.Counter{},
		latency:  map[proto.Op]prometheus.Observer{},
		errors:   map[proto.Code]prometheus.Counter{},
	}
	reg.MustRegister(m.Requests, m.Errors, m.Latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "moviedb", Name: "movies", Help: "Movies stored.",
		}, func() float64 { return float64(st.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "moviedb", Name: "log_syncs_total", Help: "Write-ahead log fsyncs; each covers a batch of writes.",
		}, func() float64 { return float64(st.Syncs()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "moviedb", Name: "log_records_total", Help: "Writes made durable in the write-ahead log (or applied, in memory).",
		}, func() float64 { return float64(st.Records()) }),
	)
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
}

// discard counts for a Handler without Metrics: registered nowhere, so its
// gauges, which would read a nil store, are never collected.
var discard = NewMetrics(prometheus.NewRegistry(), nil)

// filled returns h, or a copy of it with a nil Log or Metrics replaced by
// one that does nothing.
func (h *Handler) filled() *Handler {
	if h.Log != nil && h.Metrics != nil {
		return h
	}
	c := *h
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
	var resp proto.Response
	if err != nil {
		h.Metrics.invalid.Inc()
		resp = h.failure(err)
	} else {
		h.Metrics.requests[req.Op].Inc()
		resp = h.answer(ctx, req)
	}
	c.Write(proto.AppendResponse(nil, resp))
	c.Flush() // a write error means the client left; nothing to tell it
	if err == nil {
		h.Metrics.latency[req.Op].Observe(time.Since(start).Seconds())
	}
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
		m   proto.Movie
		err error
	)
	switch req.Op {
	case proto.OpGet:
		var ok bool
		if m, ok = h.Store.Get(req.Title); !ok {
			err = proto.Errorf(proto.CodeNotFound, "no movie titled %q", req.Title)
		}
	case proto.OpAll:
		ms, next := h.Store.Page(req.Cursor, req.Limit)
		return proto.Response{OK: true, Movies: ms, Next: next}
	case proto.OpAdd:
		m, err = h.Store.Add(ctx, *req.Movie)
	case proto.OpEdit:
		m, err = h.Store.Edit(ctx, req.Title, *req.Set)
	default:
		err = fmt.Errorf("op %q passed validation", req.Op)
	}
	if err != nil {
		return h.failure(err)
	}
	return proto.Response{OK: true, Movie: &m}
}

func (h *Handler) failure(err error) proto.Response {
	var pe *proto.Error
	if !errors.As(err, &pe) {
		h.Log.Error("internal error", zap.Error(err))
		pe = proto.Errorf(proto.CodeInternal, "internal error")
	} else if pe.Code == proto.CodeInternal {
		h.Log.Error("internal error", zap.Error(err))
	}
	h.Metrics.error(pe.Code)
	return proto.Response{Error: pe}
}

// TCPServer returns a netserve.Server for h configured from cfg.
func (h *Handler) TCPServer(cfg Config) *netserve.Server {
	return &netserve.Server{
		Handler:      h,
		IdleTimeout:  cfg.IdleTimeout,
		MaxLineBytes: proto.MaxRequestBytes,
		MaxConns:     cfg.MaxConns,
		BusyMessage:  respBusy,
		Log:          h.Log,
	}
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
