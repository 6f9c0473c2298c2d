// Package server answers AutoReplyNet messages over TCP (one line each) and
// UDP (one datagram each) with reply lines from package proto.
package server

import (
	"context"
	crand "crypto/rand"
	"errors"
	"io"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/autoreply/proto"
	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/netserve"
)

// Config is the server's part of the autoreply-server settings.
type Config struct {
	netserve.Settings
	MaxLineBytes  int           `env:"MAX_LINE" envDefault:"65536" flag:"max-line" help:"longest TCP message line in bytes; longer gets 'ERROR line too long' and a close"`
	IdleTimeout   time.Duration `env:"IDLE_TIMEOUT" envDefault:"5m" flag:"idle-timeout" help:"close a TCP connection idle this long"`
	UDPCredit     int           `env:"UDP_CREDIT" envDefault:"4096" flag:"udp-credit" help:"bytes of UDP replies a source may receive beyond 3 times what it sent; refills at udp-credit-rate"`
	UDPCreditRate int           `env:"UDP_CREDIT_RATE" envDefault:"1024" flag:"udp-credit-rate" help:"bytes per second the UDP credit of a source refills"`
}

// SetDefaults presets the listen address to the lab map's port.
func (c *Config) SetDefaults() { c.Addr = lab.Autoreply.ListenAddr() }

// Validate reports settings no server can run with.
func (c Config) Validate() error {
	if err := c.Settings.Validate(); err != nil {
		return err
	}
	if c.MaxLineBytes < 1 || c.MaxLineBytes > 16<<20 {
		return errors.New("max-line must be from 1 to 16777216 bytes")
	}
	if c.UDPCredit < 0 || c.UDPCreditRate < 0 {
		return errors.New("udp-credit and udp-credit-rate must not be negative")
	}
	return nil
}

// Wire messages for errors.
var (
	msgTooLong = []byte("ERROR line too long\n")
	msgBusy    = []byte("ERROR server busy\n")
)

// Metrics are the autoreply counters; build them with NewMetrics.
type Metrics struct {
	Messages *prometheus.CounterVec
	Bytes    *prometheus.CounterVec
	Errors   *prometheus.CounterVec
	Latency  *prometheus.HistogramVec
	// Withheld counts UDP replies not sent by the amplification budget.
	Withheld prometheus.Counter

	tcpMsgs, udpMsgs    prometheus.Counter
	tcpBytes, udpBytes  prometheus.Counter
	tcpLatency          prometheus.Observer
	udpLatency          prometheus.Observer
	errTooLong, errIdle prometheus.Counter
	errWrite            prometheus.Counter
}

// NewMetrics registers the autoreply metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := metrics.For(reg, "autoreply")
	m := &Metrics{
		Messages: f.CounterVec("messages_total", "Messages answered, by protocol.", "proto"),
		Bytes:    f.CounterVec("received_bytes_total", "Message bytes received (without line ends), by protocol.", "proto"),
		Errors:   f.CounterVec("errors_total", "Connections ended by an error, by kind.", "kind"),
		Latency: f.HistogramVec("reply_seconds",
			"Time from reception to the reply handed to the socket, by protocol. TCP observes once per flush, for the oldest reply in it.",
			metrics.LatencyBuckets, "proto"),
		Withheld: f.Counter("udp_withheld_total",
			"UDP replies not sent: the source had received 3 times what it sent, plus its credit."),
	}
	// Children resolved once: a label lookup per message would cost a hash.
	m.tcpMsgs, m.udpMsgs = m.Messages.WithLabelValues("tcp"), m.Messages.WithLabelValues("udp")
	m.tcpBytes, m.udpBytes = m.Bytes.WithLabelValues("tcp"), m.Bytes.WithLabelValues("udp")
	m.tcpLatency, m.udpLatency = m.Latency.WithLabelValues("tcp"), m.Latency.WithLabelValues("udp")
	m.errTooLong = m.Errors.WithLabelValues("line_too_long")
	m.errIdle = m.Errors.WithLabelValues("idle_timeout")
	m.errWrite = m.Errors.WithLabelValues("write")
	return m
}

// Handler answers messages. One Handler serves both protocols.
type Handler struct {
	// Log receives connection-level debug events; nil logs nothing.
	Log *zap.Logger
	// Metrics counts messages and errors; nil counts nothing.
	Metrics *Metrics
	// Now, when set, replaces the reception time of TCP lines (tests);
	// otherwise it is when the read that delivered the line returned.
	Now func() time.Time

	// budget bounds what each UDP source receives (set by UDPServer; nil:
	// no bound).
	budget *budget
}

// discard counts for a Handler without Metrics: registered nowhere.
var discard = NewMetrics(prometheus.NewRegistry())

func (h *Handler) metrics() *Metrics {
	if h.Metrics == nil {
		return discard
	}
	return h.Metrics
}

func (h *Handler) log() *zap.Logger {
	if h.Log == nil {
		return zap.NewNop()
	}
	return h.Log
}

func newGenerator() *proto.Generator {
	var seed [32]byte
	crand.Read(seed[:])
	return proto.NewGenerator(seed)
}

// ServeConn answers each line of a TCP connection, in order, flushing when
// the client's pending input is drained. Counters are added once per flush,
// not once per line: a pipelined burst costs one metrics update.
func (h *Handler) ServeConn(_ context.Context, c *netserve.Conn) {
	m := h.metrics()
	gen := newGenerator()
	buf := make([]byte, 0, proto.MaxLen+1)
	var (
		msgs, bytes int
		oldest      time.Time // reception of the first reply not yet flushed
	)
	flush := func() bool {
		if msgs == 0 {
			return true
		}
		err := c.Flush()
		m.tcpMsgs.Add(float64(msgs))
		m.tcpBytes.Add(float64(bytes))
		m.tcpLatency.Observe(time.Since(oldest).Seconds())
		msgs, bytes = 0, 0
		if err != nil {
			m.errWrite.Inc()
			return false
		}
		return true
	}
	defer flush()
	for {
		line, err := c.ReadLine()
		if err != nil {
			if flush() {
				h.connEnded(c, m, err)
			}
			return
		}
		at := c.ReadAt()
		if h.Now != nil {
			at = h.Now()
		}
		if msgs == 0 {
			oldest = at
		}
		buf = gen.Append(buf[:0], at, line)
		buf = append(buf, '\n')
		if _, err := c.Write(buf); err != nil {
			m.errWrite.Inc()
			return
		}
		msgs++
		bytes += len(line)
		if c.Buffered() == 0 && !flush() {
			return
		}
	}
}

func (h *Handler) connEnded(c *netserve.Conn, m *Metrics, err error) {
	switch {
	case errors.Is(err, netserve.ErrLineTooLong):
		m.errTooLong.Inc()
		c.Write(msgTooLong)
		c.CloseAbruptly()
		h.log().Debug("line too long", zap.Stringer("remote", c.RemoteAddr()))
	case errors.Is(err, netserve.ErrIdleTimeout):
		m.errIdle.Inc()
	case errors.Is(err, io.EOF), errors.Is(err, netserve.ErrServerClosed):
	default:
		h.log().Debug("connection ended", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
	}
}

// ServePacket answers one UDP datagram with one reply datagram. The read
// loops of a server use NewLoop's loops instead, each with its own
// generator; this one draws a fresh seed per datagram.
func (h *Handler) ServePacket(p *netserve.Packet) {
	(&udpLoop{h: h, m: h.metrics(), gen: newGenerator()}).ServePacket(p)
}

// NewLoop returns the handler of one UDP read loop: its own generator, so
// that the loops need no lock.
func (h *Handler) NewLoop(*net.UDPConn) netserve.PacketHandler {
	return &udpLoop{h: h, m: h.metrics(), gen: newGenerator()}
}

// udpLoop is the state of one UDP read loop.
type udpLoop struct {
	h   *Handler
	m   *Metrics
	gen *proto.Generator
}

func (l *udpLoop) ServePacket(p *netserve.Packet) {
	p.Out = l.gen.Append(p.Out, p.Received, p.Data)
	if l.h.budget != nil && !l.h.budget.allow(p.From.Addr(), p.Received, len(p.Data), len(p.Out)) {
		l.m.Withheld.Inc()
		return
	}
	if err := p.Reply(p.Out); err != nil {
		l.m.errWrite.Inc()
		return
	}
	l.m.udpMsgs.Inc()
	l.m.udpBytes.Add(float64(len(p.Data)))
	l.m.udpLatency.Observe(time.Since(p.Received).Seconds())
}

// TCPServer returns a netserve.Server for h configured from cfg.
func (h *Handler) TCPServer(cfg Config) *netserve.Server {
	return cfg.Limits.Apply(&netserve.Server{
		Handler:      h,
		IdleTimeout:  cfg.IdleTimeout,
		MaxLineBytes: cfg.MaxLineBytes,
		BusyMessage:  msgBusy,
		Log:          h.Log,
	})
}

// UDPServer returns a netserve.PacketServer for h configured from cfg, and
// sets h's amplification budget from cfg: call it before serving UDP.
func (h *Handler) UDPServer(cfg Config) *netserve.PacketServer {
	h.budget = newBudget(cfg.UDPCredit, cfg.UDPCreditRate)
	return &netserve.PacketServer{
		Handler: h,
		Readers: cfg.UDPReaders,
		Log:     h.Log,
	}
}
