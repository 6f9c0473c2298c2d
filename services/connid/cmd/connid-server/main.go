// Command connid-server grants connection IDs: a client sends
// "HELLO <ConnectionID>" and gets "OK <ConnectionID> <Client_IP>
// <Client_Port>" when the ID is free, which makes it in use for
// CONNID_ID_TTL, or "RESET <ConnectionID>" when it is in use. It serves UDP
// (one message per datagram) and TCP (one message per line) on one port, and
// exits 0 after CONNID_IDLE_TIMEOUT without a request. The protocol is in
// services/connid/README.md.
//
// It reads CONNID_PROTOCOL, CONNID_ADDR, CONNID_ID_TTL, CONNID_IDLE_TIMEOUT,
// CONNID_CONN_TIMEOUT, CONNID_MAX_CONNS, CONNID_UDP_READERS, LOG_LEVEL,
// LOG_FORMAT, METRICS_ADDR and SHUTDOWN_TIMEOUT; flags of the same names win
// over them, and SERVER_IP SERVER_PORT arguments over the address.
// `connid-server healthcheck` probes a running server and exits 0 when it
// answers.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/connid/internal/server"
	"github.com/socklab/socklab/services/connid/internal/store"
	"github.com/socklab/socklab/services/connid/proto"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/service"
)

const usage = `usage: connid-server [flags] [SERVER_IP SERVER_PORT]
       connid-server healthcheck [flags]

Grants connection IDs over UDP (one message per datagram) and TCP (one per
line), on the same port:
  HELLO <ConnectionID>  ->  OK <ConnectionID> <Client_IP> <Client_Port>
                            (the ID is now in use for -id-ttl)
                        or  RESET <ConnectionID>  (the ID is in use)
                        or  ERROR BAD_REQUEST
An ID is 1 to 64 printable ASCII characters without spaces. The server exits
with status 0 after -idle-timeout without a request.`

func main() {
	ctx, stop := service.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(err, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	return runWith(ctx, clock.Real{}, args, environ, stderr)
}

// runWith is run with the clock that times ID expiry and the idle exit.
func runWith(ctx context.Context, clk clock.Clock, args, environ []string, stderr io.Writer) error {
	var cfg server.Config
	cmd, err := service.ParseCommand("connid-server", usage, "CONNID_", &cfg, args, environ, stderr)
	if err != nil {
		return err
	}
	if err := positional(&cfg, cmd.Rest); err != nil {
		return service.Usage(err)
	}
	if err := cfg.Validate(); err != nil {
		return service.Usage(err)
	}
	if cmd.Healthcheck {
		return health.Check(ctx, 3*time.Second, health.Listeners(cfg.Protocol, cfg.Addr, []byte(proto.Ping))...)
	}

	log, err := service.NewLogger(cmd.Common, "connid", stderr)
	if err != nil {
		return service.Usage(err)
	}
	defer log.Sync()

	st, err := store.New(clk, cfg.IDTTL)
	if err != nil {
		return err
	}
	st.Limit(cfg.MaxIDs, cfg.MaxIDsPerSource)
	reg := metrics.NewRegistry()
	h := &server.Handler{Store: st, Clock: clk, Metrics: server.NewMetrics(reg, st), Log: log}
	nm := netserve.NewMetrics(reg, "connid")

	units, err := listen(cfg, h, nm, log)
	if err != nil {
		return err
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
	// service.Run shuts units down in order. The store goes first: it
	// answers every claim already queued while the sockets are open, then
	// refuses new ones until the listeners stop.
	units = append([]service.Unit{service.Job("store", st.Run)}, units...)
	if cfg.IdleTimeout > 0 {
		h.Idle = server.NewIdle(clk, cfg.IdleTimeout)
		units = append(units, service.Job("idle", func(ctx context.Context) error {
			err := h.Idle.Wait(ctx)
			if errors.Is(err, server.ErrIdle) {
				return service.Finished(err) // Run logs it as the cause and returns nil
			}
			return err
		}))
	}
	log.Info("serving", zap.Duration("id_ttl", cfg.IDTTL), zap.Duration("idle_timeout", cfg.IdleTimeout))
	return service.Run(ctx, log, cmd.Common.ShutdownTimeout, units...)
}

// positional applies SERVER_IP SERVER_PORT, the seed's way of giving the
// address.
func positional(cfg *server.Config, rest []string) error {
	switch len(rest) {
	case 0:
		return nil
	case 2:
		n, err := strconv.ParseUint(rest[1], 10, 16)
		if err != nil {
			return fmt.Errorf("SERVER_PORT %q is not a port number (0 to 65535)", rest[1])
		}
		cfg.Addr = net.JoinHostPort(rest[0], strconv.FormatUint(n, 10))
		return nil
	default:
		return fmt.Errorf("want SERVER_IP SERVER_PORT or no arguments, got %q", rest)
	}
}

// listen opens the UDP socket and then the TCP listener on the same port,
// so that port 0 gives both protocols one kernel-chosen port.
func listen(cfg server.Config, h *server.Handler, nm *netserve.Metrics, log *zap.Logger) ([]service.Unit, error) {
	var units []service.Unit
	addr := cfg.Addr
	if cfg.Protocol != "tcp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		units = append(units, service.UDPUnit(h.UDPServer(cfg, nm), pc))
		log.Info("listening", zap.String("proto", "udp"), zap.Stringer("addr", pc.LocalAddr()))
		host, _, _ := net.SplitHostPort(addr)
		_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
		addr = net.JoinHostPort(host, port)
	}
	if cfg.Protocol != "udp" {
		ln, err := net.Listen("tcp", addr)
		if err != nil && addr != cfg.Addr {
			ln, err = net.Listen("tcp", cfg.Addr) // the UDP port is taken for TCP
		}
		if err != nil {
			service.CloseAll(units)
			return nil, err
		}
		units = append(units, service.TCPUnit(h.TCPServer(cfg, nm), ln))
		log.Info("listening", zap.String("proto", "tcp"), zap.Stringer("addr", ln.Addr()))
	}
	return units, nil
}
