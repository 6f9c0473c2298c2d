package scenario

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// conn is a socket with the per-request deadline every scenario needs: arm
// sets it, and the end of the run's context pulls it into the past so that
// a blocked read returns at once.
type conn struct {
	net.Conn
	ctx     context.Context
	timeout time.Duration
	stop    func() bool
}

// dial connects to addr within timeout. Its error is KindConnect.
func dial(ctx context.Context, network, addr string, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &engine.Error{Kind: engine.KindConnect, Err: err}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return watch(ctx, c, timeout), nil
}

func watch(ctx context.Context, c net.Conn, timeout time.Duration) *conn {
	return &conn{
		Conn:    c,
		ctx:     ctx,
		timeout: timeout,
		stop:    context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) }),
	}
}

// arm starts a request's time: the deadline of every read and write until
// the next arm. It fails once the run is interrupted.
func (c *conn) arm() error {
	c.SetDeadline(time.Now().Add(c.timeout))
	// After the deadline is set: an interruption between the two would
	// otherwise be overwritten.
	return c.ctx.Err()
}

func (c *conn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// lineConn exchanges text lines over TCP.
type lineConn struct {
	*conn
	r   *bufio.Reader
	out []byte
}

func dialLines(ctx context.Context, addr string, timeout time.Duration) (*lineConn, error) {
	c, err := dial(ctx, "tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &lineConn{conn: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

// send writes b (which must end in "\n") in one write.
func (l *lineConn) send(b []byte) error {
	if _, err := l.Write(b); err != nil {
		return engine.Wrap(err)
	}
	return nil
}

// errLongLine is a reply line longer than the scenario allows.
var errLongLine = errors.New("reply line too long")

// readLine returns the next line without its "\n" or "\r\n", valid until
// the next read. A line longer than max is KindWrongReply.
func (l *lineConn) readLine(max int) ([]byte, error) {
	line, err := l.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, &engine.Error{Kind: engine.KindWrongReply, Err: errLongLine}
	}
	if err != nil {
		return nil, engine.Wrap(err)
	}
	if len(line) > max+2 {
		return nil, &engine.Error{Kind: engine.KindWrongReply, Err: errLongLine}
	}
	line = line[:len(line)-1]
	return bytes.TrimSuffix(line, []byte{'\r'}), nil
}

// udpConn exchanges datagrams with one server.
type udpConn struct {
	*conn
	buf []byte
}

func dialUDP(ctx context.Context, addr string, timeout time.Duration) (*udpConn, error) {
	c, err := dial(ctx, "udp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &udpConn{conn: c, buf: make([]byte, 64<<10)}, nil
}

// roundTrip sends one datagram and returns the next one received, valid
// until the next call. No answer in time is KindLoss.
func (u *udpConn) roundTrip(b []byte) ([]byte, error) {
	if err := u.arm(); err != nil {
		return nil, err
	}
	if _, err := u.Write(b); err != nil {
		return nil, udpErr(err)
	}
	return u.receive()
}

// receive returns the next datagram.
func (u *udpConn) receive() ([]byte, error) {
	n, err := u.Read(u.buf)
	if err != nil {
		return nil, udpErr(err)
	}
	return u.buf[:n], nil
}

func udpErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &engine.Error{Kind: engine.KindLoss, Err: errors.New("no answer within the timeout")}
	}
	return engine.Wrap(err)
}

// wrong returns a KindWrongReply error quoting the start of what came back.
func wrong(format string, got []byte, args ...any) error {
	if len(got) > 80 {
		got = append(got[:80:80], "..."...)
	}
	return &engine.Error{Kind: engine.KindWrongReply, Err: fmt.Errorf(format+": %q", append(args, got)...)}
}
