package engine

import (
	"testing"
	"time"
)

func TestPacerAt(t *testing.T) {
	tests := []struct {
		rate float64
		n    int64
		want time.Duration
	}{
		{rate: 1, n: 0, want: 0},
		{rate: 1, n: 3, want: 3 * time.Second},
		{rate: 1000, n: 1, want: time.Millisecond},
		{rate: 1000, n: 1500, want: 1500 * time.Millisecond},
		{rate: 3, n: 1, want: 333333333},
		{rate: 3, n: 2, want: 666666667},
		{rate: 0.5, n: 2, want: 4 * time.Second},
		{rate: 1e6, n: 86400e6, want: 24 * time.Hour}, // a day at a million per second, still exact
	}
	for _, tt := range tests {
		if got := (Pacer{Rate: tt.rate}).At(tt.n); got != tt.want {
			t.Errorf("Pacer{%v}.At(%d) = %v, want %v", tt.rate, tt.n, got, tt.want)
		}
	}
}

func TestPacerDue(t *testing.T) {
	tests := []struct {
		rate    float64
		elapsed time.Duration
		want    int64
	}{
		{rate: 10, elapsed: -time.Second, want: 0},
		{rate: 10, elapsed: 0, want: 1}, // the first request is due at the start
		{rate: 10, elapsed: 99 * time.Millisecond, want: 1},
		{rate: 10, elapsed: 100 * time.Millisecond, want: 2},
		{rate: 10, elapsed: time.Second, want: 11},
		{rate: 3, elapsed: 333333332, want: 1},
		{rate: 3, elapsed: 333333333, want: 2},
		{rate: 1000, elapsed: 10 * time.Second, want: 10001},
	}
	for _, tt := range tests {
		if got := (Pacer{Rate: tt.rate}).Due(tt.elapsed); got != tt.want {
			t.Errorf("Pacer{%v}.Due(%v) = %d, want %d", tt.rate, tt.elapsed, got, tt.want)
		}
	}
}

// Due and At agree everywhere: exactly the requests at or before elapsed
// are due, for awkward rates over many instants.
func TestPacerDueAgreesWithAt(t *testing.T) {
	for _, rate := range []float64{1, 7, 33.3, 1000, 12345.6} {
		p := Pacer{Rate: rate}
		for e := time.Duration(0); e < 3*time.Second; e += 999_983 * time.Nanosecond {
			n := p.Due(e)
			if p.At(n-1) > e || p.At(n) <= e {
				t.Fatalf("rate %v: Due(%v) = %d, but At(%d) = %v and At(%d) = %v",
					rate, e, n, n-1, p.At(n-1), n, p.At(n))
			}
		}
	}
}
