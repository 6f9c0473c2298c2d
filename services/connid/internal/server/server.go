// Package server answers connid handshakes, HELLO <ConnectionID>, over UDP
// (one message per datagram) and TCP (one message per line), claiming IDs
// in a store.Store. The protocol is in services/connid/README.md.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/connid/internal/store"
	"github.com/socklab/socklab/services/connid/proto"
	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/netserve"
)

// MaxMessageBytes is the longest datagram or line the server reads. A
// longer datagram is dropped (counted as oversized); a longer TCP line gets
// ERROR BAD_REQUEST and the connection is closed, since it cannot be
// resynchronised. Shorter malformed messages get ERROR BAD_REQUEST (see
// Handler.ServePacket for the UDP exception).
const MaxMessageBytes = 1024

// Config is the server's part of the connid-server settings. IdleTimeout is
// not netserve's idle timeout of a connection (that is ConnTimeout): it ends
// the server.
type Config struct {
	netserve.Settings
	IDTTL           time.Duration `env:"ID_TTL" envDefault:"30s" flag:"id-ttl" help:"how long a claimed connection ID stays in use"`
	IdleTimeout     time.Duration `env:"IDLE_TIMEOUT" envDefault:"2m" flag:"idle-timeout" help:"exit (status 0) after no request for this long; 0 never exits"`
	ConnTimeout     time.Duration `env:"CONN_TIMEOUT" envDefault:"1m" flag:"conn-timeout" help:"close a TCP connection that sends no line for this long"`
	MaxIDs          int           `env:"MAX_IDS" envDefault:"50000" flag:"max-ids" help:"connection IDs in use at once; a claim beyond gets ERROR BUSY"`
	MaxIDsPerSource int           `env:"MAX_IDS_PER_SOURCE" envDefault:"10000" flag:"max-ids-per-source" help:"connection IDs in use at once claimed from one address (IPv6: one /64); a claim beyond gets ERROR BUSY"`
}

// SetDefaults presets the listen address to the lab map's port.
func (c *Config) SetDefaults() { c.Addr = lab.ConnID.ListenAddr() }

// SetArgs applies SERVER_IP SERVER_PORT, the seed's way of giving the
// address, when given.
func (c *Config) SetArgs(rest []string) error {
	switch len(rest) {
	case 0:
		return nil
	case 2:
		n, err := strconv.ParseUint(rest[1], 10, 16)
		if err != nil {
			return fmt.Errorf("SERVER_PORT %q is not a port number (0 to 65535)", rest[1])
		}
		c.Addr = net.JoinHostPort(rest[0], strconv.FormatUint(n, 10))
		return nil
	default:
		return fmt.Errorf("want SERVER_IP SERVER_PORT or no arguments, got %q", rest)
	}
}

// Validate reports settings no server can run with.
func (c Config) Validate() error {
	if err := c.Settings.Validate(); err != nil {
		return err
	}
	if c.IDTTL <= 0 {
		return errors.New("id-ttl must be positive")
	}
	if c.IdleTimeout < 0 {
		return errors.New("idle-timeout must not be negative (0 disables it)")
	}
	if c.ConnTimeout <= 0 {
		return errors.New("conn-timeout must be positive")
	}
	if c.MaxIDs < 1 || c.MaxIDsPerSource < 1 {
		return errors.New("max-ids and max-ids-per-source must be at least 1")
	}
	return nil
}

// Metrics are the connid counters; build them with NewMetrics.
type Metrics struct {
	Requests    *prometheus.CounterVec
	Handshakes  *prometheus.CounterVec
	BadRequests *prometheus.CounterVec
	Errors      *prometheus.CounterVec

	udpRequests, tcpRequests prometheus.Counter
	ok, reset                prometheus.Counter
	badReplied, badDropped   prometheus.Counter
	errWrite, errStore       prometheus.Counter
	busy                     prometheus.Counter
}

// NewMetrics registers the connid metrics with reg, reading the IDs in use
// and the expired count from st.
func NewMetrics(reg prometheus.Registerer, st *store.Store) *Metrics {
	f := metrics.For(reg, "connid")
	m := newMetrics(f)
	f.GaugeFunc("ids_in_use", "Connection IDs in the table now.", func() float64 { return float64(st.Len()) })
	f.CounterFunc("ids_expired_total", "Connection IDs that expired and became free again.",
		func() float64 { return float64(st.Expired()) })
	f.CounterFunc("store_commits_total", "Write transactions that decided claims; claims per commit is the group-commit batch size.",
		func() float64 { _, n := st.Commits(); return float64(n) })
	f.CounterFunc("store_claims_total", "Claims decided in write transactions (HELLO for an ID not seen in use).",
		func() float64 { n, _ := st.Commits(); return float64(n) })
	return m
}

// newMetrics declares the counters with f.
func newMetrics(f metrics.Factory) *Metrics {
	m := &Metrics{
		Requests: f.CounterVec("requests_total",
			"Messages received (datagrams or lines, well-formed or not), by protocol.", "proto"),
		Handshakes: f.CounterVec("handshakes_total",
			"HELLO requests answered, by result: ok (ID claimed), reset (ID in use) or busy (no room: max-ids or max-ids-per-source).",
			"result"),
		BadRequests: f.CounterVec("bad_requests_total",
			"Malformed requests, by action: replied (ERROR BAD_REQUEST) or dropped (a UDP request shorter than that reply).",
			"action"),
		Errors: f.CounterVec("errors_total", "Requests left unanswered by an error, by kind: write or store.", "kind"),
	}
	// Children resolved once: a label lookup per message would cost a hash.
	m.udpRequests, m.tcpRequests = m.Requests.WithLabelValues("udp"), m.Requests.WithLabelValues("tcp")
	m.ok, m.reset = m.Handshakes.WithLabelValues("ok"), m.Handshakes.WithLabelValues("reset")
	m.busy = m.Handshakes.WithLabelValues("busy")
	m.badReplied, m.badDropped = m.BadRequests.WithLabelValues("replied"), m.BadRequests.WithLabelValues("dropped")
	m.errWrite, m.errStore = m.Errors.WithLabelValues("write"), m.Errors.WithLabelValues("store")
	return m
}

// discard counts for a Handler without Metrics: registered nowhere.
var discard = newMetrics(metrics.For(nil, "connid"))

// Handler answers requests over both protocols. Claims are decided by the
// store's writer, so Store.Run must be running (RunStore).
type Handler struct {
	// Store holds the IDs in use.
	Store *store.Store
	// Clock times claims and the idle watch; nil means the system clock.
	Clock clock.Clock
	// Idle, when set, is touched by every request but PING.
	Idle *Idle
	// Metrics counts requests and replies; nil counts nothing.
	Metrics *Metrics
	// Log receives connection-level events at debug level only; nil logs
	// nothing.
	Log *zap.Logger
}

func (h *Handler) metrics() *Metrics {
	if h.Metrics == nil {
		return discard
	}
	return h.Metrics
}

func (h *Handler) now() time.Time {
	if h.Clock == nil {
		return time.Now()
	}
	return h.Clock.Now()
}

// request classifies one message (without line end) and appends the reply
// to dst when it can be given at once: PONG, ERROR BAD_REQUEST, or RESET
// for an ID in use (a read, no write). Otherwise claim is the ID to claim
// (IDs are never empty), and now the time of the request.
func (h *Handler) request(dst, msg []byte) (reply []byte, bad bool, claim string, now time.Time) {
	kind, id, err := proto.ParseRequest(msg)
	if kind == proto.KindPing {
		// Health probes neither claim IDs nor keep the server awake.
		return append(dst, proto.Pong...), false, "", now
	}
	now = h.now()
	h.Idle.Touch(now)
	if err != nil {
		return append(dst, proto.ErrorBadRequest...), true, "", now
	}
	// One copy of the ID serves the lookup and, if it is free, the record.
	claim = string(id)
	inUse, err := h.Store.InUse(claim, now)
	if err != nil {
		h.storeError(err)
		return dst, false, "", now
	}
	if inUse {
		h.metrics().reset.Inc()
		return proto.AppendReset(dst, id), false, "", now
	}
	return dst, false, claim, now
}

// decided counts a claim's outcome and appends its reply to dst.
func (h *Handler) decided(dst []byte, r *store.Request, ok bool, err error) []byte {
	switch {
	case errors.Is(err, store.ErrFull), errors.Is(err, store.ErrSourceFull):
		h.Metrics.busy.Inc()
		return append(dst, proto.ErrorBusy...)
	case err != nil:
		h.storeError(err)
		return dst
	case ok:
		h.metrics().ok.Inc()
		return proto.AppendOK(dst, r.ID, r.From)
	default:
		h.metrics().reset.Inc()
		return proto.AppendReset(dst, r.ID)
	}
}

func (h *Handler) storeError(err error) {
	h.metrics().errStore.Inc()
	// Only a schema bug or a shutdown in progress fails a claim.
	if h.Log != nil && !errors.Is(err, store.ErrStopped) {
		h.Log.Error("store", zap.Error(err))
	}
}

// udpLoop is the state of one UDP read loop (netserve.LoopHandler). It also
// sends the outcome of the claims its loop handed to the store's writer:
// the writer calls ClaimDone, and only the writer uses buf.
type udpLoop struct {
	h     *Handler
	conn  *net.UDPConn
	buf   []byte
	queue *recvQueue
	// busy counts down the claims this loop still hands to the writer
	// after it last found datagrams waiting or the store busy.
	busy int
}

// NewLoop returns the handler of one UDP read loop on conn.
func (h *Handler) NewLoop(conn *net.UDPConn) netserve.PacketHandler {
	return &udpLoop{h: h, conn: conn, buf: make([]byte, 0, proto.MaxReplyLen), queue: newRecvQueue(conn)}
}

// busySpell is how many claims a read loop hands to the writer after it
// last saw load, before it decides claims itself again. Under load the
// writer commits claims in batches on one core while the loop reads on
// the other; a claim decided in the loop stops its reading for a whole
// write transaction, and the claims that arrive meanwhile lose a batch.
const busySpell = 64

// ClaimDone sends the outcome of a claim the loop handed to the writer.
func (u *udpLoop) ClaimDone(r *store.Request, ok bool, err error) {
	u.buf = u.h.decided(u.buf[:0], r, ok, err)
	if len(u.buf) == 0 {
		return
	}
	if _, err := u.conn.WriteToUDPAddrPort(u.buf, r.From); err != nil {
		u.h.metrics().errWrite.Inc()
	}
}

// ServePacket answers one datagram with at most one datagram, without line
// end. A claim is decided here when no other datagram waits and the store's
// writer is idle (Store.TryClaim). Otherwise it is handed to the writer,
// which replies once the ID is committed, so the read loop goes on reading
// meanwhile and the writer commits the claims that queue up together. A
// malformed datagram shorter than ERROR BAD_REQUEST is dropped, so a forged
// source address never gets back more bytes than it sent with an error.
//
// Served through the Handler itself rather than a read loop's NewLoop, each
// datagram gets a loop of its own.
func (h *Handler) ServePacket(p *netserve.Packet) { h.NewLoop(p.Conn()).ServePacket(p) }

// ServePacket answers one datagram of the loop.
func (u *udpLoop) ServePacket(p *netserve.Packet) {
	h := u.h
	m := h.metrics()
	m.udpRequests.Inc()
	reply, bad, id, now := h.request(p.Out, p.Data)
	if id != "" {
		r := store.Request{ID: id, From: p.From, At: now}
		// With nothing else to read, decide the claim here if the writer
		// is idle: a hand-off would cost two goroutine wake-ups on the
		// round trip and batch nothing. With datagrams waiting, or for a
		// spell after that, hand it to the writer and read on, so that
		// their claims share its transaction.
		switch {
		case u.queue.waiting():
			u.busy = busySpell
		case u.busy > 0:
			u.busy--
		default:
			if ok, err, done := h.Store.TryClaim(r.ID, r.From, r.At); done {
				h.replyPacket(p, h.decided(reply, &r, ok, err))
				return
			}
			u.busy = busySpell
		}
		r.Done = u
		if err := h.Store.Submit(r); err != nil {
			h.storeError(err)
		}
		return
	}
	if bad {
		if len(p.Data) < len(proto.ErrorBadRequest) {
			m.badDropped.Inc()
			return
		}
		m.badReplied.Inc()
	}
	h.replyPacket(p, reply)
}

func (h *Handler) replyPacket(p *netserve.Packet, reply []byte) {
	if len(reply) == 0 {
		return
	}
	if err := p.Reply(reply); err != nil {
		h.metrics().errWrite.Inc()
	}
}

// ServeConn answers each line of a TCP connection with one line, in order.
func (h *Handler) ServeConn(_ context.Context, c *netserve.Conn) {
	from := addrPort(c.RemoteAddr())
	w := store.NewWaiter()
	buf := make([]byte, 0, proto.MaxReplyLen+1)
	for {
		line, err := c.ReadLine()
		if err != nil {
			h.connEnded(c, err)
			return
		}
		h.metrics().tcpRequests.Inc()
		reply, bad, id, now := h.request(buf[:0], line)
		if bad {
			h.metrics().badReplied.Inc()
		}
		if id != "" {
			r := store.Request{ID: id, From: from, At: now}
			ok, err, done := h.Store.TryClaim(r.ID, r.From, r.At)
			if !done {
				ok, err = h.Store.Claim(w, r.ID, r.From, r.At)
			}
			if errors.Is(err, store.ErrStopped) {
				h.storeError(err)
				return // shutting down
			}
			reply = h.decided(reply, &r, ok, err)
		}
		if len(reply) == 0 {
			continue
		}
		reply = append(reply, '\n')
		if _, err := c.Write(reply); err != nil {
			h.metrics().errWrite.Inc()
			return
		}
		// Flush every reply. FlushIfDrained would not hold one back from a
		// client waiting for it either (the reader flushes before it
		// blocks); it would batch the replies of a pipelined burst, and
		// connid clients send one HELLO and wait, so there is none.
		if err := c.Flush(); err != nil {
			h.metrics().errWrite.Inc()
			return
		}
	}
}

var msgBadRequest = []byte(proto.ErrorBadRequest + "\n")

func (h *Handler) connEnded(c *netserve.Conn, err error) {
	switch {
	case errors.Is(err, netserve.ErrLineTooLong):
		h.metrics().tcpRequests.Inc()
		h.metrics().badReplied.Inc()
		h.Idle.Touch(h.now())
		c.Write(msgBadRequest)
		c.CloseAbruptly()
	case errors.Is(err, io.EOF), errors.Is(err, netserve.ErrServerClosed), errors.Is(err, netserve.ErrIdleTimeout):
	case h.Log != nil:
		h.Log.Debug("connection ended", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
	}
}

// addrPort returns the address of a TCP peer, or the zero AddrPort for
// connections without one (net.Pipe).
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

// TCPServer returns a netserve.Server for h configured from cfg.
func (h *Handler) TCPServer(cfg Config) *netserve.Server {
	return cfg.Limits.Apply(&netserve.Server{
		Handler:      h,
		IdleTimeout:  cfg.ConnTimeout,
		MaxLineBytes: MaxMessageBytes,
		Log:          h.Log,
	})
}

// UDPServer returns a netserve.PacketServer for h configured from cfg.
func (h *Handler) UDPServer(cfg Config) *netserve.PacketServer {
	return &netserve.PacketServer{
		Handler:        h,
		Readers:        cfg.UDPReaders,
		MaxPacketBytes: MaxMessageBytes,
		Log:            h.Log,
	}
}
