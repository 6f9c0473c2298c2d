// Package service runs a server command's parts (listeners, the metrics
// endpoint) until a signal, an error or the caller's context ends them, then
// shuts them all down within a time limit and says why it stopped.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/logging"
	"github.com/socklab/socklab/services/kit/memlimit"
)

// Common holds the settings every server shares. Its variables carry no
// service prefix: LOG_LEVEL is LOG_LEVEL in every container.
type Common struct {
	logging.Config
	MetricsAddr     string        `env:"METRICS_ADDR" flag:"metrics-addr" help:"serve Prometheus /metrics and /healthz on this address (off when empty)"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s" flag:"shutdown-timeout" help:"how long a graceful shutdown may wait for in-flight work"`
}

// A Unit is one part of a running server.
type Unit struct {
	// Name appears in logs.
	Name string
	// Serve runs until Shutdown; returning an error other than one matched
	// by Closed stops the whole server. Returning nil before Shutdown means
	// the unit's job is done (see Job): Run then stops the others and
	// returns nil.
	Serve func() error
	// Shutdown stops Serve gracefully, giving up when ctx ends.
	Shutdown func(ctx context.Context) error
	// Closed reports whether an error from Serve means "shut down as asked".
	Closed func(error) bool
	// Close releases the unit's socket if it is never served.
	Close func() error
	// Addr is the bound address, where there is one.
	Addr net.Addr
}

// ErrSignal is the cause recorded when SIGINT or SIGTERM stops a server.
var ErrSignal = errors.New("signal received")

// SignalContext returns a context that ends on SIGINT or SIGTERM, with
// ErrSignal (naming the signal) as its cause.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			cancel(fmt.Errorf("%w: %s", ErrSignal, sig))
		case <-ctx.Done():
		}
		signal.Stop(ch)
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// Run serves every unit until ctx ends or one of them fails, then shuts all
// of them down, each given at most timeout. It returns nil when the stop was
// asked for (ctx ended) and the units shut down cleanly, or the error that
// stopped them.
//
// It first sets the Go runtime's memory limit from the container's (package
// memlimit), so that every server's heap stays within its container and
// memory freed after a burst goes back.
func Run(ctx context.Context, log *zap.Logger, timeout time.Duration, units ...Unit) error {
	memlimit.Set(log)
	failed := make(chan error, len(units))
	finished := make(chan string, len(units))
	done := make(chan struct{}, len(units))
	for _, u := range units {
		go func() {
			defer func() { done <- struct{}{} }()
			err := u.Serve()
			var done *finishedError
			switch {
			case err == nil:
				finished <- u.Name + " finished"
			case errors.As(err, &done):
				finished <- done.cause.Error()
			case u.Closed == nil || !u.Closed(err):
				failed <- fmt.Errorf("%s: %w", u.Name, err)
			}
		}()
	}

	var cause error
	select {
	case <-ctx.Done():
		log.Info("shutting down", zap.String("cause", context.Cause(ctx).Error()))
	case cause = <-failed:
		log.Error("shutting down", zap.Error(cause))
	case why := <-finished:
		log.Info("shutting down", zap.String("cause", why))
	}

	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for _, u := range units {
		if err := u.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("%s shutdown: %w", u.Name, err))
		}
	}
	for range units {
		<-done
	}
	if len(errs) > 0 {
		log.Warn("shutdown incomplete", zap.Error(errors.Join(errs...)))
	}
	log.Info("stopped")
	if cause != nil {
		return cause
	}
	return errors.Join(errs...)
}

// NewLogger builds the command's logger from common settings, named for the
// command.
func NewLogger(c Common, name string, stderr io.Writer) (*zap.Logger, error) {
	log, err := logging.New(c.Config, stderr)
	if err != nil {
		return nil, err
	}
	return log.Named(name), nil
}

// Finished wraps the reason a unit's work ended by itself (an idle timeout):
// returned from Serve (or a Job's function), it ends Run like nil does, and
// Run logs cause as the reason it stopped.
func Finished(cause error) error { return &finishedError{cause: cause} }

type finishedError struct{ cause error }

func (e *finishedError) Error() string { return "finished: " + e.cause.Error() }
func (e *finishedError) Unwrap() error { return e.cause }

// errJobStopped is what a Job's Serve returns when Shutdown stopped it.
var errJobStopped = errors.New("job stopped")

// Job returns a unit that runs fn, a piece of work that may end by itself (a
// bounded capture, a load run, an idle exit). Shutdown cancels fn's context
// and waits for it to return. When fn returns nil by itself the job is done:
// Run stops the other units and returns nil. An error from fn stops them
// too, and Run returns it.
func Job(name string, fn func(ctx context.Context) error) Unit {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	return Unit{
		Name: name,
		Serve: func() error {
			defer close(done)
			err := fn(ctx)
			if ctx.Err() != nil {
				return errJobStopped
			}
			return err
		},
		Shutdown: func(sctx context.Context) error {
			cancel()
			select {
			case <-done:
				return nil
			case <-sctx.Done():
				return sctx.Err()
			}
		},
		Closed: func(err error) bool { return errors.Is(err, errJobStopped) },
	}
}
