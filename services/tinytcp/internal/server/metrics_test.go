package server

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBatchHistogram(t *testing.T) {
	h := newBatchHistogram(prometheus.NewDesc("test_seconds", "Test.", nil, nil), []float64{0.001, 0.01, 0.1})
	h.observeN(0.0005, 3) // first bucket
	h.observeN(0.001, 2)  // on a bound: that bucket ("le")
	h.observeN(0.05, 1)
	h.observeN(7, 4) // +Inf only
	want := `
# HELP test_seconds Test.
# TYPE test_seconds histogram
test_seconds_bucket{le="0.001"} 5
test_seconds_bucket{le="0.01"} 5
test_seconds_bucket{le="0.1"} 6
test_seconds_bucket{le="+Inf"} 10
test_seconds_sum 28.0535
test_seconds_count 10
`
	if err := testutil.CollectAndCompare(h, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestBatchHistogramConcurrent(t *testing.T) {
	h := newBatchHistogram(prometheus.NewDesc("test_seconds", "Test.", nil, nil), []float64{1})
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				h.observeN(0.5, 2)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if got := h.counts[0].Load(); got != 8000 {
		t.Errorf("bucket count = %d, want 8000", got)
	}
	if got := math.Float64frombits(h.sumBits.Load()); got != 4000 {
		t.Errorf("sum = %v, want 4000", got)
	}
}
