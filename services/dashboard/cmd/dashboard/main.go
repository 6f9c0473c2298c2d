// Command dashboard serves one web page that shows the socklab lab working:
// the lab's map (every service with its ports and transports, every loadgen
// replica, the capture), per service its live request rate, error rate,
// latency p50/p99 and open connections with the last minutes as small time
// plots, what the load generators ask and achieve by scenario, the
// capture's status and the impairments in force. It scrapes every
// service's /metrics once a second (all in parallel, each bounded in time),
// finds the loadgen replicas through the lab's DNS, and pushes each round's
// state to the page as server-sent events; GET /api/state returns the same
// state as JSON, and the impair tool PUTs /api/impairments.
//
// It reads DASHBOARD_ADDR, DASHBOARD_INTERVAL, DASHBOARD_SCRAPE_TIMEOUT,
// DASHBOARD_LOADGEN_HOST, DASHBOARD_CAPTURES, DASHBOARD_WINDOW,
// DASHBOARD_HISTORY, LOG_LEVEL, LOG_FORMAT, METRICS_ADDR and
// SHUTDOWN_TIMEOUT; flags of the same names win over them.
// `dashboard healthcheck` probes a running dashboard's listener.
package main

import (
	"context"
	"io"

	"github.com/socklab/socklab/services/dashboard/internal/server"
	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/lab"
)

const usage = `usage: dashboard [flags]
       dashboard healthcheck [flags]

Serves one web page of the lab working (GET /), its state as JSON
(GET /api/state) and as server-sent events (GET /api/events), and takes the
impairments in force from the impair tool (PUT /api/impairments).`

func main() { command.Main(run) }

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg server.Config
	return command.Server{
		Command:     command.Command{Name: "dashboard", Usage: usage, Settings: []command.Settings{command.Env(lab.Dashboard.EnvPrefix, &cfg)}},
		Healthcheck: func() []health.Probe { return []health.Probe{health.TCP(cfg.Addr, nil)} },
		Start:       func(_ context.Context, s *command.Setup) error { return server.Start(s, cfg) },
	}.Run(ctx, args, environ, stderr)
}
