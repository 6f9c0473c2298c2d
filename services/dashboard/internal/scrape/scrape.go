// Package scrape fetches the lab's Prometheus /metrics pages, all of a round
// in parallel, each bounded in time and size, and parses them with
// prometheus/common's expfmt (the Prometheus text format's own parser).
package scrape

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MaxBody bounds a /metrics page: a lab container's is some tens of kB.
const MaxBody = 4 << 20

// Target is one /metrics endpoint.
type Target struct {
	// Node names what serves it: a compose service ("moviedb-2") or a
	// loadgen replica ("socklab-loadgen-1").
	Node string `json:"node"`
	// Service is the lab map's service name ("moviedb", "loadgen").
	Service string `json:"service"`
	// Addr is HOST:PORT of the metrics listener.
	Addr string `json:"addr"`
}

// Result is one target's outcome in a round.
type Result struct {
	Target
	Families map[string]*dto.MetricFamily
	Err      error
	Took     time.Duration
}

// Scraper fetches targets.
type Scraper struct {
	// Client makes the requests; nil means a client without keep-alive
	// limits of its own (the timeout bounds each request).
	Client *http.Client
	// Timeout bounds each target's request, body included.
	Timeout time.Duration
}

// Round scrapes every target at once and returns their results in the
// order of targets, and how long the whole round took.
func (s *Scraper) Round(ctx context.Context, targets []Target) ([]Result, time.Duration) {
	start := time.Now()
	out := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			t0 := time.Now()
			fams, err := s.Fetch(ctx, t.Addr)
			out[i] = Result{Target: t, Families: fams, Err: err, Took: time.Since(t0)}
		})
	}
	wg.Wait()
	return out, time.Since(start)
}

// Fetch gets and parses http://addr/metrics.
func (s *Scraper) Fetch(ctx context.Context, addr string) (map[string]*dto.MetricFamily, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	// The text format: every lab service serves it, and expfmt parses it.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxBody {
		return nil, errors.New("metrics page larger than 4 MiB")
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return fams, nil
}
