package result

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// A generator's file appears at its first tick and follows the run every
// Every; interrupted mid-round, it holds the figures of the last write, a
// whole result that reads back and merges.
func TestLiveRewritesDuringTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "gen-1.json")
		live := &Live{Meta: Meta{ID: "gen-1", Scenario: "mix", Rate: 100, Connections: 2}, Dir: dir, Every: 2 * time.Second}
		type look struct {
			at       time.Duration
			requests int64
		}
		var looks []look
		var writeErr error
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(6500*time.Millisecond, cancel) // killed mid-round
		_, err := engine.Run(ctx, engine.Config{
			Parts: []engine.Part{
				{Name: "a", Weight: 1, Scenario: &seq{took: tookA}},
				{Name: "b", Weight: 1, Scenario: &seq{took: tookB, fail: failB}},
			},
			Rate: 100, Workers: 2, Duration: time.Hour, Sleep: time.Sleep,
			OnTick: func(p engine.Progress) {
				if err := live.Update(p); err != nil {
					writeErr = err
				}
				if p.Final {
					return
				}
				r, err := ReadFile(path)
				if err != nil {
					t.Errorf("at %v: %v", p.Elapsed, err)
					return
				}
				looks = append(looks, look{p.Elapsed, r.Requests})
			},
		})
		if err != nil || writeErr != nil {
			t.Fatal(err, writeErr)
		}
		// Ticks at 1..6s; writes at 1, 3 and 5s.
		want := []int64{100, 100, 300, 300, 500, 500}
		if len(looks) != len(want) {
			t.Fatalf("looked %d times, want %d: %v", len(looks), len(want), looks)
		}
		for i, l := range looks {
			// A request due at the tick may or may not have finished.
			if l.requests < want[i]-2 || l.requests > want[i] {
				t.Errorf("file at %v holds %d requests, want about %d", l.at, l.requests, want[i])
			}
		}
		r, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Scenarios) != 2 || r.Scenarios[0].Histogram == nil || r.Scenarios[1].Latency == nil {
			t.Fatalf("left-behind file lacks scenario histograms: %+v", r.Scenarios)
		}
		if _, err := Merge(r, r); err != nil {
			t.Errorf("left-behind file does not merge: %v", err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("%d files in the results directory, want only gen-1.json", len(entries))
		}
	})
}

func TestLiveOff(t *testing.T) {
	l := &Live{}
	if err := l.Update(engine.Progress{Run: &engine.Stats{}}); err != nil {
		t.Errorf("Update without a directory: %v", err)
	}
}
