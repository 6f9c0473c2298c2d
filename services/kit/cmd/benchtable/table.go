package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Row is one line of the table: ours against a reference on one metric,
// or a figure of ours alone (Ref == "").
type Row struct {
	Workload string
	Ours     string // the ours implementation ("ours", "ours+client"...)
	Ref      string // the reference implementation; "" for a figure alone
	Unit     string
	OursVal  float64   // median over rounds
	RefVal   float64   // median over rounds
	Ratios   []float64 // ours/ref, one per round both have
	Values   []float64 // ours by round, for a figure alone
	Target   *Target
}

// figures are metrics worth a row of their own wherever they appear, with
// no reference: memory per ID, heap, loss.
var figures = []string{"B/id", "heap-peak-MB", "heap-growth-MB", "loss%"}

// inline are benchmarks that measure their reference themselves and report
// both as metrics of one result: ours as the first unit, the reference as
// the second. They are split into two samples, impls "ours" and impl,
// compared on unit.
var inline = []struct{ ours, ref, impl, unit string }{
	{"fanout-p50-µs", "slowest-single-p50-µs", "slowest-single", "p50-µs"},
}

func isOurs(impl string) bool { return impl == "ours" || strings.HasPrefix(impl, "ours+") }

// splitInline replaces each sample carrying an inline pair by its two
// halves.
func splitInline(samples []Sample) []Sample {
	var out []Sample
	for _, s := range samples {
		split := false
		for _, in := range inline {
			o, ok1 := s.Values[in.ours]
			r, ok2 := s.Values[in.ref]
			if !ok1 || !ok2 || !isOurs(s.Impl) {
				continue
			}
			a := Sample{Workload: s.Workload, Impl: s.Impl, Round: s.Round}
			a.add(in.unit, o)
			b := Sample{Workload: s.Workload, Impl: in.impl, Round: s.Round}
			b.add(in.unit, r)
			out = append(out, a, b)
			split = true
			break
		}
		if !split {
			out = append(out, s)
		}
	}
	return out
}

// series is one implementation's samples on one workload, by round.
type series struct {
	impl   string
	units  []string // in the order of the first sample
	rounds map[int]Sample
	ext    bool
}

func (s *series) has(unit string) bool {
	for _, r := range s.rounds {
		if _, ok := r.Values[unit]; ok {
			return true
		}
	}
	return false
}

// values returns the figures of unit by round.
func (s *series) values(unit string) map[int]float64 {
	m := map[int]float64{}
	for k, r := range s.rounds {
		if v, ok := r.Values[unit]; ok {
			m[k] = v
		}
	}
	return m
}

// mainUnit is the metric a Go benchmark is compared on: the throughput it
// reports (MB/s, then ops/s), else its first custom metric, else ns/op.
func mainUnit(a, b *series) string {
	both := func(u string) bool { return a.has(u) && (b == nil || b.has(u)) }
	for _, u := range []string{"MB/s", "ops/s"} {
		if both(u) {
			return u
		}
	}
	for _, u := range a.units {
		if u != "ns/op" && u != "B/op" && u != "allocs/op" && !slices.Contains(figures, u) && both(u) {
			return u
		}
	}
	if both("ns/op") {
		return "ns/op"
	}
	return ""
}

// Build pairs every ours sample with the samples of the other
// implementations of the same workload, round by round, and returns the
// rows in the order the workloads first appear.
func Build(samples []Sample) []Row {
	samples = splitInline(samples)
	var order []string
	byWorkload := map[string][]*series{}
	for _, s := range samples {
		list, ok := byWorkload[s.Workload]
		if !ok {
			order = append(order, s.Workload)
		}
		var sr *series
		for _, x := range list {
			if x.impl == s.Impl {
				sr = x
			}
		}
		if sr == nil {
			sr = &series{impl: s.Impl, units: s.Units, rounds: map[int]Sample{}, ext: s.External}
			byWorkload[s.Workload] = append(list, sr)
		}
		sr.rounds[s.Round] = s
	}
	var rows []Row
	for _, w := range order {
		list := byWorkload[w]
		var refs []*series
		for _, s := range list {
			if !isOurs(s.impl) && s.impl != "" {
				refs = append(refs, s)
			}
		}
		for _, o := range list {
			if !isOurs(o.impl) {
				continue
			}
			for _, r := range refs {
				for _, u := range compared(o, r) {
					rows = append(rows, pair(w, o, r, u))
				}
			}
			if len(refs) == 0 {
				for _, u := range compared(o, nil) {
					// ns/op alone says nothing a custom metric would not.
					if u != "ns/op" {
						rows = append(rows, alone(w, o, u))
					}
				}
			}
		}
		for _, o := range list {
			if !isOurs(o.impl) && o.impl != "" {
				continue
			}
			for _, u := range figures {
				if o.has(u) {
					rows = append(rows, alone(w, o, u))
				}
			}
		}
	}
	return rows
}

// compared returns the units o and r are compared on: every unit of
// external measurements, the main one of a Go benchmark.
func compared(o, r *series) []string {
	if o.ext {
		var us []string
		for _, u := range o.units {
			if r == nil || r.has(u) {
				us = append(us, u)
			}
		}
		return us
	}
	if u := mainUnit(o, r); u != "" {
		return []string{u}
	}
	return nil
}

func pair(w string, o, r *series, unit string) Row {
	ov, rv := o.values(unit), r.values(unit)
	row := Row{Workload: w, Ours: o.impl, Ref: r.impl, Unit: unit, Target: targetFor(w, r.impl, unit)}
	var rounds []int
	for k := range ov {
		if _, ok := rv[k]; ok && rv[k] != 0 {
			rounds = append(rounds, k)
		}
	}
	if len(rounds) == 0 {
		row.OursVal, row.RefVal = median(mapValues(ov)), median(mapValues(rv))
		return row
	}
	// The figures shown are those of the rounds the ratio is taken on.
	slices.Sort(rounds)
	var oursVals, refVals []float64
	for _, k := range rounds {
		oursVals, refVals = append(oursVals, ov[k]), append(refVals, rv[k])
		row.Ratios = append(row.Ratios, ov[k]/rv[k])
	}
	row.OursVal, row.RefVal = median(oursVals), median(refVals)
	return row
}

func alone(w string, o *series, unit string) Row {
	vs := mapValues(o.values(unit))
	slices.Sort(vs)
	return Row{Workload: w, Ours: o.impl, Unit: unit, OursVal: median(vs), Values: vs, Target: targetFor(w, "", unit)}
}

func mapValues(m map[int]float64) []float64 {
	var vs []float64
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

// median of vs (NaN when empty); vs is not modified.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Render writes rows as one markdown table, then the notes.
func Render(w io.Writer, rows []Row, notes []Note) error {
	var b strings.Builder
	b.WriteString("| workload | ours | reference | ratio ours/ref: median (min–max, rounds) | target | met |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ours := num(r.OursVal) + " " + r.Unit
		if r.Ours != "ours" && r.Ours != "" {
			ours = r.Ours + ": " + ours
		}
		ref, ratio, target, met := "—", "—", "—", "—"
		if r.Ref != "" {
			ref = r.Ref + ": " + num(r.RefVal) + " " + r.Unit
			ratio = ratioCell(r.Ratios)
		}
		if lowerIsBetter(r.Unit) {
			ours += " (lower is better)"
		}
		if r.Target != nil && r.Target.Absolute && len(r.Values) > 1 {
			ours += fmt.Sprintf(", rounds %s–%s of %d", num(slices.Min(r.Values)), num(slices.Max(r.Values)), len(r.Values))
		}
		if r.Target != nil {
			target = r.Target.String()
			switch {
			case r.Target.Absolute:
				met = "yes"
				if len(r.Values) == 0 {
					met = "no data"
				}
				for _, v := range r.Values {
					if !r.Target.Met(v) {
						met = "**no**"
					}
				}
			case len(r.Ratios) == 0:
				met = "no data"
			case r.Target.Met(median(r.Ratios)):
				met = "yes"
			default:
				met = "**no**"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(r.Workload), cell(ours), cell(ref), ratio, target, met)
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "| %s | %s | — | — | — | — |\n", cell(n.Workload), cell(n.Reason))
	}
	b.WriteString("\nEach ratio pairs the k-th run of ours with the k-th run of the reference (one round),\n" +
		"then takes the median over rounds. Throughput: higher is better (ratio ≥ target).\n" +
		"Latency, cost and memory: lower is better, the ratio is still ours/ref (ratio ≤ target).\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func ratioCell(rs []float64) string {
	if len(rs) == 0 {
		return "no common round"
	}
	m := median(rs)
	if len(rs) == 1 {
		return fmt.Sprintf("%s (1 round)", ratio(m))
	}
	return fmt.Sprintf("%s (%s–%s, %d)", ratio(m), ratio(slices.Min(rs)), ratio(slices.Max(rs)), len(rs))
}

func ratio(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// num formats v with three significant digits and a k/M/G suffix.
func num(v float64) string {
	if math.IsNaN(v) {
		return "?"
	}
	a := math.Abs(v)
	for _, s := range []struct {
		from, div float64
		suffix    string
	}{{1e9, 1e9, "G"}, {1e6, 1e6, "M"}, {1e4, 1e3, "k"}} {
		if a >= s.from {
			return sig3(v/s.div) + s.suffix
		}
	}
	return sig3(v)
}

func sig3(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100 || a == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// cell escapes the characters that would break a markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
