package latency_test

import (
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/latency"
)

func TestSummaryAndMerge(t *testing.T) {
	a, b := latency.New(), latency.New()
	for i := 1; i <= 50; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
	}
	for i := 51; i <= 100; i++ {
		b.Record(time.Duration(i) * time.Millisecond)
	}
	a.Merge(b)
	s := a.Summary()
	within := func(got, want time.Duration) bool { d := got - want; return d > -want/100 && d < want/100 }
	if s.Count != 100 || !within(s.Min, time.Millisecond) || !within(s.P50, 50*time.Millisecond) ||
		!within(s.P99, 99*time.Millisecond) || !within(s.Max, 100*time.Millisecond) {
		t.Errorf("summary of 1..100ms = %+v", s)
	}
	if got := latency.New().Summary().String(); got != "rtt: no samples" {
		t.Errorf("empty summary = %q", got)
	}
}
