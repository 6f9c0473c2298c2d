package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/loadgen/internal/result"
)

const mergeUsage = `usage: loadgen merge [-json] [-since DURATION] FILE|DIR...

Combines result files (written with -results) into the report one generator
doing all their requests would have printed: counters add up, latency
histograms merge, throughput is over the union of the times they ran. A
directory stands for every *.json file in it (a container has no shell to
expand results/*.json). -since 10m keeps only the results of runs that ended
in the last 10 minutes, leaving out generators that were scaled away; what
it leaves out is listed on stderr.`

func runMerge(args []string, stdout, stderr io.Writer) error {
	set := config.NewSet("loadgen merge", mergeUsage, nil, stderr)
	asJSON := set.FlagSet().Bool("json", false, "print the merged result as JSON (a result file itself)")
	since := set.FlagSet().Duration("since", 0, "only results of runs that ended within this long before now (0: all)")
	files, err := set.Parse(args)
	if err != nil {
		return service.Usage(err)
	}
	if *since < 0 {
		return service.Usage(fmt.Errorf("merge: -since %v is negative", *since))
	}
	if len(files) == 0 {
		return service.Usage(errors.New("merge: no result files given"))
	}
	files, err = expandDirs(files)
	if err != nil {
		return err
	}
	var rs []*result.Result
	for _, f := range files {
		r, err := result.ReadFile(f)
		if err != nil {
			return err
		}
		if *since > 0 && time.Since(r.End) > *since {
			fmt.Fprintf(stderr, "merge: leaving out %s (%s): it ended %s, more than %v ago\n",
				f, r.ID, r.End.UTC().Format(time.RFC3339), *since)
			continue
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return fmt.Errorf("merge: no result ended within the last %v", *since)
	}
	m, err := result.Merge(rs...)
	if err != nil {
		return err
	}
	if *asJSON {
		return m.Encode(stdout)
	}
	return m.WriteText(stdout)
}

// expandDirs replaces each directory in paths by the *.json files in it.
func expandDirs(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*.json"))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("merge: no *.json result files in %s", p)
		}
		out = append(out, matches...)
	}
	return out, nil
}
