package scenario

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// A server on loopback that stalls once must show in the open loop's p99:
// the requests due during the stall wait behind it, and their latency
// counts from when they were due. A closed loop at the same pace would
// record one slow answer among hundreds.
func TestOpenLoopShowsAStallOnRealSockets(t *testing.T) {
	const stall = 300 * time.Millisecond
	var n atomic.Int64
	addr := fakeLines(t, "", func(line []byte) []byte {
		if n.Add(1) == 50 {
			time.Sleep(stall) // the stall under test, not synchronisation
		}
		return append(gen.Append(nil, time.Now(), line), '\n')
	})
	// Bounded by count, not by a one-second duration: the requests due
	// after the stall must all be sent however slowly the machine catches
	// up, or some are cut off as unsent. The schedule is the same (one due
	// every 5ms), and the bounds below only grow on a slow machine.
	st := run(t, "autoreply-tcp", opts(addr), engine.Config{Workers: 1, Rate: 200, Requests: 200})
	wantAllGood(t, st, 200)
	s := st.Latency.Summary()
	// About 60 of the 200 requests were due during the stall.
	if s.P99 < stall*3/4 {
		t.Errorf("open-loop p99 = %v, want the %v stall to show", s.P99, stall)
	}
	if s.P90 < stall/10 {
		t.Errorf("open-loop p90 = %v, want >= %v: a quarter of the requests waited", s.P90, stall/10)
	}
}
