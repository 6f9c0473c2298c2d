package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// Kinds of request errors, as counted in summaries, result files and
// metrics. A scenario may use others; these are the ones the engine knows.
const (
	// KindConnect: the connection (or UDP socket) could not be set up.
	KindConnect = "connect"
	// KindTimeout: no complete answer within the request timeout (TCP).
	KindTimeout = "timeout"
	// KindLoss: no answer datagram within the request timeout (UDP).
	KindLoss = "loss"
	// KindClosed: the server closed or reset the connection.
	KindClosed = "closed"
	// KindWrongReply: an answer came back but is not the right one.
	KindWrongReply = "wrong_reply"
	// KindServerError: the server answered with a protocol error message.
	KindServerError = "server_error"
	// KindIO: any other socket error.
	KindIO = "io"
	// KindUnsent: an open-loop request due before the end of the run but
	// never sent, because every connection was still busy: the target (or
	// the generator) could not keep up with the rate.
	KindUnsent = "unsent"
)

// Error is a failed request, classified by Kind.
type Error struct {
	Kind string
	Err  error
}

func (e *Error) Error() string { return e.Kind + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind with a formatted message.
func Errorf(kind, format string, args ...any) error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// Wrap classifies err: an *Error keeps its kind, a socket timeout is
// KindTimeout, an end or reset of the connection is KindClosed, anything
// else KindIO. Wrap(nil) is nil.
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: classify(err), Err: err}
}

// KindOf reports the kind of err as Wrap would classify it ("" for nil).
func KindOf(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return classify(err)
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED):
		return KindClosed
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindConnect
	default:
		return KindIO
	}
}
