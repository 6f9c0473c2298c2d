//go:build !linux

package engine

import "time"

// preciseSleeper returns time.Sleep where no finer sleep is known.
func preciseSleeper() func(time.Duration) { return time.Sleep }
