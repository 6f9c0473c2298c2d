// Package server wires the dashboard together: the scrape loop that fills
// the state model, and the HTTP server of the page, its JSON API and its
// event stream.
package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/dashboard/internal/collect"
	"github.com/socklab/socklab/services/dashboard/internal/scrape"
	"github.com/socklab/socklab/services/dashboard/internal/state"
	"github.com/socklab/socklab/services/dashboard/internal/web"
	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/service"
)

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

// Validate checks the durations.
func (c *Config) Validate() error {
	if c.Interval <= 0 || c.ScrapeTimeout <= 0 || c.Window <= 0 || c.History <= 0 {
		return errors.New("interval, scrape timeout, window and history must be positive")
	}
	return nil
}

// Start builds the dashboard of cfg on s: the page's HTTP server and the
// scrape loop beside it.
func Start(s *command.Setup, cfg Config) error {
	f := metrics.For(s.Metrics, "dashboard")
	roundSeconds := f.Histogram("scrape_round_seconds",
		"Wall time of a scrape round (every target in parallel).", metrics.LatencyBuckets)
	scrapeFailures := f.Counter("scrape_failures_total", "Targets that did not answer a round.")

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
		Publish: hub.Publish, Log: s.Log,
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
		Handler:           (&web.Server{Model: model, Hub: hub, Log: s.Log}).Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
	}
	// Event streams never end by themselves: Shutdown ends them.
	srv.RegisterOnShutdown(hub.Close)
	s.Log.Info("listening", zap.Stringer("addr", ln.Addr()))
	s.Add(service.Unit{
		Name:     "http",
		Serve:    func() error { return srv.Serve(ln) },
		Shutdown: func(ctx context.Context) error { return srv.Shutdown(ctx) },
		Closed:   func(err error) bool { return errors.Is(err, http.ErrServerClosed) },
		Close:    ln.Close,
		Addr:     ln.Addr(),
	}, service.Job("scrape", col.Run))
	return nil
}
