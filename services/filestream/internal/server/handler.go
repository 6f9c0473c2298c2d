package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/filestream/internal/cookie"
	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/service"
)

// blockLen is the length of the shared content block: a multiple of the
// pattern, larger than any DATA content plus a pattern's length.
const blockLen = 256 << 10

// block holds content from offset 0. It is shared by every transfer and
// never written after it is built: a file of any size is sent from it, so
// a transfer holds no content of its own.
var block = func() []byte {
	b := make([]byte, blockLen)
	proto.FillContent(b, 0)
	return b
}()

// contentAt returns n ≤ blockLen-PatternLen bytes of content from offset off,
// aliasing the shared block (read only).
func contentAt(off int64, n int) []byte {
	i := int(off % proto.PatternLen)
	return block[i : i+n]
}

// Causes of a cancelled UDP transfer.
var (
	errQuit     = errors.New("client quit")
	errShutdown = errors.New("server shutting down")
)

// Handler serves filestream over TCP (ServeConn) and UDP (ServePacket). It
// owns the goroutines of UDP transfers; Shutdown stops and waits for them.
type Handler struct {
	cfg     Config
	log     *zap.Logger
	cookies *cookie.Minter
	tcp     *protoMetrics
	udp     *protoMetrics
	m       *Metrics
	bodies  budget // TCP message bodies beyond each connection's first buffer

	ctx    context.Context // parent of every UDP transfer
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	closing bool
	active  map[netip.AddrPort]map[*transfer]struct{}
	n       int // transfers in active
	// tcpActive holds the TCP transfers, for Shutdown to cut off.
	tcpActive map[*transfer]struct{}
	quota     netserve.SourceQuota
	wg        sync.WaitGroup

	// Hooks for tests: started is called as each UDP transfer starts,
	// connDone as each TCP connection's handler returns.
	started  func()
	connDone func()
}

// A transfer is a file or stream being sent: over UDP in a goroutine the
// Handler starts, over TCP in its connection's handler goroutine.
type transfer struct {
	cancel context.CancelCauseFunc
	conn   *netserve.Conn // TCP only
}

// New returns a Handler for cfg, which must be valid. m may be nil.
func New(cfg Config, log *zap.Logger, m *Metrics) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	if m == nil {
		m = NewMetrics(prometheus.NewRegistry())
	}
	h := &Handler{
		cfg:       cfg,
		log:       log,
		cookies:   cookie.New(cfg.CookieTTL),
		tcp:       m.forProto("tcp"),
		udp:       m.forProto("udp"),
		m:         m,
		active:    map[netip.AddrPort]map[*transfer]struct{}{},
		tcpActive: map[*transfer]struct{}{},
	}
	h.bodies.max = cfg.BodyBudget
	h.quota = netserve.SourceQuota{PerSource: cfg.UDPTransfersPerSource, Total: cfg.UDPTransfers}
	h.ctx, h.cancel = context.WithCancelCause(context.Background())
	return h
}

// checkFile returns the error for a file request over the limit.
func (h *Handler) checkFile(size uint64) (proto.Code, string) {
	if size > uint64(h.cfg.MaxFile) {
		return proto.CodeTooLarge, fmt.Sprintf("file too large: max %d", h.cfg.MaxFile)
	}
	return 0, ""
}

// checkStream returns the error for stream parameters out of range, and the
// padding of each packet.
func (h *Handler) checkStream(r proto.StreamRequest) (code proto.Code, text string, pad int) {
	size := int(r.Size)
	if size == 0 {
		size = proto.StreamPacketMinLen
	}
	switch {
	case r.Count == 0 || r.Count > uint32(h.cfg.StreamLimit):
		return proto.CodeStream, fmt.Sprintf("count must be 1 to %d", h.cfg.StreamLimit), 0
	case r.Interval < h.cfg.MinInterval || r.Interval > proto.MaxInterval:
		return proto.CodeStream, fmt.Sprintf("interval must be %v to %v", h.cfg.MinInterval, proto.MaxInterval), 0
	case size < proto.StreamPacketMinLen || size > h.cfg.PacketSize:
		return proto.CodeStream, fmt.Sprintf("size must be %d to %d", proto.StreamPacketMinLen, h.cfg.PacketSize), 0
	}
	return 0, "", size - proto.StreamPacketMinLen
}

// startTransfer runs fn in a goroutine the Handler owns, unless the server
// is shutting down or UDPTransfers are already running.
func (h *Handler) startTransfer(to netip.AddrPort, fn func(ctx context.Context)) (proto.Code, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return proto.CodeShutdown, "server shutting down"
	}
	// Per source as well as in total: one validated address must not take
	// every slot.
	switch h.quota.Acquire(to.Addr()) {
	case netserve.QuotaSource:
		return proto.CodeBusy, fmt.Sprintf("server busy: %d transfers to your address in flight", h.cfg.UDPTransfersPerSource)
	case netserve.QuotaTotal:
		return proto.CodeBusy, fmt.Sprintf("server busy: %d transfers in flight", h.n)
	}
	ctx, cancel := context.WithCancelCause(h.ctx)
	t := &transfer{cancel: cancel}
	set := h.active[to]
	if set == nil {
		set = map[*transfer]struct{}{}
		h.active[to] = set
	}
	set[t] = struct{}{}
	h.n++
	h.udp.active.Inc()
	if h.started != nil {
		h.started()
	}
	h.wg.Go(func() {
		defer h.endTransfer(to, t)
		fn(ctx)
	})
	return 0, ""
}

// inFlight reports how many UDP transfers run.
func (h *Handler) inFlight() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func (h *Handler) endTransfer(to netip.AddrPort, t *transfer) {
	t.cancel(nil)
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.active[to], t)
	if len(h.active[to]) == 0 {
		delete(h.active, to)
	}
	h.n--
	h.quota.Release(to.Addr())
	h.udp.active.Dec()
}

// cancelTransfers stops every transfer to addr.
func (h *Handler) cancelTransfers(addr netip.AddrPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for t := range h.active[addr] {
		t.cancel(errQuit)
	}
}

// Transfers reports how many UDP transfers are running.
func (h *Handler) Transfers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// beginTCP registers a TCP transfer on c, unless the server is shutting
// down; its context ends when the connection's does or when Shutdown cuts
// transfers off. end must be called when it is over.
func (h *Handler) beginTCP(connCtx context.Context, c *netserve.Conn) (ctx context.Context, end func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancelCause(h.ctx)
	stop := context.AfterFunc(connCtx, func() { cancel(context.Cause(connCtx)) })
	t := &transfer{cancel: cancel, conn: c}
	h.tcpActive[t] = struct{}{}
	h.wg.Add(1)
	return ctx, func() {
		stop()
		cancel(nil)
		h.mu.Lock()
		delete(h.tcpActive, t)
		h.mu.Unlock()
		h.wg.Done()
	}, true
}

// cutGrace is how long before a shutdown's deadline the transfers still
// running are cut off: time for each to send its ERROR and return, so that
// the shutdown ends within its time and cleanly. A tenth of the time left,
// at most cutGrace.
const cutGrace = time.Second

// cutOff cancels every transfer with errShutdown. A TCP transfer's writes
// are cut at by, so a client that does not read cannot hold it.
func (h *Handler) cutOff(by time.Time) {
	h.mu.Lock()
	for t := range h.tcpActive {
		t.conn.CutWrites(by)
	}
	h.mu.Unlock()
	h.cancel(errShutdown)
}

// Shutdown refuses new transfers, over TCP and UDP, and waits for the
// running ones to finish. Shortly before ctx's deadline (a tenth of the
// time left, at most a second) it cuts off those still running: each
// client gets ERROR shutting down (a TCP file is cut instead), and
// Shutdown returns nil once they have returned, within ctx. Only when ctx
// ends before that does it report ctx's error. Safe to call more than once.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	var cut <-chan time.Time
	var grace time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		grace = min(cutGrace, time.Until(deadline)/10)
		t := time.NewTimer(time.Until(deadline) - grace)
		defer t.Stop()
		cut = t.C
	}
	select {
	case <-done:
		h.cancel(errShutdown)
		return nil
	case <-cut:
		h.cutOff(time.Now().Add(grace / 2))
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			<-done
			return ctx.Err()
		}
	case <-ctx.Done():
		h.cutOff(time.Now())
		<-done
		return ctx.Err()
	}
}

// TCPUnit is service.TCPUnit with a Shutdown that also cuts off the TCP
// transfers in time (see Shutdown): the connections' handlers return, and
// the server's shutdown completes, before ctx ends.
func (h *Handler) TCPUnit(srv *netserve.Server, ln net.Listener) service.Unit {
	u := service.TCPUnit(srv, ln)
	u.Shutdown = h.shutdownWith(srv.Shutdown)
	return u
}

// shutdownWith returns a shutdown that runs h's and srvShutdown together:
// the server waits for its handlers, which wait for h to cut their
// transfers off.
func (h *Handler) shutdownWith(srvShutdown func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		hs := make(chan error, 1)
		go func() { hs <- h.Shutdown(ctx) }()
		err := srvShutdown(ctx)
		return errors.Join(<-hs, err)
	}
}

// busyMessage is what a TCP connection over MaxConns receives.
var busyMessage = proto.AppendError(nil, 0, proto.CodeBusy, "server busy: too many connections")

// TCPServer returns a netserve.Server for h configured from its Config.
func (h *Handler) TCPServer(nm *netserve.Metrics) *netserve.Server {
	return &netserve.Server{
		Handler:      h,
		IdleTimeout:  h.cfg.IdleTimeout,
		WriteTimeout: h.cfg.WriteTimeout,
		MaxConns:     h.cfg.MaxConns,
		// Per source, so that one client cannot lock out the rest.
		MaxConnsPerSource: h.cfg.MaxConnsPerSource,
		BusyMessage:       busyMessage,
		Log:               h.log,
		Metrics:           nm,
	}
}

// UDPServer returns a netserve.PacketServer for h configured from its Config.
func (h *Handler) UDPServer(nm *netserve.Metrics) *netserve.PacketServer {
	return &netserve.PacketServer{
		Handler: h,
		Readers: h.cfg.UDPReaders,
		Log:     h.log,
		Metrics: nm,
	}
}

// UDPUnit is service.UDPUnit with a Shutdown that first stops h's
// transfers (they write to the socket the packet server closes) and then
// the read loops.
func (h *Handler) UDPUnit(srv *netserve.PacketServer, pc net.PacketConn) service.Unit {
	u := service.UDPUnit(srv, pc)
	u.Shutdown = func(ctx context.Context) error {
		return errors.Join(h.Shutdown(ctx), srv.Shutdown(ctx))
	}
	return u
}
