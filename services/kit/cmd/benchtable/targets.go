package main

import (
	"fmt"
	"strings"
)

// Target is a goal for the ratio ours/reference of a kind of row.
type Target struct {
	Prefix string // the rows whose workload starts with this ("" for all)
	Ref    string // against this reference implementation
	// AtMost: the ratio must stay at or below Value (a latency, lower is
	// better); otherwise it must reach at least Value (a throughput).
	AtMost bool
	Value  float64
	Issue  int // where the target was set
	// Absolute: Value bounds ours' own figure in every round (a row with
	// no reference, Ref ""), not a ratio.
	Absolute bool
}

func (t Target) String() string {
	if t.Absolute {
		op := "≥"
		if t.AtMost {
			op = "≤"
		}
		return fmt.Sprintf("%s %g every round", op, t.Value)
	}
	if t.AtMost {
		return fmt.Sprintf("≤ %g", t.Value)
	}
	return fmt.Sprintf("≥ %g", t.Value)
}

// Met reports whether ratio reaches the target.
func (t Target) Met(ratio float64) bool {
	if t.AtMost {
		return ratio <= t.Value
	}
	return ratio >= t.Value
}

// targets are the goals the issues set, most specific first: the first
// that matches a row's workload, reference and metric direction applies.
// The workloads of external rows are named by deploy/bench.sh.
var targets = []Target{
	{Prefix: "autoreply/", Ref: "raw", Value: 0.9, Issue: 2},
	{Prefix: "tinytcp/", Ref: "raw", Value: 0.9, Issue: 3},
	{Prefix: "tinytcp/", Ref: "perline", Value: 5, Issue: 3},
	{Prefix: "filestream/server TCPFile/size=123456789", Ref: "iperf3", Value: 0.8, Issue: 4},
	{Prefix: "connid/", Ref: "raw", Value: 0.8, Issue: 5},
	{Prefix: "moviedb/fleet Fanout/", Ref: "slowest-single", AtMost: true, Value: 1.2, Issue: 6},
	{Prefix: "loadgen/", Ref: "raw", Value: 0.95, Issue: 8},
	{Prefix: "open-loop p99 at 70% capacity", Ref: "raw", AtMost: true, Value: 1.3, Issue: 8},
	{Prefix: "lab throughput while recording socklab0/", Ref: "tcpdump", Value: 0.9, Issue: 12},
	{Prefix: "capture kernel drops", AtMost: true, Value: 0, Absolute: true, Issue: 12},
	// Issue 8: every "ours vs raw" ratio at least 0.9.
	{Prefix: "", Ref: "raw", Value: 0.9, Issue: 8},
}

// targetFor returns the target of a row, or nil when it has none (the
// lab against loopback, sockperf, the 1 MiB file against iperf3...).
func targetFor(workload, ref, unit string) *Target {
	for i, t := range targets {
		if strings.HasPrefix(workload, t.Prefix) && t.Ref == ref && t.AtMost == lowerIsBetter(unit) {
			return &targets[i]
		}
	}
	return nil
}

// lowerIsBetter reports whether a smaller value of unit is the better one:
// latencies, costs per operation, memory, loss, drops.
func lowerIsBetter(unit string) bool {
	for _, suffix := range []string{"/op", "-us", "-µs", "-ms", "-ns", "-MB", "B/id", "loss%", "drops"} {
		if strings.HasSuffix(unit, suffix) {
			return true
		}
	}
	return false
}
