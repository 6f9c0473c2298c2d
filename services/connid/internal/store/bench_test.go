package store

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/socklab/socklab/services/connid/internal/clock"

	"github.com/socklab/socklab/services/kit/nettest"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkClaim measures claims with 100,000 live IDs in the table: of a
// fresh ID from one goroutine waiting for each outcome (a write transaction
// each) and from 8 at once (transactions shared), and of an ID in use
// (InUse, a read). It reports the heap held per live ID.
func BenchmarkClaim(b *testing.B) {
	const live = 100_000
	before := heapInUse()
	clk := clock.NewFake(t0)
	s, err := New(clk, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// Claimed in the far future, the live IDs outlive the fresh ones,
	// which expire after each round.
	future := t0.Add(1000 * time.Hour)
	w := NewWaiter()
	for i := range live {
		if ok, err := s.Claim(w, "live-"+strconv.Itoa(i), client, future); !ok || err != nil {
			b.Fatalf("preload claim %d: %v, %v", i, ok, err)
		}
	}
	perID := float64(heapInUse()-before) / live
	drain := func(b *testing.B) {
		b.StopTimer()
		nettest.Until(b, "the sweep to leave the live IDs only", func() bool {
			if s.Len() <= live {
				return true
			}
			// Advance again each time: the writer may have computed its
			// timer from the time before an advance.
			clk.Advance(s.TTL())
			return false
		})
		if s.Len() != live {
			b.Fatalf("%d IDs left after the sweep, want %d", s.Len(), live)
		}
	}
	seq := 0
	for _, claimers := range []int{1, 8} {
		b.Run("live=100000/op=ok/claimers="+strconv.Itoa(claimers), func(b *testing.B) {
			b.ReportAllocs()
			now := clk.Now()
			var wg sync.WaitGroup
			per := (b.N + claimers - 1) / claimers
			base := seq
			seq += per * claimers
			claims0, commits0 := s.Commits()
			b.ResetTimer()
			for c := range claimers {
				wg.Go(func() {
					w := NewWaiter()
					for i := range per {
						if ok, _ := s.Claim(w, "new-"+strconv.Itoa(base+c*per+i), client, now); !ok {
							b.Error("fresh ID refused")
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(perID, "B/id")
			claims, commits := s.Commits()
			b.ReportMetric(float64(claims-claims0)/float64(commits-commits0), "claims/commit")
			drain(b)
		})
	}
	b.Run("live=100000/op=inuse", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		now := clk.Now()
		for b.Loop() {
			if in, _ := s.InUse("live-"+strconv.Itoa(i%live), now); !in {
				b.Fatal("live ID not in use")
			}
			i++
		}
	})
}
