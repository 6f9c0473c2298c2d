// Package client is the connid client's handshake: HELLO <ConnectionID> to
// a server over a new socket per try, then, on RESET or no reply in time,
// "Connection Error", a new ID, and another try, up to three; the messages
// are worded as the seed document has them.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/socklab/socklab/services/connid/proto"
)

// TimeLayout formats the timestamps of the client's messages, as the seed
// shows them: 2023-01-16 06:06:06.123456.
const TimeLayout = "2006-01-02 15:04:05.000000"

// Defaults of the seed.
const (
	DefaultTimeout = 15 * time.Second
	DefaultTries   = 3
)

// ErrFailure is returned when no try succeeded.
var ErrFailure = errors.New("connection failure")

// errNoReply marks a try that timed out.
var errNoReply = errors.New("no reply")

// IDSource supplies the connection ID for the next try after a failed one.
// It may prompt; it returns an error when no ID can be had.
type IDSource func(ctx context.Context) (string, error)

// Client makes handshakes with one server.
type Client struct {
	// Network is "udp" or "tcp".
	Network string
	// Server is the server's HOST:PORT.
	Server string
	// Timeout bounds the wait for each reply; 0 means DefaultTimeout.
	Timeout time.Duration
	// Tries is how many handshakes to try; 0 means DefaultTries.
	Tries int
	// Dial opens each try's socket; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now gives the timestamps; nil means time.Now.
	Now func() time.Time
	// Out receives the seed's messages.
	Out io.Writer
	// Diag receives why a try failed, beyond "Connection Error".
	Diag io.Writer
	// NextID gives the ID of each try after the first.
	NextID IDSource
}

func (c *Client) stamp() string {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return now().Format(TimeLayout)
}

// Run tries to claim id, then the IDs NextID gives, and returns the OK
// reply, or ErrFailure after the last try, or ctx's error.
func (c *Client) Run(ctx context.Context, id string) (proto.Reply, error) {
	tries := c.Tries
	if tries <= 0 {
		tries = DefaultTries
	}
	for try := 1; ; try++ {
		r, err := c.Try(ctx, id)
		if err == nil {
			fmt.Fprintf(c.Out, "Connection established %s %s %d on %s\n", r.ID, r.Client.Addr(), r.Client.Port(), c.stamp())
			return r, nil
		}
		if ctx.Err() != nil {
			return proto.Reply{}, context.Cause(ctx)
		}
		fmt.Fprintf(c.Out, "Connection Error %s on %s\n", id, c.stamp())
		if !errors.Is(err, errReset) {
			fmt.Fprintf(c.Diag, "connid-client: %v\n", err)
		}
		if try >= tries {
			break
		}
		if id, err = c.NextID(ctx); err != nil {
			if ctx.Err() != nil {
				return proto.Reply{}, context.Cause(ctx)
			}
			fmt.Fprintf(c.Diag, "connid-client: no new connection ID: %v\n", err)
			break
		}
	}
	fmt.Fprintf(c.Out, "Connection Failure on %s\n", c.stamp())
	return proto.Reply{}, ErrFailure
}

var errReset = errors.New("connection ID in use")

// Try makes one handshake for id over a new socket. It returns the OK
// reply, or an error: errReset wrapped for RESET, or why there was no
// answer.
func (c *Client) Try(ctx context.Context, id string) (proto.Reply, error) {
	dial := c.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(dctx, c.Network, c.Server)
	if err != nil {
		return proto.Reply{}, c.explain(err, timeout)
	}
	defer conn.Close()
	// A signal must not wait for the timeout.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetDeadline(time.Now().Add(timeout))

	msg := proto.AppendHello(make([]byte, 0, proto.MaxRequestLen), id)
	if c.Network == "tcp" {
		msg = append(msg, '\n')
	}
	if _, err := conn.Write(msg); err != nil {
		return proto.Reply{}, c.explain(err, timeout)
	}
	reply, err := c.read(conn)
	if err != nil {
		return proto.Reply{}, c.explain(err, timeout)
	}
	r, err := proto.ParseReply(reply)
	switch {
	case err != nil:
		return r, fmt.Errorf("%s answered %.80q, not a connid reply", c.Server, reply)
	case r.Kind == proto.KindError:
		return r, fmt.Errorf("%s answered ERROR %s", c.Server, r.Code)
	case r.Kind == proto.KindReset && r.ID == id:
		return r, fmt.Errorf("%w: %s", errReset, id)
	case r.Kind != proto.KindOK || r.ID != id:
		return r, fmt.Errorf("%s answered %q to HELLO %s", c.Server, r, id)
	}
	return r, nil
}

// read returns one reply: a datagram, or a line over TCP.
func (c *Client) read(conn net.Conn) ([]byte, error) {
	if c.Network == "tcp" {
		line, err := bufio.NewReaderSize(conn, 2*proto.MaxReplyLen).ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%s sent a line longer than any connid reply", c.Server)
		}
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s closed the connection without a reply", c.Server)
		}
		return line, err
	}
	buf := make([]byte, 2*proto.MaxReplyLen)
	n, err := conn.Read(buf)
	return buf[:n], err
}

// explain turns a socket error into a sentence for a person.
func (c *Client) explain(err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w from %s %s within %v", errNoReply, c.Network, c.Server, timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s %s refused: is a connid server running there?", c.Network, c.Server)
	}
	return fmt.Errorf("%s %s: %w", c.Network, c.Server, err)
}
