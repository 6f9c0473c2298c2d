package proto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Do performs one exchange with the server at addr: it connects, writes
// req as one line, reads the one response line and closes. ctx bounds the
// whole exchange. A nil d means a net.Dialer
// without TCP keep-alive.
//
// A response with OK false is returned as such, with a nil error; the error
// is for what kept the exchange from completing (connect, write, read, a
// malformed response).
func Do(ctx context.Context, d *net.Dialer, addr string, req Request) (Response, error) {
	if d == nil {
		d = noKeepAlive
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Response{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// Unblock a read when ctx is cancelled without a deadline.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(AppendRequest(nil, req)); err != nil {
		return Response{}, fmt.Errorf("send: %w", ctxErr(ctx, err))
	}
	resp, err := ReadResponse(c)
	if err != nil {
		return Response{}, fmt.Errorf("receive: %w", ctxErr(ctx, err))
	}
	return resp, nil
}

// noKeepAlive is the dialer Do uses when given none: a zero net.Dialer
// without TCP keep-alive. An exchange lasts one request, bounded by its
// context and the server's timeouts, far less than a keep-alive probe
// waits; turning it on costs four setsockopt calls per connection.
var noKeepAlive = &net.Dialer{KeepAlive: -1}

// ctxErr prefers the context's error, which says why a deadline hit.
func ctxErr(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection's deadline is ctx's, or was set when ctx ended:
		// ctx is done, or will be within a timer tick.
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	return err
}
