// Package collect runs the dashboard's scrape rounds: once a second it
// finds the targets, scrapes them all in parallel, reads the capture's
// status file, feeds the model and publishes the new state.
package collect

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/dashboard/internal/scrape"
	"github.com/socklab/socklab/services/dashboard/internal/state"
)

// Collector runs rounds.
type Collector struct {
	Interval time.Duration
	Targets  func(ctx context.Context) []scrape.Target
	Scraper  *scrape.Scraper
	Model    *state.Model
	// CapturesDir holds the capture's status file ("": no capture).
	CapturesDir string
	// Publish, when set, receives the state as JSON after each round.
	Publish func([]byte)
	// Observe, when set, is told each round's time and failed targets.
	Observe func(took time.Duration, failed int)
	Log     *zap.Logger
}

// Run does a round every Interval until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		c.Round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round does one round.
func (c *Collector) Round(ctx context.Context) {
	targets := c.Targets(ctx)
	results, took := c.Scraper.Round(ctx, targets)
	if ctx.Err() != nil {
		return
	}
	r := state.Round{At: time.Now(), Took: took, Results: results}
	if c.CapturesDir != "" {
		r.Capture, r.CaptureErr = state.ReadCaptureStatus(c.CapturesDir)
	}
	c.Model.Ingest(r)
	failed := 0
	for _, res := range results {
		if res.Err != nil {
			failed++
		}
	}
	if c.Observe != nil {
		c.Observe(took, failed)
	}
	if c.Publish != nil {
		b, err := json.Marshal(c.Model.State())
		if err != nil {
			c.Log.Error("state", zap.Error(err))
			return
		}
		c.Publish(b)
	}
}
