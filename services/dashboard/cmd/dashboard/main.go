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
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/dashboard/internal/collect"
	"github.com/socklab/socklab/services/dashboard/internal/scrape"
	"github.com/socklab/socklab/services/dashboard/internal/state"
	"github.com/socklab/socklab/services/dashboard/internal/web"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/service"
)

const usage = `usage: dashboard [flags]
       dashboard healthcheck [flags]

Serves one web page of the lab working (GET /), its state as JSON
(GET /api/state) and as server-sent events (GET /api/events), and takes the
impairments in force from the impair tool (PUT /api/impairments).`

// Config is the dashboard's settings.
type Config struct {
	Addr          string        `env:"ADDR" envDefault:":8080" flag:"addr" help:"listen address of the page, HOST:PORT"`
	Interval      time.Duration `env:"INTERVAL" envDefault:"1s" flag:"interval" help:"time between scrape rounds"`
	ScrapeTimeout time.Duration `env:"SCRAPE_TIMEOUT" envDefault:"800ms" flag:"scrape-timeout" help:"longest wait for one target's /metrics"`
	LoadgenHost   string        `env:"LOADGEN_HOST" envDefault:"loadgen" flag:"loadgen-host" help:"DNS name that resolves to every loadgen replica"`
	Captures      string        `env:"CAPTURES" envDefault:"/captures" flag:"captures" help:"directory of the capture's status file (empty: none)"`
	Window        time.Duration `env:"WINDOW" envDefault:"5s" flag:"window" help:"span rates and percentiles are measured over"`
	History       time.Duration `env:"HISTORY" envDefault:"3m" flag:"history" help:"how far back the time plots go"`
}

func main() {
	ctx, stop := service.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(err, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg Config
	cmd, err := service.ParseCommand("dashboard", usage, lab.Dashboard.EnvPrefix, &cfg, args, environ, stderr)
	if err != nil {
		return err
	}
	if err := service.NoArgs(cmd.Rest); err != nil {
		return err
	}
	if cfg.Interval <= 0 || cfg.ScrapeTimeout <= 0 || cfg.Window <= 0 || cfg.History <= 0 {
		return service.Usage(errors.New("interval, scrape timeout, window and history must be positive"))
	}
	if cmd.Healthcheck {
		return health.Check(ctx, 3*time.Second, health.TCP(cfg.Addr, nil))
	}

	log, err := service.NewLogger(cmd.Common, "dashboard", stderr)
	if err != nil {
		return service.Usage(err)
	}
	defer log.Sync()

	reg := metrics.NewRegistry()
	roundSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "dashboard", Name: "scrape_round_seconds",
		Help: "Wall time of a scrape round (every target in parallel).", Buckets: metrics.LatencyBuckets,
	})
	scrapeFailures := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "dashboard", Name: "scrape_failures_total", Help: "Targets that did not answer a round.",
	})
	reg.MustRegister(roundSeconds, scrapeFailures)

	model := state.New(lab.Services())
	model.Window, model.Keep, model.Interval = cfg.Window, cfg.History, cfg.Interval
	hub := web.NewHub()
	disc := &scrape.Discovery{
		Services: lab.Services(), LoadgenHost: cfg.LoadgenHost, Port: lab.MetricsPort,
		Resolver: net.DefaultResolver, Timeout: cfg.ScrapeTimeout,
	}
	col := &collect.Collector{
		Interval: cfg.Interval, Targets: disc.Targets, Model: model, CapturesDir: cfg.Captures,
		Scraper: &scrape.Scraper{Timeout: cfg.ScrapeTimeout, Client: &http.Client{}},
		Publish: hub.Publish, Log: log,
		Observe: func(took time.Duration, failed int) {
			roundSeconds.Observe(took.Seconds())
			scrapeFailures.Add(float64(failed))
		},
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           (&web.Server{Model: model, Hub: hub, Log: log}).Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
	}
	// Event streams never end by themselves: Shutdown ends them.
	srv.RegisterOnShutdown(hub.Close)
	log.Info("listening", zap.Stringer("addr", ln.Addr()))
	units := []service.Unit{
		{
			Name:     "http",
			Serve:    func() error { return srv.Serve(ln) },
			Shutdown: srv.Shutdown,
			Closed:   func(err error) bool { return errors.Is(err, http.ErrServerClosed) },
			Close:    ln.Close,
			Addr:     ln.Addr(),
		},
		service.Job("scrape", col.Run),
	}
	if cmd.Common.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cmd.Common.MetricsAddr)
		if err != nil {
			ln.Close()
			return err
		}
		units = append(units, metrics.Unit(mln, reg))
		log.Info("metrics", zap.Stringer("addr", mln.Addr()))
	}
	return service.Run(ctx, log, cmd.Common.ShutdownTimeout, units...)
}
