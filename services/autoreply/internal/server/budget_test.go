package server

import (
	"net/netip"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	b := newBudget(300, 100)
	t0 := time.Unix(1000, 0)
	a := netip.MustParseAddr("192.0.2.1")
	steps := []struct {
		at      time.Duration
		in, out int
		want    bool
	}{
		{0, 0, 200, true},           // credit 300 -> 100
		{0, 0, 200, false},          // 100 < 200: withheld, balance kept
		{0, 50, 200, true},          // +150 = 250 -> 50
		{time.Second, 0, 150, true}, // refilled by 100 -> 0
		{time.Hour, 0, 300, true},   // refills to the credit, no further
		{time.Hour, 0, 1, false},
		{time.Hour, 1000, 3000, true}, // what it sent pays beyond the credit
	}
	for i, s := range steps {
		if got := b.allow(a, t0.Add(s.at), s.in, s.out); got != s.want {
			t.Errorf("step %d: allow(in %d, out %d) = %v, want %v", i, s.in, s.out, got, s.want)
		}
	}
	// Sources at full credit are forgotten when room is needed.
	b.prune(t0.Add(2 * time.Hour))
	if n := b.size(); n != 0 {
		t.Errorf("%d accounts after prune, want 0", n)
	}
}
