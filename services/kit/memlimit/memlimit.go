// Package memlimit sets the Go runtime's soft memory limit from the
// container's, so that a server's heap is collected harder as it nears the
// limit instead of being killed at it, and memory freed after a burst goes
// back to the system.
//
// It wraps github.com/KimMachineGun/automemlimit, which reads the cgroup v2
// (or v1) limit of the process: the runtime's limit becomes 90% of it,
// leaving room for what the Go heap does not count (stacks outside it, the
// binary, kernel buffers charged to the cgroup). GOMEMLIMIT, when set, wins
// (the runtime already applied it); AUTOMEMLIMIT=off turns this off and
// AUTOMEMLIMIT=0.8 changes the ratio.
package memlimit

import (
	"errors"
	"math"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap"
)

// Ratio is the part of the container's memory limit given to the Go
// runtime.
const Ratio = 0.9

// Set sets the runtime's memory limit from the cgroup's and logs it. It
// returns the limit in bytes, math.MaxInt64 when there is none (not in a
// cgroup, or the cgroup is unlimited). Call it once as a server starts.
func Set(log *zap.Logger) int64 {
	return set(log, memlimit.FromCgroup)
}

func set(log *zap.Logger, provider memlimit.Provider) int64 {
	limit, err := memlimit.Set(memlimit.WithRatio(Ratio), memlimit.WithProvider(provider))
	switch {
	case errors.Is(err, memlimit.ErrNoCgroup):
		log.Debug("memory limit: not in a cgroup; none set")
	case err != nil:
		log.Warn("memory limit: cgroup unreadable; none set", zap.Error(err))
	case limit == math.MaxInt64:
		log.Debug("memory limit: none (the cgroup has no limit)")
	default:
		log.Debug("memory limit", zap.Int64("gomemlimit_bytes", limit))
	}
	return limit
}
