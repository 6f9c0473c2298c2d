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
	"io"

	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/loadgen/internal/plan"
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

func main() { command.Main(run) }

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
	return command.Server{
		Command:      command.Command{Name: "loadgen", Usage: usage, Settings: []command.Settings{command.Env(plan.Prefix, &cfg)}},
		Healthcheck:  func() []health.Probe { return nil }, // METRICS_ADDR only
		ProbeMetrics: true,
		Main:         func(ctx context.Context, s *command.Setup) error { return load(ctx, s, cfg, environ, stdout, stderr) },
	}.Run(ctx, args, environ, stderr)
}
