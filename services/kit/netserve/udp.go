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
	// Loop is the handler's own per-read-loop state (a random generator, a
	// scratch buffer): it is kept across the calls of one loop, and no two
	// loops share it, so the handler needs no lock for it.
	Loop any

	conn *net.UDPConn
}

// Reply sends b to the packet's sender.
func (p *Packet) Reply(b []byte) error {
	_, err := p.conn.WriteToUDPAddrPort(b, p.From)
	return err
}

// Conn returns the server's socket, for handlers that send later or to
// other addresses than From (a stream). It must not be read.
func (p *Packet) Conn() *net.UDPConn { return p.conn }

// A PacketHandler serves datagrams. ServePacket must not block for long: the
// read loop waits for it. Work that outlives the call belongs to the handler,
// which must stop it when the context given to PacketServer ends.
type PacketHandler interface {
	ServePacket(p *Packet)
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

	mu         sync.Mutex
	conns      map[*net.UDPConn]struct{}
	wg         sync.WaitGroup
	inShutdown atomic.Bool
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
	if s.Log == nil {
		s.Log = zap.NewNop()
	}
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		uc.Close()
		return ErrServerClosed
	}
	if s.conns == nil {
		s.conns = map[*net.UDPConn]struct{}{}
	}
	s.conns[uc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer uc.Close()

	readers := max(s.Readers, 1)
	errs := make(chan error, readers)
	var loops sync.WaitGroup
	for range readers {
		loops.Go(func() { errs <- s.readLoop(uc) })
	}
	loops.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrServerClosed) {
			return err
		}
	}
	return ErrServerClosed
}

func (s *PacketServer) readLoop(uc *net.UDPConn) error {
	size := s.MaxPacketBytes
	if size <= 0 {
		size = MaxDatagram
	}
	// One byte more than allowed tells an oversized datagram from one that
	// fits exactly.
	buf := make([]byte, size+1)
	p := &Packet{conn: uc, Out: make([]byte, 0, 2048)}
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
		s.Handler.ServePacket(p)
	}
}

// Shutdown unblocks the read loops and waits for the datagram in hand to be
// served, or for ctx to end. Safe to call more than once.
func (s *PacketServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.inShutdown.Store(true)
	for uc := range s.conns {
		uc.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for uc := range s.conns {
			uc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
