package netserve

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// MaxDatagram is the largest UDP payload over IPv4.
const MaxDatagram = 65507

// Packet is one received datagram handed to a PacketHandler. It and its
// slices are valid only during the call: the read loop reuses them.
type Packet struct {
	// Data is the datagram's payload.
	Data []byte
	// From is the sender.
	From netip.AddrPort
	// Received is when the read returned.
	Received time.Time
	// Out is a scratch buffer of zero length for building replies without
	// allocating; Reply may be given Out[:n] after appending to it.
	Out []byte

	conn *net.UDPConn
	srv  *PacketServer
}

// Reply sends b to the packet's sender.
func (p *Packet) Reply(b []byte) error {
	_, err := p.conn.WriteToUDPAddrPort(b, p.From)
	return err
}

// Conn returns the server's socket, for handlers that send later or to
// other addresses than From (a stream). It must not be read.
func (p *Packet) Conn() *net.UDPConn { return p.conn }

// Go runs fn in a goroutine the server owns (PacketServer.Go), for work
// that outlives the call: a file sent over many datagrams.
func (p *Packet) Go(fn func(ctx context.Context)) bool { return p.srv.Go(fn) }

// A PacketHandler serves datagrams. ServePacket must not block for long: the
// read loop waits for it. Work that outlives the call goes to Packet.Go, so
// that the server owns it and Shutdown waits for it.
type PacketHandler interface {
	ServePacket(p *Packet)
}

// A LoopHandler is a PacketHandler whose read loops each keep state of their
// own across datagrams (a random generator, a reply buffer) without a lock:
// each read loop calls NewLoop once, with the socket it reads, and serves its
// datagrams with the handler returned, whose fields are that state.
type LoopHandler interface {
	PacketHandler
	NewLoop(conn *net.UDPConn) PacketHandler
}

// PacketHandlerFunc adapts a function to PacketHandler.
type PacketHandlerFunc func(p *Packet)

// ServePacket calls f(p).
func (f PacketHandlerFunc) ServePacket(p *Packet) { f(p) }

// PacketServer is a UDP server: one or more read loops on one socket.
type PacketServer struct {
	// Handler serves each datagram.
	Handler PacketHandler
	// Readers is how many goroutines read the socket at once; 0 means 1.
	Readers int
	// MaxPacketBytes is the read buffer; longer datagrams are truncated by
	// the kernel and dropped here (counted). 0 means MaxDatagram.
	MaxPacketBytes int
	// Log receives lifecycle events; nil means none.
	Log *zap.Logger
	// Metrics, when set, counts datagrams dropped as oversized.
	Metrics *Metrics
	// WriteBufferBytes, when set, is asked of the socket's send buffer (the
	// kernel may cap it), for servers that send bursts.
	WriteBufferBytes int

	mu         sync.Mutex
	conns      map[*net.UDPConn]struct{}
	wg         sync.WaitGroup // ServePacket calls
	owned      sync.WaitGroup // goroutines started by Go and GoWorker
	inShutdown atomic.Bool
	failed     error // from a worker; guarded by mu
	initOnce   sync.Once
	// stopWorkers ends the context of GoWorker goroutines once the read
	// loops have stopped; force ends every owned goroutine's context when
	// Shutdown gives up.
	workerCtx, forceCtx context.Context
	stopWorkers, force  context.CancelCauseFunc
}

func (s *PacketServer) init() {
	s.initOnce.Do(func() {
		s.conns = map[*net.UDPConn]struct{}{}
		s.forceCtx, s.force = context.WithCancelCause(context.Background())
		s.workerCtx, s.stopWorkers = context.WithCancelCause(s.forceCtx)
		if s.Log == nil {
			s.Log = zap.NewNop()
		}
	})
}

// Go runs fn in a goroutine the server owns, for work a handler starts that
// finishes by itself (a file sent over many datagrams). Shutdown waits for it
// after the read loops stop, and the socket stays open until it returns; fn's
// context ends, with cause ErrServerClosed, only when Shutdown gives up
// waiting. Go reports false, and does not run fn, once Shutdown has begun.
func (s *PacketServer) Go(fn func(ctx context.Context)) bool {
	return s.goOwned(fn, func() context.Context { return s.forceCtx })
}

// GoWorker runs fn in a goroutine the server owns, for work that serves
// until the server stops (a writer answering requests the read loops
// queued): fn's context ends, with cause ErrServerClosed, once Shutdown has
// stopped the read loops, so fn answers what is queued and returns while the
// socket is still open. An error fn returns before then stops the server:
// ServePacket returns it. GoWorker reports false, and does not run fn, once
// Shutdown has begun.
func (s *PacketServer) GoWorker(fn func(ctx context.Context) error) bool {
	return s.goOwned(func(ctx context.Context) {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			s.fail(err)
		}
	}, func() context.Context { return s.workerCtx })
}

// fail stops the read loops with err, which ServePacket returns.
func (s *PacketServer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
	}
	for uc := range s.conns {
		uc.SetReadDeadline(time.Unix(1, 0))
	}
}

func (s *PacketServer) goOwned(fn func(ctx context.Context), ctx func() context.Context) bool {
	s.init()
	// Add under mu, after the inShutdown check: Shutdown sets inShutdown
	// under mu before anything waits, so no Add races a Wait at zero.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	c := ctx()
	s.owned.Go(func() { fn(c) })
	return true
}

// ServePacket reads datagrams from pc until Shutdown and hands each to
// Handler. It returns ErrServerClosed after Shutdown. pc must be a
// *net.UDPConn (so reads and replies allocate nothing); ServePacket closes it.
func (s *PacketServer) ServePacket(pc net.PacketConn) error {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return errors.New("netserve: ServePacket needs a *net.UDPConn")
	}
	s.init()
	if s.WriteBufferBytes > 0 {
		uc.SetWriteBuffer(s.WriteBufferBytes) // best effort
	}
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		uc.Close()
		return ErrServerClosed
	}
	s.conns[uc] = struct{}{}
	if s.failed != nil {
		uc.SetReadDeadline(time.Unix(1, 0))
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	readers := max(s.Readers, 1)
	errs := make(chan error, readers)
	var loops sync.WaitGroup
	for range readers {
		loops.Go(func() { errs <- s.readLoop(uc) })
	}
	loops.Wait()
	close(errs)
	result := error(ErrServerClosed)
	for err := range errs {
		if !errors.Is(err, ErrServerClosed) {
			result = err
			break
		}
	}
	s.mu.Lock()
	if s.failed != nil {
		result = s.failed
	}
	s.mu.Unlock()
	// No more datagrams: workers answer what is queued. Owned goroutines
	// write to the socket, so it closes only after them; a socket that
	// failed leaves them nothing to do.
	if result != ErrServerClosed {
		s.force(result)
	}
	s.stopWorkers(ErrServerClosed)
	s.owned.Wait()
	uc.Close()
	return result
}

func (s *PacketServer) readLoop(uc *net.UDPConn) error {
	size := s.MaxPacketBytes
	if size <= 0 {
		size = MaxDatagram
	}
	// One byte more than allowed tells an oversized datagram from one that
	// fits exactly.
	buf := make([]byte, size+1)
	p := &Packet{conn: uc, srv: s, Out: make([]byte, 0, 2048)}
	h := s.Handler
	if lh, ok := h.(LoopHandler); ok {
		h = lh.NewLoop(uc)
	}
	for {
		n, from, err := uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return err
			}
			// ICMP errors from earlier sends (ECONNREFUSED) surface here on
			// some systems; they say nothing about this socket.
			s.Log.Debug("udp read", zap.Error(err))
			continue
		}
		if n > size {
			s.Metrics.oversized()
			continue
		}
		p.Data = buf[:n]
		p.From = from
		p.Received = time.Now()
		p.Out = p.Out[:0]
		h.ServePacket(p)
	}
}

// Shutdown stops the read loops, lets the datagram in hand be served, then
// waits for the goroutines the server owns (Go, GoWorker) and closes the
// socket. Shortly before ctx's deadline (CutTimer) it ends their context
// (cause ErrServerClosed), so that each can tell its client and return in
// time, and returns nil when they do. When ctx ends first anyway it waits at
// most forceWait more for them, closes the socket and returns ctx's error.
// Safe to call more than once.
func (s *PacketServer) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.inShutdown.Store(true)
	for uc := range s.conns {
		uc.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	// Without a socket there are no read loops to wait for: workers stop now.
	if s.serving() == 0 {
		s.stopWorkers(ErrServerClosed)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.owned.Wait()
		close(done)
	}()
	cut, _, stop := CutTimer(ctx)
	defer stop()
	select {
	case <-done:
		return nil
	case <-cut:
		// Shortly before the deadline: the owned goroutines are told to
		// stop (each tells its client why) while there is still time for
		// them to return, so that the shutdown ends cleanly.
		s.force(ErrServerClosed)
		select {
		case <-done:
			return nil
		case <-ctx.Done():
		}
	case <-ctx.Done():
		s.force(ErrServerClosed)
	}
	waitAtMost(done, forceWait)
	s.mu.Lock()
	for uc := range s.conns {
		uc.Close()
	}
	s.mu.Unlock()
	return ctx.Err()
}

func (s *PacketServer) serving() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// cutGrace bounds how long before a shutdown's deadline the work still
// running is cut off (CutTimer).
const cutGrace = time.Second

// CutTimer returns when, before ctx's deadline, a shutdown should cut off the
// work still running so that it can stop cleanly in time: a tenth of the
// time left before the deadline, at most a second. The channel is nil (never
// ready) when ctx has no deadline; stop releases the timer.
func CutTimer(ctx context.Context) (cut <-chan time.Time, grace time.Duration, stop func()) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil, 0, func() {}
	}
	left := time.Until(deadline)
	grace = min(cutGrace, left/10)
	t := time.NewTimer(left - grace)
	return t.C, grace, func() { t.Stop() }
}

// forceWait bounds how long a Shutdown whose context has ended still waits
// for the handlers and goroutines it told to stop (their context cancelled,
// their connections closed): they return in microseconds unless stuck, and a
// stuck one must not hold the process past its shutdown timeout.
const forceWait = 100 * time.Millisecond

// waitAtMost waits for done to close or for d to pass.
func waitAtMost(done <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
