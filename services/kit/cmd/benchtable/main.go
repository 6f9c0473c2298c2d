// Command benchtable prints `make bench` as one markdown table: each of our
// implementations against its references, workload by workload.
//
//	benchtable [-tsv FILE] [GO-BENCH-OUTPUT...]
//
// It reads `go test -bench` output (files, or standard input when none is
// named; several packages and modules may follow one another) and pairs
// every benchmark whose name has an element impl=ours (or impl=ours+...)
// with the benchmarks of the same name and another impl= (raw, perline,
// iperf3...). The k-th result of a name is round k: the ratio ours/ref is
// taken round by round on the metric that matters (MB/s, else ops/s, else
// the first custom metric), and the table shows its median, min and max
// against the target the issues set. -tsv adds external measurements (see
// ParseTSV), compared on every metric they carry. Memory per ID, heap and
// loss figures get rows of their own.
//
// It reads no environment variables.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchtable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: benchtable [-tsv FILE] [GO-BENCH-OUTPUT...]\n\n"+
			"Pairs impl=ours benchmarks with their references (impl=raw, ...) round by round\n"+
			"and prints one markdown table. Reads standard input when no file is named.")
		fs.PrintDefaults()
	}
	tsv := fs.String("tsv", "", "external measurements: workload, round, impl, metric, value (tab-separated)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	samples, notes, err := read(fs.Args(), *tsv, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "benchtable:", err)
		return 1
	}
	if len(samples) == 0 && len(notes) == 0 {
		fmt.Fprintln(stderr, "benchtable: no benchmark results in the input")
		return 1
	}
	if err := Render(stdout, Build(samples), notes); err != nil {
		fmt.Fprintln(stderr, "benchtable:", err)
		return 1
	}
	return 0
}

func read(files []string, tsv string, stdin io.Reader) ([]Sample, []Note, error) {
	var samples []Sample
	var notes []Note
	parse := func(r io.Reader, name string, p func(io.Reader) ([]Sample, []Note, error)) error {
		s, n, err := p(r)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		samples, notes = append(samples, s...), append(notes, n...)
		return nil
	}
	if len(files) == 0 {
		if err := parse(stdin, "standard input", ParseGo); err != nil {
			return nil, nil, err
		}
	}
	open := func(name string, p func(io.Reader) ([]Sample, []Note, error)) error {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		return parse(f, name, p)
	}
	for _, name := range files {
		if err := open(name, ParseGo); err != nil {
			return nil, nil, err
		}
	}
	if tsv != "" {
		if err := open(tsv, ParseTSV); err != nil {
			return nil, nil, err
		}
	}
	return samples, notes, nil
}
