// Package latency records round-trip times in an HdrHistogram, so that a
// client running for hours keeps constant memory and reports exact
// percentiles (to three significant figures), and histograms from several
// generators merge into one.
package latency

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Bounds of what a Recorder holds, in microseconds: 1µs to 10 minutes.
const (
	lowest  = 1
	highest = int64(10 * time.Minute / time.Microsecond)
	figures = 3
)

// Recorder accumulates durations. It is not safe for concurrent use.
type Recorder struct {
	h *hdrhistogram.Histogram
}

// New returns an empty Recorder.
func New() *Recorder {
	return &Recorder{h: hdrhistogram.New(lowest, highest, figures)}
}

// Record adds one duration; values outside the bounds are clamped.
func (r *Recorder) Record(d time.Duration) {
	us := int64(d / time.Microsecond)
	us = min(max(us, lowest), highest)
	r.h.RecordValue(us)
}

// Merge adds every value of o into r.
func (r *Recorder) Merge(o *Recorder) { r.h.Merge(o.h) }

// Histogram exposes the underlying histogram, to export or merge it.
func (r *Recorder) Histogram() *hdrhistogram.Histogram { return r.h }

// FromHistogram wraps h.
func FromHistogram(h *hdrhistogram.Histogram) *Recorder { return &Recorder{h: h} }

// Count reports how many durations were recorded.
func (r *Recorder) Count() int64 { return r.h.TotalCount() }

// Summary is the usual set of order statistics.
type Summary struct {
	Count                         int64
	Min, P50, P90, P99, P999, Max time.Duration
}

// Summary computes the order statistics.
func (r *Recorder) Summary() Summary {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Summary{
		Count: r.h.TotalCount(),
		Min:   us(r.h.Min()),
		P50:   us(r.h.ValueAtQuantile(50)),
		P90:   us(r.h.ValueAtQuantile(90)),
		P99:   us(r.h.ValueAtQuantile(99)),
		P999:  us(r.h.ValueAtQuantile(99.9)),
		Max:   us(r.h.Max()),
	}
}

// String formats the summary on one line.
func (s Summary) String() string {
	if s.Count == 0 {
		return "rtt: no samples"
	}
	return fmt.Sprintf("rtt min/p50/p90/p99/max = %v/%v/%v/%v/%v",
		s.Min, s.P50, s.P90, s.P99, s.Max)
}
