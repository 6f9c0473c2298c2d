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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/logging"
)

// Common holds the settings every server shares. Its variables carry no
// service prefix: LOG_LEVEL is LOG_LEVEL in every container.
type Common struct {
	logging.Config
	MetricsAddr     string        `env:"METRICS_ADDR" flag:"metrics-addr" help:"serve Prometheus /metrics and /healthz on this address (off when empty)"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s" flag:"shutdown-timeout" help:"how long a graceful shutdown may wait for in-flight work"`
}

// A Phase orders shutdown: Run stops the units of one phase, all of them at
// once, before the next phase begins.
type Phase int

// The phases, in the order Run stops them.
const (
	// Serving holds the network servers. Each stops accepting, drains
	// its in-flight work, then stops the goroutines it owns (netserve's
	// Shutdown does the three in that order).
	Serving Phase = iota
	// Backing holds what the servers use while they drain: a store's
	// writer, an idle watch, a job.
	Backing
	// Observing holds the metrics endpoint, last, so that a drain can be
	// watched.
	Observing
)

// A Unit is one part of a running server.
type Unit struct {
	// Name appears in logs.
	Name string
	// Phase says when Shutdown is called; the zero value is Serving.
	Phase Phase
	// Serve runs until Shutdown; returning an error other than one matched
	// by Closed stops the whole server. Returning nil before Shutdown means
	// the unit's job is done (see Job): Run then stops the others and
	// returns nil.
	Serve func() error
	// Shutdown stops Serve gracefully; when ctx ends it stops what is left
	// at once and returns soon after.
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

// forceShare is the part of the shutdown timeout kept for units that were
// told to stop at once (their graceful wait ran out) to return.
const forceShare = 10

// Run serves every unit until ctx ends or one of them fails, then shuts them
// down phase by phase (see Phase), the units of one phase in parallel. The
// whole shutdown takes at most timeout: the phases share a deadline at nine
// tenths of it, after which a unit stops what is left at once, and Run waits
// for the units' Serve to return until the full timeout, then returns
// without them, naming them. It returns nil when the stop was asked for (ctx
// ended, or a unit's job finished) and the units shut down cleanly, or the
// error that stopped them.
func Run(ctx context.Context, log *zap.Logger, timeout time.Duration, units ...Unit) error {
	failed := make(chan error, len(units))
	finished := make(chan string, len(units))
	served := make([]chan struct{}, len(units))
	for i, u := range units {
		served[i] = make(chan struct{})
		go func() {
			defer close(served[i])
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

	hard, cancelHard := context.WithTimeout(context.Background(), timeout)
	defer cancelHard()
	graceful, cancel := context.WithTimeout(hard, timeout-timeout/forceShare)
	defer cancel()
	errs := shutdown(graceful, hard, units)
	var stuck []string
	for i, u := range units {
		select {
		case <-served[i]:
		case <-hard.Done():
			stuck = append(stuck, u.Name)
		}
	}
	if len(stuck) > 0 {
		errs = append(errs, fmt.Errorf("still running after the shutdown timeout (%v): %s", timeout, strings.Join(stuck, ", ")))
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

// shutdown stops units phase by phase, each phase's units in parallel,
// giving them ctx; it stops waiting for a phase when hard ends.
func shutdown(ctx, hard context.Context, units []Unit) []error {
	var mu sync.Mutex
	var errs []error
	add := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for phase := Serving; phase <= Observing; phase++ {
		var wg sync.WaitGroup
		for _, u := range units {
			if u.Phase == phase {
				wg.Go(func() {
					if err := u.Shutdown(ctx); err != nil {
						add(fmt.Errorf("%s shutdown: %w", u.Name, err))
					}
				})
			}
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-hard.Done():
			add(fmt.Errorf("shutdown of phase %d did not return within the timeout", phase))
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(errs)
		}
	}
	return errs
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
// bounded capture, a load run, an idle exit), in the Backing phase.
// Shutdown cancels fn's context and waits for it to return. When fn returns nil by itself the job is done:
// Run stops the other units and returns nil. An error from fn stops them
// too, and Run returns it.
func Job(name string, fn func(ctx context.Context) error) Unit {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	return Unit{
		Name:  name,
		Phase: Backing,
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
