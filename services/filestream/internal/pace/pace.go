// Package pace sends packets on a schedule that does not drift: packet i is
// due at Start + i*Interval, computed from the start every time, so the time
// spent sending and the lateness of timers never accumulate. A sender that
// falls behind sends every overdue packet at once and is back on schedule.
package pace

import (
	"context"
	"time"
)

// Schedule says when each of Count packets is due.
type Schedule struct {
	Start    time.Time
	Interval time.Duration
	Count    int
}

// At returns when packet i is due.
func (s Schedule) At(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Interval) }

// Due returns how many packets should have been sent by now: those whose
// time has come, packet 0 at Start itself. An Interval of 0 or less makes
// every packet due at Start.
func (s Schedule) Due(now time.Time) int {
	el := now.Sub(s.Start)
	switch {
	case s.Count <= 0 || el < 0:
		return 0
	case s.Interval <= 0:
		return s.Count
	}
	n := int64(el/s.Interval) + 1
	return int(min(n, int64(s.Count)))
}

// Run calls send(i) for i from 0 to Count-1, each once it is due, and
// returns the first error of send, or ctx's error when ctx ends first. Between
// batches it waits on one timer for the next due time; it never sleeps a
// fixed interval per packet.
func Run(ctx context.Context, s Schedule, send func(i int) error) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for i := 0; i < s.Count; {
		for due := s.Due(time.Now()); i < due; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := send(i); err != nil {
				return err
			}
		}
		if i >= s.Count {
			break
		}
		wait := time.Until(s.At(i))
		if wait <= 0 {
			continue
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
	return nil
}
