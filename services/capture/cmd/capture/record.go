package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gopacket/gopacket/layers"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/capture/internal/capture"
	"github.com/socklab/socklab/services/capture/internal/filter"
	"github.com/socklab/socklab/services/capture/internal/live"
	"github.com/socklab/socklab/services/capture/internal/pcapfile"
	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/service"
)

// record opens the interface of cfg and hands s the recorder writing its
// packets that pass flt. A context ended while it waits for the interface
// leaves nothing to run.
func record(ctx context.Context, s *command.Setup, cfg capture.Config, flt *filter.Filter) error {
	if err := checkWritable(cfg.Dir); err != nil {
		return err
	}
	src, err := live.Open(ctx, live.Options{
		Iface: cfg.Iface, Snaplen: cfg.Snaplen, RingBytes: int(cfg.RingBytes), Promisc: cfg.Promisc, Wait: cfg.Wait, Log: s.Log,
		Filter: flt, UserFilterOnly: !cfg.KernelFilter,
	})
	if err != nil {
		if ctx.Err() != nil {
			s.Log.Info("stopped while waiting for the interface", zap.String("cause", context.Cause(ctx).Error()))
			return nil
		}
		return err
	}
	rec := &capture.Recorder{
		Source: src,
		Filter: flt,
		Out: &pcapfile.Rotator{
			Dir: cfg.Dir, Prefix: cfg.Prefix,
			MaxBytes: int64(cfg.RotateBytes), MaxAge: cfg.RotateEvery, Keep: cfg.Keep,
			Snaplen: uint32(cfg.Snaplen), LinkType: layers.LinkTypeEthernet, Log: s.Log,
		},
		Iface:          cfg.Iface,
		Count:          cfg.Count,
		Duration:       cfg.Duration,
		FlushEvery:     cfg.FlushEvery,
		HeartbeatEvery: cfg.Heartbeat,
		HeartbeatPath:  capture.HeartbeatPath(cfg.Dir, cfg.Prefix),
		StatusPath:     capture.StatusPath(cfg.Dir),
		LogEvery:       cfg.LogEvery,
		Metrics:        capture.NewMetrics(s.Metrics),
		Log:            s.Log,
	}
	// A capture bounded by -count or -duration ends by itself, and with it
	// the command (service.Job).
	recorder := service.Job("capture "+rec.Iface, rec.Run)
	recorder.Close = rec.Source.Close
	s.Add(recorder)
	return nil
}

// checkWritable fails early, with a hint, when the capture directory cannot
// take files: better than after waiting for the interface.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".capture-probe-*")
	if err != nil {
		return fmt.Errorf("capture directory %s is not writable: %w (root without CAP_DAC_OVERRIDE writes only where uid 0 may: chown or chmod the directory)", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}
