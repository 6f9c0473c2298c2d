package engine

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// preciseSleeper returns a sleep that wakes within tens of microseconds,
// where Go's timers (an epoll_wait with a millisecond timeout while the
// process is idle) wake up to a millisecond late: nanosleep, on a thread
// whose timer slack is 1ns instead of Linux's default 50µs. The slack is
// set before each sleep because the goroutine may have moved to another
// thread; a thread keeping the smaller slack afterwards does no harm.
func preciseSleeper() func(time.Duration) {
	return func(d time.Duration) {
		unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
		ts := syscall.NsecToTimespec(int64(d))
		syscall.Nanosleep(&ts, nil) // EINTR: the caller looks at the clock again
	}
}
