package result

import (
	"time"

	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// DefaultLiveEvery is how often Live rewrites a running generator's file.
const DefaultLiveEvery = 2 * time.Second

// Live rewrites a running generator's result file every few seconds of its
// round, so that a merge made during the round sees the figures so far, and
// a generator killed mid-round leaves its latest ones behind. Each write
// goes through a temporary file and a rename (WriteFile): a reader sees the
// previous file or the new one, never half of one.
type Live struct {
	Meta Meta
	// Dir is where the file goes; "" writes nothing.
	Dir string
	// Every is the time between writes, by the run's own clock (0:
	// DefaultLiveEvery).
	Every time.Duration
	next  time.Duration
}

// Update writes the run so far when Every has passed since the last write;
// the first tick writes at once. It leaves the final tick to the caller,
// which writes the whole result.
func (l *Live) Update(p engine.Progress) error {
	if l.Dir == "" || p.Final || p.Run == nil || p.Elapsed < l.next {
		return nil
	}
	every := l.Every
	if every <= 0 {
		every = DefaultLiveEvery
	}
	l.next = p.Elapsed + every
	_, err := New(l.Meta, p.Run).WriteFile(l.Dir)
	return err
}
