// Command capture records the packets crossing a network interface (the
// lab's Linux bridge socklab0 by default) into rotating pcap files, in pure
// Go: an AF_PACKET socket with a TPACKET_V3 ring, no libpcap, no cgo, so
// that its image stays FROM scratch. The files open in tcpdump, tshark and
// Wireshark. See services/capture/README.md.
//
// It reads CAPTURE_IFACE, CAPTURE_DIR, CAPTURE_PREFIX, CAPTURE_FILTER,
// CAPTURE_KERNEL_FILTER, CAPTURE_SNAPLEN, CAPTURE_RING_BYTES, CAPTURE_ROTATE_BYTES,
// CAPTURE_ROTATE_EVERY, CAPTURE_KEEP, CAPTURE_WAIT, CAPTURE_PROMISC,
// CAPTURE_COUNT, CAPTURE_DURATION, CAPTURE_FLUSH_EVERY, CAPTURE_HEARTBEAT,
// CAPTURE_LOG_EVERY, LOG_LEVEL, LOG_FORMAT, METRICS_ADDR and
// SHUTDOWN_TIMEOUT; flags of the same names win over them. `capture healthcheck` exits 0 while a capture writes to
// CAPTURE_DIR: its heartbeat file there is fresh and names an existing file.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gopacket/gopacket/layers"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/capture/internal/capture"
	"github.com/socklab/socklab/services/capture/internal/live"
	"github.com/socklab/socklab/services/capture/internal/pcapfile"
	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/service"
)

const usage = `usage: capture [flags]
       capture healthcheck [flags]

Records the packets of a network interface (the lab's bridge by default)
into rotating pcap files <dir>/<prefix>-<UTC time>-<seq>.pcap, readable by
tcpdump, tshark and Wireshark. Needs CAP_NET_RAW.

Filter (-filter): tcp, udp, icmp, ip, ip6, [tcp|udp] [src|dst] port N,
[src|dst] host IP, [src|dst] net CIDR, joined with and, or, not, ( ).
Example: -filter "tcp port 40000 or udp port 9000".

healthcheck exits 0 while a capture writes to -dir: its heartbeat file
there is younger than three heartbeats.`

func main() {
	ctx, stop := service.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(err, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg capture.Config
	var common service.Common
	set := config.NewSet("capture", usage, environ, stderr)
	if err := set.Add("CAPTURE_", &cfg); err != nil {
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
	flt, err := cfg.Validate()
	if err != nil {
		return service.Usage(err)
	}
	hbPath := capture.HeartbeatPath(cfg.Dir, cfg.Prefix)
	if healthcheck {
		return capture.CheckHeartbeat(hbPath, 3*cfg.Heartbeat, time.Now())
	}

	log, err := service.NewLogger(common, "capture", stderr)
	if err != nil {
		return service.Usage(err)
	}
	defer log.Sync()

	if err := checkWritable(cfg.Dir); err != nil {
		return err
	}
	src, err := live.Open(ctx, live.Options{
		Iface: cfg.Iface, Snaplen: cfg.Snaplen, RingBytes: int(cfg.RingBytes), Promisc: cfg.Promisc, Wait: cfg.Wait, Log: log,
		Filter: flt, UserFilterOnly: !cfg.KernelFilter,
	})
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped while waiting for the interface", zap.String("cause", context.Cause(ctx).Error()))
			return nil
		}
		return err
	}

	reg := metrics.NewRegistry()
	rec := &capture.Recorder{
		Source: src,
		Filter: flt,
		Out: &pcapfile.Rotator{
			Dir: cfg.Dir, Prefix: cfg.Prefix,
			MaxBytes: int64(cfg.RotateBytes), MaxAge: cfg.RotateEvery, Keep: cfg.Keep,
			Snaplen: uint32(cfg.Snaplen), LinkType: layers.LinkTypeEthernet, Log: log,
		},
		Iface:          cfg.Iface,
		Count:          cfg.Count,
		Duration:       cfg.Duration,
		FlushEvery:     cfg.FlushEvery,
		HeartbeatEvery: cfg.Heartbeat,
		HeartbeatPath:  hbPath,
		StatusPath:     capture.StatusPath(cfg.Dir),
		LogEvery:       cfg.LogEvery,
		Metrics:        capture.NewMetrics(reg),
		Log:            log,
	}
	// A capture bounded by -count or -duration ends by itself, and with it
	// the command (service.Job).
	recorder := service.Job("capture "+rec.Iface, rec.Run)
	recorder.Close = rec.Source.Close
	units := []service.Unit{recorder}
	if common.MetricsAddr != "" {
		ln, err := net.Listen("tcp", common.MetricsAddr)
		if err != nil {
			src.Close()
			return err
		}
		units = append(units, metrics.Unit(ln, reg))
		log.Info("metrics", zap.Stringer("addr", ln.Addr()))
	}
	return service.Run(ctx, log, common.ShutdownTimeout, units...)
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
