package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/netserve"
)

// UsageError marks a bad command line or setting; commands exit 2 for it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage marks err as a usage error (nil stays nil).
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// ExitCode reports err on stderr, prefixed with the program's name, and
// returns the exit status for it: 0 for nil or a request for help, 2 for a
// usage error, 1 otherwise.
func ExitCode(err error, stderr io.Writer) int {
	var perr *config.ParseError
	var uerr *UsageError
	switch {
	case err == nil || config.IsHelp(err):
		return 0
	case errors.As(err, &perr):
		return 2 // already printed with the usage by the flag package
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "%s: %v\n(run with -h for help)\n", filepath.Base(os.Args[0]), err)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		return 1
	}
}

// TCPUnit serves srv on ln.
func TCPUnit(srv *netserve.Server, ln net.Listener) Unit {
	return Unit{
		Name:     "tcp " + ln.Addr().String(),
		Serve:    func() error { return srv.Serve(ln) },
		Shutdown: srv.Shutdown,
		Closed:   isServerClosed,
		Close:    ln.Close,
		Addr:     ln.Addr(),
	}
}

// UDPUnit serves srv on pc.
func UDPUnit(srv *netserve.PacketServer, pc net.PacketConn) Unit {
	return Unit{
		Name:     "udp " + pc.LocalAddr().String(),
		Serve:    func() error { return srv.ServePacket(pc) },
		Shutdown: srv.Shutdown,
		Closed:   isServerClosed,
		// Never served, the server may still own goroutines (GoWorker):
		// a Shutdown with no time left stops them.
		Close: func() error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			srv.Shutdown(ctx)
			return pc.Close()
		},
		Addr: pc.LocalAddr(),
	}
}

func isServerClosed(err error) bool { return errors.Is(err, netserve.ErrServerClosed) }

// CloseAll releases the sockets of units that were never run, when setting
// up a later one failed.
func CloseAll(units []Unit) {
	for _, u := range units {
		if u.Close != nil {
			u.Close()
		}
	}
}

// NoArgs is a usage error unless rest is empty.
func NoArgs(rest []string) error {
	if len(rest) > 0 {
		return Usage(fmt.Errorf("unexpected arguments %q", rest))
	}
	return nil
}
