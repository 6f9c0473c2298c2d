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

// Command is a server's parsed command line.
type Command struct {
	// Common holds the settings every server shares.
	Common Common
	// Healthcheck is set when the first word was "healthcheck": probe the
	// running server instead of starting one.
	Healthcheck bool
	// Rest holds the positional arguments left after the flags.
	Rest []string
}

// ParseCommand parses a server's command line: an optional leading
// "healthcheck" word, then the flags of cfg (a pointer to the service's
// settings struct, its variables carrying prefix) and of Common. Errors are
// usage errors, already wrapped for ExitCode.
func ParseCommand(name, usage, prefix string, cfg any, args, environ []string, stderr io.Writer) (Command, error) {
	var cmd Command
	set := config.NewSet(name, usage, environ, stderr)
	if err := set.Add(prefix, cfg); err != nil {
		return cmd, Usage(err)
	}
	if err := set.Add("", &cmd.Common); err != nil {
		return cmd, Usage(err)
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		cmd.Healthcheck = true
		args = args[1:]
	}
	rest, err := set.Parse(args)
	if err != nil {
		return cmd, Usage(err)
	}
	cmd.Rest = rest
	return cmd, nil
}

// NoArgs is a usage error unless rest is empty.
func NoArgs(rest []string) error {
	if len(rest) > 0 {
		return Usage(fmt.Errorf("unexpected arguments %q", rest))
	}
	return nil
}
