// Command autoreply-server is the AutoReplyNet server: it answers every
// message, a line over TCP or a datagram over UDP, with a unique reply line
// carrying a random id, the reception time, the length and a snippet of the
// message, and a random note. The protocol is in services/autoreply/README.md.
//
// It reads AUTOREPLY_PROTOCOL, AUTOREPLY_ADDR, AUTOREPLY_MAX_LINE,
// AUTOREPLY_IDLE_TIMEOUT, AUTOREPLY_MAX_CONNS, AUTOREPLY_UDP_READERS,
// LOG_LEVEL, LOG_FORMAT, METRICS_ADDR and SHUTDOWN_TIMEOUT; flags of the same
// names win over them. `autoreply-server healthcheck` probes a running
// server's listeners and exits 0 when they answer.
package main

import (
	"context"
	"io"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/autoreply/internal/server"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/service"
)

const usage = `usage: autoreply-server [flags]
       autoreply-server healthcheck [flags]

Answers every message with a unique reply line:
  REPLY id=<16 hex> at=<RFC 3339 UTC, ns> len=<n> snippet="<data>" note="<phrase>"
over TCP (one message per line) and/or UDP (one message per datagram).`

func main() {
	ctx, stop := service.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(err, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg server.Config
	cmd, err := service.ParseCommand("autoreply-server", usage, "AUTOREPLY_", &cfg, args, environ, stderr)
	if err != nil {
		return err
	}
	if err := service.NoArgs(cmd.Rest); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return service.Usage(err)
	}
	if cmd.Healthcheck {
		return health.Check(ctx, 3*time.Second, health.Listeners(cfg.Protocol, cfg.Addr, []byte("healthcheck"))...)
	}

	log, err := service.NewLogger(cmd.Common, "autoreply", stderr)
	if err != nil {
		return service.Usage(err)
	}
	defer log.Sync()

	reg := metrics.NewRegistry()
	h := &server.Handler{Log: log, Metrics: server.NewMetrics(reg)}
	nm := netserve.NewMetrics(reg, "autoreply")
	var units []service.Unit
	if cfg.Protocol != "udp" {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return err
		}
		srv := h.TCPServer(cfg, nm)
		units = append(units, service.TCPUnit(srv, ln))
		log.Info("listening", zap.String("proto", "tcp"), zap.Stringer("addr", ln.Addr()))
	}
	if cfg.Protocol != "tcp" {
		udpAddr := cfg.Addr
		if len(units) > 0 {
			// Port 0 picks a port for TCP; UDP takes the same number, so
			// one address serves both protocols.
			udpAddr = sameHostPort(cfg.Addr, units[0].Addr)
		}
		pc, err := net.ListenPacket("udp", udpAddr)
		if err != nil {
			service.CloseAll(units)
			return err
		}
		srv := h.UDPServer(cfg, nm)
		units = append(units, service.UDPUnit(srv, pc))
		log.Info("listening", zap.String("proto", "udp"), zap.Stringer("addr", pc.LocalAddr()))
	}
	if cmd.Common.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cmd.Common.MetricsAddr)
		if err != nil {
			service.CloseAll(units)
			return err
		}
		units = append(units, metrics.Unit(ln, reg))
		log.Info("metrics", zap.Stringer("addr", ln.Addr()))
	}
	return service.Run(ctx, log, cmd.Common.ShutdownTimeout, units...)
}

// sameHostPort returns addr's host with the port of bound.
func sameHostPort(addr string, bound net.Addr) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	_, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, port)
}
