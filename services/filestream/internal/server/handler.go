package server

import (
	"context"
	"errors"
	"fmt"
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

var (
	// errQuit is the cause of a UDP transfer its client stopped with QUIT.
	errQuit = errors.New("client quit")
	// errShutdown is the cause of a TCP transfer cut off by Shutdown.
	errShutdown = errors.New("server shutting down")
)

// Handler serves filestream over TCP (ServeConn) and UDP (ServePacket). The
// goroutines of UDP transfers belong to the packet server that served their
// request (netserve.Packet.Go), whose Shutdown waits for them.
type Handler struct {
	// Config holds the limits; it must be valid.
	Config Config
	// Log receives connection-level debug events; nil logs nothing.
	Log *zap.Logger
	// Metrics counts requests and transfers; nil counts nothing.
	Metrics *Metrics

	initOnce sync.Once
	log      *zap.Logger
	cookies  *cookie.Minter
	tcp      *protoMetrics
	udp      *protoMetrics
	m        *Metrics
	bodies   budget // TCP message bodies beyond each connection's first buffer

	mu     sync.Mutex
	active map[netip.AddrPort]map[*transfer]struct{}
	n      int // transfers in active
	quota  netserve.SourceQuota
	// closing refuses new TCP transfers; tcpActive holds the running ones,
	// for Shutdown to cut off, and tcpWG waits for them.
	closing   bool
	tcpActive map[*tcpTransfer]struct{}
	tcpWG     sync.WaitGroup

	// Hooks for tests: started is called as each UDP transfer starts,
	// connDone as each TCP connection's handler returns.
	started  func()
	connDone func()
}

// transfer is one running UDP transfer; cancel is set once its goroutine
// runs, quit when QUIT came before that.
type transfer struct {
	cancel context.CancelCauseFunc
	quit   bool
}

// tcpTransfer is one running TCP file or stream, sent by its connection's
// handler goroutine.
type tcpTransfer struct {
	cancel context.CancelCauseFunc
	conn   *netserve.Conn
}

// init builds what the fields imply, on first use.
func (h *Handler) init() {
	h.initOnce.Do(func() {
		h.log = h.Log
		if h.log == nil {
			h.log = zap.NewNop()
		}
		h.m = h.Metrics
		if h.m == nil {
			h.m = NewMetrics(prometheus.NewRegistry())
		}
		h.cookies = cookie.New(h.Config.CookieTTL)
		h.tcp, h.udp = h.m.forProto("tcp"), h.m.forProto("udp")
		h.active = map[netip.AddrPort]map[*transfer]struct{}{}
		h.tcpActive = map[*tcpTransfer]struct{}{}
		h.bodies.max = h.Config.BodyBudget
		h.quota = netserve.SourceQuota{PerSource: h.Config.UDPTransfersPerSource, Total: h.Config.UDPTransfers}
	})
}

// checkFile returns the error for a file request over the limit.
func (h *Handler) checkFile(size uint64) (proto.Code, string) {
	if size > uint64(h.Config.MaxFile) {
		return proto.CodeTooLarge, fmt.Sprintf("file too large: max %d", h.Config.MaxFile)
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
	case r.Count == 0 || r.Count > uint32(h.Config.StreamLimit):
		return proto.CodeStream, fmt.Sprintf("count must be 1 to %d", h.Config.StreamLimit), 0
	case r.Interval < h.Config.MinInterval || r.Interval > proto.MaxInterval:
		return proto.CodeStream, fmt.Sprintf("interval must be %v to %v", h.Config.MinInterval, proto.MaxInterval), 0
	case size < proto.StreamPacketMinLen || size > h.Config.PacketSize:
		return proto.CodeStream, fmt.Sprintf("size must be %d to %d", proto.StreamPacketMinLen, h.Config.PacketSize), 0
	}
	return 0, "", size - proto.StreamPacketMinLen
}

// owner runs the goroutines of UDP transfers: the packet server
// (netserve.Packet.Go).
type owner interface {
	Go(fn func(ctx context.Context)) bool
}

// startTransfer runs fn in a goroutine of o, unless the server is shutting
// down or UDPTransfers are already running.
func (h *Handler) startTransfer(o owner, to netip.AddrPort, fn func(ctx context.Context)) (proto.Code, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Per source as well as in total: one validated address must not take
	// every slot.
	switch h.quota.Acquire(to.Addr()) {
	case netserve.QuotaSource:
		return proto.CodeBusy, fmt.Sprintf("server busy: %d transfers to your address in flight", h.Config.UDPTransfersPerSource)
	case netserve.QuotaTotal:
		return proto.CodeBusy, fmt.Sprintf("server busy: %d transfers in flight", h.n)
	}
	t := &transfer{}
	// The goroutine waits for mu, held until t is registered.
	started := o.Go(func(ctx context.Context) {
		ctx, cancel := context.WithCancelCause(ctx)
		h.mu.Lock()
		t.cancel = cancel
		if t.quit {
			cancel(errQuit)
		}
		h.mu.Unlock()
		defer h.endTransfer(to, t)
		fn(ctx)
	})
	if !started {
		h.quota.Release(to.Addr())
		return proto.CodeShutdown, "server shutting down"
	}
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
	h.quota.Release(to.Addr())
	h.n--
	h.udp.active.Dec()
}

// cancelTransfers stops every transfer to addr.
func (h *Handler) cancelTransfers(addr netip.AddrPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for t := range h.active[addr] {
		t.quit = true
		if t.cancel != nil {
			t.cancel(errQuit)
		}
	}
}

// Transfers reports how many UDP transfers are running.
func (h *Handler) Transfers() int {
	h.init()
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
	ctx, cancel := context.WithCancelCause(connCtx)
	t := &tcpTransfer{cancel: cancel, conn: c}
	h.tcpActive[t] = struct{}{}
	h.tcpWG.Add(1)
	return ctx, func() {
		cancel(nil)
		h.mu.Lock()
		delete(h.tcpActive, t)
		h.mu.Unlock()
		h.tcpWG.Done()
	}, true
}

// cutOff cancels every TCP transfer with errShutdown; their writes are cut
// at by, so a client that does not read cannot hold one.
func (h *Handler) cutOff(by time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for t := range h.tcpActive {
		t.conn.CutWrites(by)
		t.cancel(errShutdown)
	}
}

// ShutdownTCP refuses new TCP transfers and waits for the running ones to
// finish. Shortly before ctx's deadline (netserve.CutTimer) it cuts off
// those still running: each client gets ERROR shutting
// down (a file is cut instead), and ShutdownTCP returns nil once they have
// returned, within ctx. Only when ctx ends before that does it report ctx's
// error. It runs beside the TCP server's Shutdown (TransfersUnit), whose
// connection handlers wait for their transfers. UDP transfers belong to the
// packet server, whose Shutdown ends them. Safe to call more than once.
func (h *Handler) ShutdownTCP(ctx context.Context) error {
	h.init()
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.tcpWG.Wait()
		close(done)
	}()
	cut, grace, stop := netserve.CutTimer(ctx)
	defer stop()
	select {
	case <-done:
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

// TransfersUnit is a unit whose Shutdown is ShutdownTCP: added beside the
// servers (the same shutdown phase, so both run at once), it cuts the TCP
// transfers off in time for the connections' handlers, and so the TCP
// server's shutdown, to end within the timeout.
func (h *Handler) TransfersUnit() service.Unit {
	stop := make(chan struct{})
	var once sync.Once
	return service.Unit{
		Name:  "transfers",
		Serve: func() error { <-stop; return errTransfersStopped },
		Shutdown: func(ctx context.Context) error {
			once.Do(func() { close(stop) })
			return h.ShutdownTCP(ctx)
		},
		Closed: func(err error) bool { return errors.Is(err, errTransfersStopped) },
		Close:  func() error { once.Do(func() { close(stop) }); return nil },
	}
}

var errTransfersStopped = errors.New("transfers stopped")

// busyMessage is what a TCP connection over MaxConns receives.
var busyMessage = proto.AppendError(nil, 0, proto.CodeBusy, "server busy: too many connections")

// TCPServer returns a netserve.Server for h configured from its Config.
func (h *Handler) TCPServer() *netserve.Server {
	return h.Config.Limits.Apply(&netserve.Server{
		Handler:      h,
		IdleTimeout:  h.Config.IdleTimeout,
		WriteTimeout: h.Config.WriteTimeout,
		BusyMessage:  busyMessage,
		Log:          h.Log,
	})
}

// sendBufferBytes is the UDP socket's send buffer: bursts of files and
// streams wait there rather than block the socket's other users; best
// effort (net.core.wmem_max caps it).
const sendBufferBytes = 4 << 20

// UDPServer returns a netserve.PacketServer for h configured from its
// Config.
func (h *Handler) UDPServer() *netserve.PacketServer {
	return &netserve.PacketServer{
		Handler:          h,
		Readers:          h.Config.UDPReaders,
		Log:              h.Log,
		WriteBufferBytes: sendBufferBytes,
	}
}
