// Command capture records the packets crossing a network interface (the
// lab's Linux bridge socklab0 by default) into rotating pcap files, in pure
// Go: an AF_PACKET socket with a TPACKET_V3 ring, no libpcap, no cgo, so
// that its image stays FROM scratch. The files open in tcpdump, tshark and
// Wireshark. See services/capture/README.md.
//
// It reads CAPTURE_IFACE, CAPTURE_DIR, CAPTURE_PREFIX, CAPTURE_FILTER,
// CAPTURE_KERNEL_FILTER, CAPTURE_SNAPLEN, CAPTURE_RING_BYTES,
// CAPTURE_ROTATE_BYTES, CAPTURE_ROTATE_EVERY, CAPTURE_KEEP, CAPTURE_WAIT, CAPTURE_PROMISC,
// CAPTURE_COUNT, CAPTURE_DURATION, CAPTURE_FLUSH_EVERY, CAPTURE_HEARTBEAT,
// CAPTURE_LOG_EVERY, LOG_LEVEL, LOG_FORMAT, METRICS_ADDR and
// SHUTDOWN_TIMEOUT; flags of the same names win over them. `capture
// healthcheck` exits 0 while a capture writes to CAPTURE_DIR: its heartbeat
// file there is fresh and names an existing file.
package main

import (
	"context"
	"io"
	"time"

	"github.com/socklab/socklab/services/capture/internal/capture"
	"github.com/socklab/socklab/services/capture/internal/filter"
	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/health"
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

func main() { command.Main(run) }

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg capture.Config
	var flt *filter.Filter
	return command.Server{
		Command: command.Command{
			Name: "capture", Usage: usage,
			Settings: []command.Settings{command.Env("CAPTURE_", &cfg)},
			Validate: func() (err error) { flt, err = cfg.Validate(); return err },
		},
		Healthcheck: func() []health.Probe {
			return []health.Probe{func(context.Context) error {
				return capture.CheckHeartbeat(capture.HeartbeatPath(cfg.Dir, cfg.Prefix), 3*cfg.Heartbeat, time.Now())
			}}
		},
		Start: func(ctx context.Context, s *command.Setup) error { return record(ctx, s, cfg, flt) },
	}.Run(ctx, args, environ, stderr)
}
