package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Sample is what one implementation reached on one workload in one round:
// a line of `go test -bench` output, or the TSV rows of one external run.
type Sample struct {
	Workload string // package and benchmark without the impl= element: "autoreply/server TCP/conns=1/mode=closed"
	Impl     string // the impl= value ("ours", "raw", "perline"...); "" when the name has none
	Round    int    // 1 for the first occurrence of the name, 2 for the second...
	Units    []string
	Values   map[string]float64 // by unit
	// External rows compare every metric they carry; a Go benchmark
	// compares only its main one (see mainUnit).
	External bool
}

func (s *Sample) add(unit string, v float64) {
	if s.Values == nil {
		s.Values = map[string]float64{}
	}
	if _, ok := s.Values[unit]; !ok {
		s.Units = append(s.Units, unit)
	}
	s.Values[unit] = v
}

// Note is a benchmark that did not produce figures (failed or skipped), or
// an external measurement that was left out, with the reason.
type Note struct {
	Workload string
	Reason   string
}

// procs is the -GOMAXPROCS suffix go test adds to benchmark names.
var procs = regexp.MustCompile(`-[0-9]+$`)

// ParseGo reads `go test -bench` output, possibly of several packages and
// modules one after another (each result belongs to the last `pkg:` line),
// and returns its results in input order, each numbered by how many times
// its name has been seen, and the benchmarks reported as failed or skipped.
// A result line split by output the benchmark printed between its name
// and its figures is joined again.
func ParseGo(r io.Reader) ([]Sample, []Note, error) {
	var (
		samples []Sample
		notes   []Note
		pkg     string
		pending string // a benchmark name whose figures are on a later line
		why     *Note  // the last failure, waiting for its message
		seen    = map[string]int{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case fields[0] == "pkg:" && len(fields) == 2:
			pkg = fields[1]
			continue
		case fields[0] == "---" && len(fields) >= 3 &&
			(fields[1] == "FAIL:" || fields[1] == "SKIP:") && strings.HasPrefix(fields[2], "Benchmark"):
			w, impl := workload(pkg, fields[2])
			if impl != "" {
				w += " impl=" + impl
			}
			// A parent fails with its sub-benchmark: one note is enough.
			if !slices.ContainsFunc(notes, func(n Note) bool { return strings.HasPrefix(n.Workload, w+"/") }) {
				reason := "failed"
				if fields[1] == "SKIP:" {
					reason = "skipped"
				}
				notes = append(notes, Note{w, reason})
				why = &notes[len(notes)-1]
			}
			continue
		case fields[0] == "FAIL" && len(fields) >= 3 && strings.HasPrefix(fields[2], "[") && strings.HasSuffix(line, "failed]"):
			// "FAIL <TAB> import/path [build failed]": none of its benchmarks ran.
			notes = append(notes, Note{shortPkg(fields[1]), strings.Trim(strings.Join(fields[2:], " "), "[]")})
			continue
		case why != nil && strings.Contains(fields[0], ".go:") && line != strings.TrimLeft(line, " \t"):
			// The first message of the failure: "    x_test.go:12: why".
			why.Reason += ": " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0]))
			why = nil
			continue
		}
		why = nil
		name := pending
		figures := fields
		if strings.HasPrefix(fields[0], "Benchmark") {
			name, figures = fields[0], fields[1:]
			if len(figures) == 0 {
				pending = name
				continue
			}
		}
		if name == "" {
			continue
		}
		s, ok := parseFigures(figures)
		if !ok {
			continue
		}
		pending = ""
		name = procs.ReplaceAllString(name, "")
		key := pkg + "\x00" + name
		seen[key]++
		s.Workload, s.Impl = workload(pkg, name)
		s.Round = seen[key]
		samples = append(samples, s)
	}
	return samples, notes, sc.Err()
}

// parseFigures parses "N  v1 unit1  v2 unit2 ...", the figures of a
// result line after its name.
func parseFigures(fields []string) (Sample, bool) {
	var s Sample
	if len(fields) < 3 || len(fields)%2 != 1 {
		return s, false
	}
	if _, err := strconv.ParseUint(fields[0], 10, 64); err != nil {
		return s, false
	}
	for i := 1; i+1 < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return s, false
		}
		s.add(fields[i+1], v)
	}
	return s, true
}

// workload names a benchmark by its package below services/ (without
// "internal/") and its name without "Benchmark", the GOMAXPROCS suffix and
// the impl= element, which it returns apart.
func workload(pkg, name string) (w, impl string) {
	name = procs.ReplaceAllString(strings.TrimPrefix(name, "Benchmark"), "")
	var parts []string
	for _, p := range strings.Split(name, "/") {
		if v, ok := strings.CutPrefix(p, "impl="); ok {
			impl = v
			continue
		}
		parts = append(parts, p)
	}
	if pkg = shortPkg(pkg); pkg == "" {
		return strings.Join(parts, "/"), impl
	}
	return pkg + " " + strings.Join(parts, "/"), impl
}

// shortPkg is the part of an import path below services/, without
// "internal/".
func shortPkg(pkg string) string {
	if _, rest, ok := strings.Cut(pkg, "/services/"); ok {
		return strings.Replace(rest, "/internal/", "/", 1)
	}
	return pkg
}

// ParseTSV reads external measurements, one figure per line:
//
//	workload <TAB> round <TAB> impl <TAB> metric <TAB> value
//
// Blank lines and lines starting with # are ignored. A line with impl
// "skipped" records that the workload was not measured; its last field is
// the reason (round and metric are "-"). Lines with the same workload,
// round and impl make one Sample.
func ParseTSV(r io.Reader) ([]Sample, []Note, error) {
	var (
		samples []Sample
		notes   []Note
		index   = map[string]int{}
	)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return nil, nil, fmt.Errorf("line %d: %d fields, want 5 (workload, round, impl, metric, value)", n, len(f))
		}
		if f[0] == "" {
			return nil, nil, fmt.Errorf("line %d: empty workload", n)
		}
		if f[2] == "skipped" {
			notes = append(notes, Note{f[0], "skipped: " + f[4]})
			continue
		}
		round, err := strconv.Atoi(f[1])
		if err != nil || round < 1 {
			return nil, nil, fmt.Errorf("line %d: round %q is not a positive integer", n, f[1])
		}
		v, err := strconv.ParseFloat(f[4], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: value %q is not a number", n, f[4])
		}
		if f[2] == "" || f[3] == "" {
			return nil, nil, fmt.Errorf("line %d: empty impl or metric", n)
		}
		key := f[0] + "\x00" + f[1] + "\x00" + f[2]
		i, ok := index[key]
		if !ok {
			i = len(samples)
			index[key] = i
			samples = append(samples, Sample{Workload: f[0], Impl: f[2], Round: round, External: true})
		}
		samples[i].add(f[3], v)
	}
	return samples, notes, sc.Err()
}
