package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/kit/service"
)

// ErrIdle is the cause recorded when the server stops for lack of requests.
var ErrIdle = errors.New("idle timeout")

// Idle watches for a spell without requests. Handlers call Touch for every
// request; Wait returns once no Touch came for the timeout.
type Idle struct {
	clock   clock.Clock
	timeout time.Duration
	last    atomic.Int64 // Unix ns of the last request, or of the start
	timer   clock.Timer
}

// NewIdle starts the idle clock now. Its timer exists from here on, so time
// moved by a fake clock before Wait runs is not lost.
func NewIdle(c clock.Clock, timeout time.Duration) *Idle {
	i := &Idle{clock: c, timeout: timeout}
	i.last.Store(c.Now().UnixNano())
	i.timer = c.NewTimer(timeout)
	return i
}

// Touch records a request at now.
func (i *Idle) Touch(now time.Time) {
	if i != nil {
		i.last.Store(now.UnixNano())
	}
}

// Wait returns an error wrapping ErrIdle when no request came for the
// timeout, or ctx's error when ctx ends first. The timer wakes it only once
// per timeout, however many requests arrive.
func (i *Idle) Wait(ctx context.Context) error {
	defer i.timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-i.timer.C():
		}
		since := time.Duration(i.clock.Now().UnixNano() - i.last.Load())
		if since >= i.timeout {
			return fmt.Errorf("%w: no request for %v", ErrIdle, i.timeout)
		}
		i.timer.Reset(i.timeout - since)
	}
}

// Job returns the unit that ends the server when Wait says it is idle:
// service.Run then logs ErrIdle as the cause and returns nil.
func (i *Idle) Job() service.Unit {
	return service.Job("idle", func(ctx context.Context) error {
		err := i.Wait(ctx)
		if errors.Is(err, ErrIdle) {
			return service.Finished(err)
		}
		return err
	})
}
