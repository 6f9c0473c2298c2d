// Package client speaks filestream to a server over TCP or UDP: it sends
// requests, receives echoes, files and streams, verifies files by length
// and CRC-32C, and measures loss, duplicates, reordering and jitter.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
)

// DefaultTimeout is how long a client waits for the next byte or packet
// when Options.Timeout is 0.
const DefaultTimeout = 2 * time.Second

// Options tune a Session.
type Options struct {
	// Timeout is how long to wait for the next byte (TCP) or packet (UDP)
	// before giving up on a reply; over UDP it is the fallback end of a
	// file or stream whose END was lost. 0 means DefaultTimeout.
	Timeout time.Duration
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// StreamParams is what a client asks of a stream.
type StreamParams struct {
	Interval time.Duration
	Count    uint32
	// Size of each packet; 0 means the smallest.
	Size uint16
}

// MaxStreamCount bounds the packets a client asks for in one stream: it
// keeps a record of each.
const MaxStreamCount = 1 << 20

func (p StreamParams) check() error {
	if p.Count > MaxStreamCount {
		return fmt.Errorf("stream count %d over the client's limit of %d", p.Count, MaxStreamCount)
	}
	return nil
}

// Session is a conversation with one server.
type Session interface {
	// Echo sends text and returns the server's echo of it.
	Echo(ctx context.Context, text []byte) ([]byte, error)
	// File asks for size bytes of content and writes them, in order, to
	// sink (which may be nil).
	File(ctx context.Context, size uint64, sink io.Writer) (FileResult, error)
	// Stream asks for a stream and measures it.
	Stream(ctx context.Context, p StreamParams) (StreamResult, error)
	// Quit ends the conversation politely (and over UDP stops the server's
	// transfers to this client).
	Quit(ctx context.Context) error
	// Close releases the socket.
	Close() error
	// Protocol is "tcp" or "udp".
	Protocol() string
}

// ErrTimeout is returned when the server went silent for the timeout.
var ErrTimeout = errors.New("no reply within the timeout")

// Dial connects to addr over protocol ("tcp" or "udp").
func Dial(ctx context.Context, protocol, addr string, opt Options) (Session, error) {
	var d net.Dialer
	switch protocol {
	case "tcp":
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return NewTCP(c, opt), nil
	case "udp":
		c, err := d.DialContext(ctx, "udp", addr)
		if err != nil {
			return nil, err
		}
		return NewUDP(c.(*net.UDPConn), opt), nil
	}
	return nil, fmt.Errorf("protocol must be tcp or udp, not %q", protocol)
}

// unexpected describes a reply that does not answer the request.
func unexpected(m proto.Message, want string) error {
	return fmt.Errorf("unexpected %v from server, want %s", m.Type, want)
}

// watcher makes reads on a connection fail at once when a context ends.
// Read deadlines are set through it, under its lock, so that a deadline
// for the next packet never overwrites the cancellation.
type watcher struct {
	mu    sync.Mutex
	c     net.Conn
	ended bool
	stop  func() bool
}

func watch(ctx context.Context, c net.Conn) *watcher {
	w := &watcher{c: c}
	w.stop = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.ended = true
		c.SetReadDeadline(time.Unix(1, 0))
	})
	return w
}

// deadline sets the read deadline unless the context has ended.
func (w *watcher) deadline(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.c.SetReadDeadline(t)
	}
}

func (w *watcher) close() { w.stop() }

// readErr turns a deadline error into ErrTimeout, or ctx's error when ctx
// is why.
func readErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	return err
}
