package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/loadgen/internal/plan"
	"github.com/socklab/socklab/services/loadgen/internal/progress"
	"github.com/socklab/socklab/services/loadgen/internal/result"
)

// load runs the load cfg asks for and prints its summary to stdout.
func load(ctx context.Context, s *command.Setup, cfg plan.Config, environ []string, stdout, stderr io.Writer) error {
	if cfg.ID == "" {
		cfg.ID, _ = os.Hostname()
	}
	p, err := plan.Build(cfg, environ)
	if err != nil {
		return service.Usage(err)
	}
	m := progress.NewMetrics(s.Metrics)
	printer := &progress.Printer{W: stderr, JSON: cfg.JSON, Live: !cfg.JSON && command.IsTerminal(stderr)}
	tick := cfg.Progress
	if tick == 0 {
		tick = time.Second
	}
	p.Engine.Tick = tick
	live := &result.Live{Meta: p.Meta, Dir: cfg.Results}
	p.Engine.OnTick = func(pr engine.Progress) {
		m.Update(pr)
		if err := live.Update(pr); err != nil {
			s.Log.Warn("result not rewritten", zap.Error(err))
		}
		if cfg.Progress > 0 {
			printer.Print(pr)
		}
	}
	s.Log.Info("starting", zap.String("id", cfg.ID), zap.String("scenario", cfg.Scenario),
		zap.Any("targets", p.Targets), zap.Float64("rate", p.Engine.Rate), zap.Int("connections", p.Engine.Workers),
		zap.Duration("duration", p.Engine.Duration), zap.Int64("requests", p.Engine.Requests))

	st, err := engine.Run(ctx, p.Engine)
	if err != nil {
		return service.Usage(err)
	}
	if ctx.Err() != nil {
		s.Log.Warn("interrupted; the summary covers what ran", zap.String("cause", context.Cause(ctx).Error()))
	}
	res := result.New(p.Meta, st)
	if cfg.Results != "" {
		path, err := res.WriteFile(cfg.Results)
		if err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		s.Log.Info("result written", zap.String("path", path))
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
