// Package netserve runs the TCP accept loop and the UDP read loop that every
// socklab server shares, with the lifecycle of net/http's Server: exported
// fields, Serve separate from listening, limits on everything a client
// controls, and a Shutdown that stops accepting, unblocks reads, lets
// in-flight work finish and gives up when its context ends.
package netserve

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrServerClosed is returned by Serve after Shutdown, and by Conn reads once
// the server is shutting down and the client's buffered input is used up.
var ErrServerClosed = errors.New("netserve: server closed")

// ErrLineTooLong is returned by Conn.ReadLine for a line longer than the
// server's MaxLineBytes. The connection cannot be resynchronised after it.
var ErrLineTooLong = errors.New("line too long")

// ErrIdleTimeout is returned by Conn.ReadLine when no complete line arrived
// within the server's IdleTimeout.
var ErrIdleTimeout = errors.New("idle timeout")

// ErrWriteTimeout is returned by Conn writes when the client did not take
// the bytes within the server's WriteTimeout.
var ErrWriteTimeout = errors.New("write timeout")

// A Handler serves one TCP connection. ServeConn returns when the
// conversation is over; the server then closes the connection. ctx ends when
// a Shutdown gives up waiting.
type Handler interface {
	ServeConn(ctx context.Context, c *Conn)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c *Conn)

// ServeConn calls f(ctx, c).
func (f HandlerFunc) ServeConn(ctx context.Context, c *Conn) { f(ctx, c) }

// Defaults for the zero values of Server's limits.
const (
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultWriteTimeout = 30 * time.Second
	DefaultMaxLineBytes = 64 << 10
	DefaultBufferBytes  = 16 << 10
	// DefaultMaxConnsPerSource is a quarter of the lab's usual MaxConns of
	// 1000: one address (or IPv6 /64) cannot take every slot, and a load
	// generator's honest hundreds of connections still fit.
	DefaultMaxConnsPerSource = 256
)

// Server is a TCP server. Set its fields before Serve; do not change them
// after.
type Server struct {
	// Handler serves each accepted connection in its own goroutine.
	Handler Handler
	// IdleTimeout bounds the wait for each whole message: a line
	// (ReadLine), or what is read with Read between two StartMessage calls.
	// It runs from when the server starts waiting for the message, and
	// bytes arriving do not extend it, so a client trickling a byte at a
	// time is closed like an idle one. 0 means DefaultIdleTimeout, negative
	// means none.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to the client, so one that never reads
	// cannot hold a goroutine; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxLineBytes bounds ReadLine; 0 means DefaultMaxLineBytes.
	MaxLineBytes int
	// MaxConns bounds the connections served at once; 0 means no limit.
	MaxConns int
	// MaxConnsPerSource bounds the connections served at once from one
	// source address (an IPv4 address or an IPv6 /64), so that one client
	// cannot lock out the others; 0 means DefaultMaxConnsPerSource,
	// negative means no limit.
	MaxConnsPerSource int
	// BusyMessage is written to a connection refused by MaxConns or
	// MaxConnsPerSource before it is closed.
	BusyMessage []byte
	// Log receives lifecycle events and accept errors; nil means none.
	Log *zap.Logger
	// Metrics, when set, counts connections.
	Metrics *Metrics

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*Conn]struct{}
	active     atomic.Int64
	peak       atomic.Int64 // most connections served since memory was last given back
	sources    SourceQuota
	wg         sync.WaitGroup
	inShutdown atomic.Bool
	baseCtx    context.Context
	cancel     context.CancelFunc
	initOnce   sync.Once
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*Conn]struct{}{}
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
		s.sources.PerSource = s.MaxConnsPerSource
		if s.sources.PerSource == 0 {
			s.sources.PerSource = DefaultMaxConnsPerSource
		}
		if s.Log == nil {
			s.Log = zap.NewNop()
		}
	})
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout == 0 {
		return DefaultIdleTimeout
	}
	return s.IdleTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout == 0 {
		return DefaultWriteTimeout
	}
	return s.WriteTimeout
}

func (s *Server) maxLine() int {
	if s.MaxLineBytes <= 0 {
		return DefaultMaxLineBytes
	}
	return s.MaxLineBytes
}

// Serve accepts connections on ln until Shutdown, serving each with Handler.
// It always returns a non-nil error: ErrServerClosed after Shutdown. Serve
// closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
				if !s.sleep(backoff) {
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		backoff = 0
		s.serveAccepted(nc)
	}
}

// sleep waits d or until shutdown; it reports whether the server still runs.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.baseCtx.Done():
		return false
	}
}

func isTemporary(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	var ne interface{ Temporary() bool }
	// Accept errors such as EMFILE and ECONNABORTED still report Temporary;
	// there is no other portable signal for them.
	return errors.As(err, &ne) && ne.Temporary()
}

// ServeConn serves one already-established connection in the calling
// goroutine, with the same limits as a connection from Serve. Tests use it
// with net.Pipe.
func (s *Server) ServeConn(nc net.Conn) {
	s.init()
	if !s.track() {
		nc.Close()
		return
	}
	if !s.admit(nc) {
		defer s.wg.Done()
		s.refuse(nc)
		return
	}
	s.serve(nc)
}

// admit takes a slot for nc within MaxConnsPerSource and MaxConns; the
// slot is given back when serve returns.
func (s *Server) admit(nc net.Conn) bool {
	src, ok := sourceOfConn(nc)
	if ok && s.sources.Acquire(src) != QuotaOK {
		return false
	}
	n := s.active.Add(1)
	if s.MaxConns > 0 && n > int64(s.MaxConns) {
		s.active.Add(-1)
		if ok {
			s.sources.Release(src)
		}
		return false
	}
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return true
}

// unadmit gives back the slot admit took.
func (s *Server) unadmit(nc net.Conn) {
	n := s.active.Add(-1)
	if src, ok := sourceOfConn(nc); ok {
		s.sources.Release(src)
	}
	s.giveBack(n)
}

// giveBackMin is the least fall in connections (each holds at least its
// 32 KiB of buffers while it runs, 2 MiB for 64) after which their memory
// is handed back to the system at once. With the quarter rule a burst of
// 1,000 is given back in steps (at 250, then 62), a forced collection each.
const giveBackMin = 64

// freeOSMemory is debug.FreeOSMemory; tests count its calls.
var freeOSMemory = debug.FreeOSMemory

// giveBack returns the memory of a burst of connections to the system once
// three quarters of them have closed. Once they are gone nothing may
// allocate, and then the runtime neither collects nor returns their heap
// for minutes (issue 16: autoreply and filestream held 89 and 106 MB after
// 1,000 connections closed). One forced collection per burst, on the
// goroutine of the connection that closed, is the price.
func (s *Server) giveBack(active int64) {
	p := s.peak.Load()
	if p-active >= giveBackMin && active <= p/4 && s.peak.CompareAndSwap(p, active) {
		freeOSMemory()
	}
}

// track counts a goroutine about to serve a connection, unless Shutdown has
// begun: Shutdown sets inShutdown under mu before it waits, so every Add
// happens before its Wait (an Add racing a Wait at zero is a misuse).
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) serveAccepted(nc net.Conn) {
	if !s.track() {
		nc.Close()
		return
	}
	if !s.admit(nc) {
		// Refusing writes to the client; do it off the accept loop so a slow
		// client cannot stall accepting.
		go func() {
			defer s.wg.Done()
			s.refuse(nc)
		}()
		return
	}
	go s.serve(nc)
}

func (s *Server) refuse(nc net.Conn) {
	s.Metrics.refused()
	if len(s.BusyMessage) > 0 {
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write(s.BusyMessage)
	}
	closeGracefully(nc)
}

// closeGracefully half-closes before closing so that unread client bytes do
// not make the kernel send RST, which could discard a reply still in flight.
// When the client already holds the whole reply and sent nothing unread
// (settled), a plain close does the same at a fraction of the cost.
func closeGracefully(nc net.Conn) {
	if settled(nc) {
		nc.Close()
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(tc, 64<<10))
	}
	nc.Close()
}

// serve runs in a goroutine counted by track.
func (s *Server) serve(nc net.Conn) {
	defer s.wg.Done()
	defer s.unadmit(nc)
	c := newConn(s, nc)
	s.mu.Lock()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		nc.Close()
		c.release()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.Metrics.opened()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.Metrics.closed()
		c.Flush()
		if c.hardClose {
			nc.Close()
		} else {
			closeGracefully(nc)
		}
		c.release()
	}()
	s.Handler.ServeConn(s.baseCtx, c)
}

// ActiveConns reports how many connections are being served.
func (s *Server) ActiveConns() int { return int(s.active.Load()) }

// Shutdown stops accepting, makes every blocked read return ErrServerClosed
// once the client's already-received input is used up, and waits for the
// handlers to return. When ctx ends first it closes every connection, cancels
// the handlers' context, waits at most forceWait more for them to return and
// returns ctx's error. Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.inShutdown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	past := time.Unix(1, 0)
	for c := range s.conns {
		c.nc.SetReadDeadline(past)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		waitAtMost(done, forceWait)
		return ctx.Err()
	}
}

// Conn is one client connection: bounded line reads with a deadline per
// line, and buffered writes with a deadline per flush.
type Conn struct {
	srv       *Server
	nc        net.Conn
	r         *bufio.Reader
	w         *bufio.Writer
	deadline  time.Time // for the line being read; applied lazily
	applied   time.Time
	hardClose bool
	started   bool         // a message deadline was set for Read
	writeCut  atomic.Int64 // CutWrites' time in Unix ns; 0: none
	// lines read since the clock was last read for the idle deadline
	sinceClock int
	readAt     time.Time
}

// ReadAt reports when the network read that delivered the end of the last
// line (or the last bytes Read returned) completed: the reception time of
// that data, read from the clock once per read rather than once per line.
func (c *Conn) ReadAt() time.Time { return c.readAt }

// Buffers are pooled: a server of one-request connections would otherwise
// allocate 32 KiB per connection.
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, DefaultBufferBytes) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, DefaultBufferBytes) }}
)

func newConn(s *Server, nc net.Conn) *Conn {
	c := &Conn{srv: s, nc: nc}
	c.r = readerPool.Get().(*bufio.Reader)
	c.r.Reset(connReader{c})
	c.w = writerPool.Get().(*bufio.Writer)
	c.w.Reset(connWriter{c})
	return c
}

// release returns the buffers; c must not be used after.
func (c *Conn) release() {
	c.r.Reset(nil)
	readerPool.Put(c.r)
	c.w.Reset(nil)
	writerPool.Put(c.w)
	c.r, c.w = nil, nil
}

// connReader applies the current line's deadline only when bytes must come
// from the network, so a pipelined burst of lines costs one deadline per
// read, not one per line. Before it blocks it sends the replies still
// buffered: a client waiting for them must not wait for its own next line.
type connReader struct{ c *Conn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	if c.w.Buffered() > 0 {
		if err := c.w.Flush(); err != nil {
			return 0, err
		}
	}
	if !c.deadline.Equal(c.applied) {
		c.nc.SetReadDeadline(c.deadline)
		c.applied = c.deadline
	}
	// Checked after setting the deadline: a Shutdown that raced with it has
	// either been seen here or set its past deadline after ours.
	if c.srv.inShutdown.Load() {
		return 0, ErrServerClosed
	}
	n, err := c.nc.Read(p)
	if n > 0 {
		c.readAt = time.Now()
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if c.srv.inShutdown.Load() {
			return n, ErrServerClosed
		}
		return n, ErrIdleTimeout
	}
	return n, err
}

type connWriter struct{ c *Conn }

func (w connWriter) Write(p []byte) (int, error) {
	c := w.c
	cut := c.writeCut.Load()
	c.nc.SetWriteDeadline(c.writeDeadline(cut))
	if again := c.writeCut.Load(); again != cut {
		// CutWrites ran between the load and the set, and its deadline
		// may have been overwritten by the later one.
		c.nc.SetWriteDeadline(c.writeDeadline(again))
	}
	n, err := c.nc.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = ErrWriteTimeout
	}
	return n, err
}

func (c *Conn) writeDeadline(cut int64) time.Time {
	d := time.Now().Add(c.srv.writeTimeout())
	if cut != 0 && cut < d.UnixNano() {
		return time.Unix(0, cut)
	}
	return d
}

// CutWrites makes every write from now on, and one blocked now, give up by
// t at the latest (with ErrWriteTimeout). A handler's shutdown uses it so
// that a client that does not read cannot hold the shutdown for the whole
// WriteTimeout. Unlike the other methods it may be called from any
// goroutine.
func (c *Conn) CutWrites(t time.Time) {
	c.writeCut.Store(t.UnixNano())
	c.nc.SetWriteDeadline(t)
}

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the server's address for this connection.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// NetConn returns the underlying connection, for handlers that need socket
// options. Reads and writes must go through c.
func (c *Conn) NetConn() net.Conn { return c.nc }

func (c *Conn) startRead() {
	c.sinceClock = 0
	if d := c.srv.idleTimeout(); d > 0 {
		c.deadline = time.Now().Add(d)
	} else {
		c.deadline = time.Time{}
	}
}

// clockEvery bounds how many lines of an unbroken burst share one reading of
// the clock for the idle deadline: reading it per line was the largest
// cost of a pipelined command.
const clockEvery = 64

// ReadLine returns the next line without its "\n" or "\r\n". The slice is
// valid until the next read. Errors: ErrLineTooLong (the rest of the line is
// not consumed), ErrIdleTimeout, ErrServerClosed, io.EOF (the client closed
// between lines), io.ErrUnexpectedEOF (it closed mid-line).
//
// The idle deadline runs from when the client's input was last used up (or
// from at most 64 lines ago in a burst that never drains), so a client that
// keeps sending is never idle, and the clock is not read for every line.
func (c *Conn) ReadLine() ([]byte, error) {
	if c.r.Buffered() == 0 || c.sinceClock >= clockEvery || c.deadline.IsZero() {
		c.startRead()
	}
	c.sinceClock++
	max := c.srv.maxLine()
	var long []byte // only when a line exceeds the buffer but not max
	for {
		frag, err := c.r.ReadSlice('\n')
		if err == nil {
			if long != nil {
				long = append(long, frag...)
				frag = long
			}
			line := trimEOL(frag)
			if len(line) > max {
				return nil, ErrLineTooLong
			}
			return line, nil
		}
		if err == bufio.ErrBufferFull {
			if len(long)+len(frag) > max+1 { // +1: a "\r" may yet end it
				return nil, ErrLineTooLong
			}
			long = append(long, frag...)
			continue
		}
		if err == io.EOF && (len(frag) > 0 || len(long) > 0) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// StartMessage starts the deadline of the next message read with Read: the
// whole message, however its bytes are spread, must arrive within the
// server's IdleTimeout from now. Handlers of framed protocols call it before
// each message (a header and its body); ReadLine needs no call.
func (c *Conn) StartMessage() {
	c.startRead()
	c.started = true
}

// Read reads raw bytes, for protocols that are not line based. Its deadline
// is the current message's, set by StartMessage (or by the connection's
// first Read): Read does not extend it, so a client cannot keep a
// connection by trickling bytes.
func (c *Conn) Read(p []byte) (int, error) {
	if !c.started {
		c.StartMessage()
	}
	return c.r.Read(p)
}

// Buffered reports how many received bytes are waiting to be read.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// Write buffers p; it reaches the client on Flush or when the buffer fills.
func (c *Conn) Write(p []byte) (int, error) { return c.w.Write(p) }

// WriteString buffers s.
func (c *Conn) WriteString(s string) (int, error) { return c.w.WriteString(s) }

// Writer returns the buffered writer, for handlers that stream large
// responses (io.Copy, ReadFrom).
func (c *Conn) Writer() *bufio.Writer { return c.w }

// Flush sends what is buffered.
func (c *Conn) Flush() error { return c.w.Flush() }

// FlushIfDrained flushes only when no further client input is already
// buffered, so replies to a pipelined burst leave in few large writes.
func (c *Conn) FlushIfDrained() error {
	if c.r.Buffered() > 0 {
		return nil
	}
	return c.w.Flush()
}

// CloseAbruptly makes the server close the connection without draining the
// client's unread input, for protocol violations.
func (c *Conn) CloseAbruptly() { c.hardClose = true }
