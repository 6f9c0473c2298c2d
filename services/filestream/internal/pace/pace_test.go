package pace

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	tests := []struct {
		name string
		give Schedule
		now  time.Time
		want int
	}{
		{"before start", Schedule{t0, 10 * ms, 5}, t0.Add(-ms), 0},
		{"at start", Schedule{t0, 10 * ms, 5}, t0, 1},
		{"just before second", Schedule{t0, 10 * ms, 5}, t0.Add(10*ms - 1), 1},
		{"at second", Schedule{t0, 10 * ms, 5}, t0.Add(10 * ms), 2},
		{"late", Schedule{t0, 10 * ms, 5}, t0.Add(35 * ms), 4},
		{"capped", Schedule{t0, 10 * ms, 5}, t0.Add(time.Hour), 5},
		{"zero interval", Schedule{t0, 0, 5}, t0, 5},
		{"no packets", Schedule{t0, ms, 0}, t0.Add(time.Hour), 0},
	}
	for _, tt := range tests {
		if got := tt.give.Due(tt.now); got != tt.want {
			t.Errorf("%s: Due(%v) = %d, want %d", tt.name, tt.now.Sub(t0), got, tt.want)
		}
	}
}

// TestRunExact checks, on the fake clock of a synctest bubble, that every
// packet leaves exactly at its due time even though sending takes time.
func TestRunExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Schedule{Start: time.Now(), Interval: 10 * time.Millisecond, Count: 100}
		var at []time.Time
		err := Run(t.Context(), s, func(i int) error {
			at = append(at, time.Now())
			time.Sleep(3 * time.Millisecond) // sending is slow: must not add up
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(at) != s.Count {
			t.Fatalf("sent %d packets, want %d", len(at), s.Count)
		}
		for i, got := range at {
			if want := s.At(i); !got.Equal(want) {
				t.Fatalf("packet %d sent at +%v, want +%v", i, got.Sub(s.Start), want.Sub(s.Start))
			}
		}
	})
}

// TestRunCatchesUp: a sender stalled for 35 intervals sends the overdue
// packets at once and keeps the original schedule afterwards.
func TestRunCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Schedule{Start: time.Now(), Interval: time.Millisecond, Count: 50}
		var at []time.Duration
		Run(t.Context(), s, func(i int) error {
			at = append(at, time.Since(s.Start))
			if i == 2 {
				time.Sleep(35 * time.Millisecond)
			}
			return nil
		})
		want := map[int]time.Duration{0: 0, 2: 2 * time.Millisecond, 3: 37 * time.Millisecond, 37: 37 * time.Millisecond, 38: 38 * time.Millisecond, 49: 49 * time.Millisecond}
		for i, w := range want {
			if at[i] != w {
				t.Errorf("packet %d at +%v, want +%v", i, at[i], w)
			}
		}
	})
}

func TestRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s := Schedule{Start: time.Now(), Interval: time.Second, Count: 10}
		sent := 0
		go func() {
			time.Sleep(2500 * time.Millisecond)
			cancel()
		}()
		err := Run(ctx, s, func(int) error { sent++; return nil })
		if !errors.Is(err, context.Canceled) || sent != 3 {
			t.Fatalf("Run = %v after %d packets, want Canceled after 3", err, sent)
		}
		boom := errors.New("boom")
		err = Run(t.Context(), s, func(i int) error {
			if i == 1 {
				return boom
			}
			return nil
		})
		if err != boom {
			t.Fatalf("Run = %v, want the send error", err)
		}
	})
}
