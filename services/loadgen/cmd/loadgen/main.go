// Command loadgen is the lab's load generator: it sends requests of one
// scenario (or a weighted mix) to the lab's servers in an open loop at a
// fixed rate or a closed loop at a fixed concurrency, checks every answer,
// and reports requests, errors by kind, throughput and HdrHistogram latency
// percentiles, with coordinated omission corrected in the open loop.
// Scaled generators each write a result file; `loadgen merge` combines them.
//
// It reads LOADGEN_SCENARIO, LOADGEN_MIX, LOADGEN_TARGET and
// LOADGEN_TARGET_<SCENARIO>, LOADGEN_RATE, LOADGEN_CONNECTIONS,
// LOADGEN_CONCURRENCY, LOADGEN_DURATION, LOADGEN_REQUESTS, LOADGEN_TIMEOUT,
// LOADGEN_SIZE, LOADGEN_FILE_SIZE, LOADGEN_STREAM_COUNT,
// LOADGEN_STREAM_INTERVAL, LOADGEN_STREAM_SIZE, LOADGEN_ID,
// LOADGEN_RESULTS, LOADGEN_JSON, LOADGEN_PROGRESS, LOG_LEVEL, LOG_FORMAT,
// METRICS_ADDR and SHUTDOWN_TIMEOUT; flags of the same names win over them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/loadgen/internal/plan"
	"github.com/socklab/socklab/services/loadgen/internal/progress"
	"github.com/socklab/socklab/services/loadgen/internal/result"
	"github.com/socklab/socklab/services/loadgen/internal/scenario"
)

const usage = `usage: loadgen [flags]                   run a load and print its summary
       loadgen merge [-json] [-since D] FILE|DIR...
                                         combine result files into one report
       loadgen scenarios                  list the scenarios and their targets
       loadgen healthcheck                probe METRICS_ADDR (exit 0 when it answers or is unset)

Sends the requests of a scenario (or a weighted mix, -scenario mix) and checks
every answer. Open loop with -rate (requests/s over -connections; latency from
when each request was due, so a stalled server cannot hide); otherwise closed
loop with -concurrency (default: -connections) requests in flight. Stops after
-duration and/or -requests (10s when neither is given). Each scenario's target
defaults to the lab's DNS name and port; LOADGEN_TARGET_<SCENARIO> (such as
LOADGEN_TARGET_AUTOREPLY_TCP) or -target changes it.`

func main() {
	ctx, stop := service.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(err, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "merge":
			return runMerge(args[1:], stdout, stderr)
		case "scenarios":
			return listScenarios(args[1:], environ, stdout)
		}
	}
	var cfg plan.Config
	var common service.Common
	set := config.NewSet("loadgen", usage, environ, stderr)
	if err := set.Add(plan.Prefix, &cfg); err != nil {
		return service.Usage(err)
	}
	if err := set.Add("", &common); err != nil {
		return service.Usage(err)
	}
	healthcheck := len(args) > 0 && args[0] == "healthcheck"
	if healthcheck {
		args = args[1:]
	}
	rest, err := set.Parse(args)
	if err != nil {
		return service.Usage(err)
	}
	if len(rest) > 0 {
		return service.Usage(fmt.Errorf("unexpected arguments %q", rest))
	}
	if healthcheck {
		if common.MetricsAddr == "" {
			return nil
		}
		return health.Check(ctx, 3*time.Second, health.TCP(common.MetricsAddr, nil))
	}
	if cfg.ID == "" {
		cfg.ID, _ = os.Hostname()
	}
	p, err := plan.Build(cfg, environ)
	if err != nil {
		return service.Usage(err)
	}
	log, err := service.NewLogger(common, "loadgen", stderr)
	if err != nil {
		return service.Usage(err)
	}
	defer log.Sync()

	reg := metrics.NewRegistry()
	m := progress.NewMetrics(reg)
	stopMetrics := func() {}
	if common.MetricsAddr != "" {
		ln, err := net.Listen("tcp", common.MetricsAddr)
		if err != nil {
			return err
		}
		log.Info("metrics", zap.Stringer("addr", ln.Addr()))
		mctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { service.Run(mctx, log, common.ShutdownTimeout, metrics.Unit(ln, reg)) })
		stopMetrics = func() { cancel(); wg.Wait() }
	}
	defer stopMetrics()

	printer := &progress.Printer{W: stderr, JSON: cfg.JSON, Live: !cfg.JSON && isTerminal(stderr)}
	tick := cfg.Progress
	if tick == 0 {
		tick = time.Second
	}
	p.Engine.Tick = tick
	live := &result.Live{Meta: p.Meta, Dir: cfg.Results}
	p.Engine.OnTick = func(pr engine.Progress) {
		m.Update(pr)
		if err := live.Update(pr); err != nil {
			log.Warn("result not rewritten", zap.Error(err))
		}
		if cfg.Progress > 0 {
			printer.Print(pr)
		}
	}
	log.Info("starting", zap.String("id", cfg.ID), zap.String("scenario", cfg.Scenario),
		zap.Any("targets", p.Targets), zap.Float64("rate", p.Engine.Rate), zap.Int("connections", p.Engine.Workers),
		zap.Duration("duration", p.Engine.Duration), zap.Int64("requests", p.Engine.Requests))

	st, err := engine.Run(ctx, p.Engine)
	if err != nil {
		return service.Usage(err)
	}
	if ctx.Err() != nil {
		log.Warn("interrupted; the summary covers what ran", zap.String("cause", context.Cause(ctx).Error()))
	}
	res := result.New(p.Meta, st)
	if cfg.Results != "" {
		path, err := res.WriteFile(cfg.Results)
		if err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		log.Info("result written", zap.String("path", path))
	}
	if cfg.JSON {
		err = res.Encode(stdout)
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if res.Requests > 0 && res.Successes == 0 {
		return errors.New("no request succeeded" + kindsNote(res.Errors))
	}
	return nil
}

func kindsNote(m map[string]int64) string {
	var kinds []string
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	if len(kinds) == 0 {
		return ""
	}
	return " (" + strings.Join(kinds, ", ") + ")"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

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

func listScenarios(args, environ []string, stdout io.Writer) error {
	if len(args) > 0 {
		return service.Usage(fmt.Errorf("scenarios takes no arguments, got %q", args))
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, s := range scenario.Specs {
		target := s.Target
		if v := env[plan.TargetEnv(s.Name)]; v != "" {
			target = v
		}
		proto := "tcp"
		if s.Datagram {
			proto = "udp"
		}
		fmt.Fprintf(stdout, "%-18s %s %-40s $%s\n    %s\n", s.Name, proto, target, plan.TargetEnv(s.Name), s.Help)
	}
	fmt.Fprintf(stdout, "%-18s a weighted mix of the above, set by -mix NAME=WEIGHT,...\n", scenario.Mix)
	return nil
}
