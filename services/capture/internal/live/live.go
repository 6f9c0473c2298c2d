// Package live opens a network interface for capture, after waiting for it
// to appear: an AF_PACKET socket with a TPACKET_V3 ring, memory shared with
// the kernel, which hands packets over a block at a time (no system call
// per packet), with the filter compiled to classic BPF and run in the
// kernel. Pure Go on golang.org/x/sys/unix: no libpcap, no cgo.
package live

import (
	"context"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/capture/internal/filter"
)

// Options say what to open and how long to wait for it.
type Options struct {
	Iface   string
	Snaplen int
	// RingBytes is the size of the ring the kernel writes packets into
	// (at least MinRingBytes): what absorbs a burst while the capture
	// writes files. The kernel drops packets only when it is full.
	RingBytes int
	// Promisc puts the interface in promiscuous mode while the capture
	// runs. A Linux bridge hands its own sockets the frames it forwards
	// between its ports only in that mode.
	Promisc bool
	// Filter, compiled to a socket filter, lets the kernel drop what it
	// rejects before queueing it (nil: keep everything). Frames the
	// compiled program cannot decode exactly pass, for Match to decide.
	Filter *filter.Filter
	// UserFilterOnly leaves Filter to the caller: the kernel keeps all.
	UserFilterOnly bool
	// Wait is how long to keep looking for a missing interface; Retry is
	// the pause between looks (250ms when zero).
	Wait  time.Duration
	Retry time.Duration
	Log   *zap.Logger
}

// WaitInterface returns once lookup finds name, retrying for up to wait:
// compose starts the capture alongside the network whose bridge it records.
// It logs once when it has to wait.
func WaitInterface(ctx context.Context, name string, wait, retry time.Duration, log *zap.Logger, lookup func(string) error) error {
	if retry <= 0 {
		retry = 250 * time.Millisecond
	}
	start := time.Now()
	err := lookup(name)
	if err == nil {
		return nil
	}
	if wait <= 0 {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	log.Info("waiting for interface", zap.String("iface", name), zap.Duration("wait", wait), zap.String("error", err.Error()))
	tick := time.NewTicker(retry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
		if err = lookup(name); err == nil {
			log.Info("interface found", zap.String("iface", name), zap.Duration("waited", time.Since(start).Round(time.Millisecond)))
			return nil
		}
		if time.Since(start) >= wait {
			return fmt.Errorf("interface %s not found after %v: %w", name, wait, err)
		}
	}
}

// lookupInterface succeeds when the system has an interface called name.
func lookupInterface(name string) error {
	_, err := net.InterfaceByName(name)
	return err
}
