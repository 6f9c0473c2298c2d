package engine

import (
	"math"
	"time"
)

// Pacer is the schedule of an open-loop run: request n (from 0) is due
// n/Rate seconds after the start. It is a pure function of elapsed time, so
// workers compute what is due instead of sleeping between requests: a late
// request does not push the ones after it back, and the latency of each is
// measured from when it was due (wrk2's correction of coordinated omission).
type Pacer struct {
	// Rate is the number of requests per second, > 0.
	Rate float64
}

// At returns when request n is due, as an offset from the start.
func (p Pacer) At(n int64) time.Duration {
	sec := float64(n) / p.Rate
	if sec >= float64(math.MaxInt64)/1e9 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Round(sec * 1e9))
}

// Due returns how many requests are due by elapsed: those with At(n) <=
// elapsed. No request is due before the start.
func (p Pacer) Due(elapsed time.Duration) int64 {
	if elapsed < 0 {
		return 0
	}
	n := int64(math.Floor(elapsed.Seconds()*p.Rate)) + 1
	// Floating point may be one off at the boundary; settle it with At.
	for n > 0 && p.At(n-1) > elapsed {
		n--
	}
	for p.At(n) <= elapsed {
		n++
	}
	return n
}
