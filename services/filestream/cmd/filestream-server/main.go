// Command filestream-server is the filestream server: over TCP and UDP it
// echoes text, sends "files" of N characters generated while they are sent,
// and sends packet streams at a client-chosen interval. The protocol is in
// services/filestream/README.md.
//
// It reads FILESTREAM_PROTOCOL, FILESTREAM_ADDR, FILESTREAM_MAX_FILE,
// FILESTREAM_STREAM_LIMIT, FILESTREAM_MIN_INTERVAL, FILESTREAM_PACKET_SIZE,
// FILESTREAM_UDP_RATE, FILESTREAM_UDP_TRANSFERS, FILESTREAM_COOKIE_TTL,
// FILESTREAM_IDLE_TIMEOUT, FILESTREAM_WRITE_TIMEOUT, FILESTREAM_MAX_CONNS,
// FILESTREAM_UDP_READERS, LOG_LEVEL, LOG_FORMAT, METRICS_ADDR and
// SHUTDOWN_TIMEOUT; flags of the same names win over them.
// `filestream-server healthcheck` probes a running server's listeners and
// exits 0 when they answer.
package main

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/filestream/internal/server"
	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/service"
)

const usage = `usage: filestream-server [flags]
       filestream-server healthcheck [flags]

Serves filestream over TCP and/or UDP on one port: ECHO, FILE (N characters
sent as they are generated, with a CRC-32C up front) and STREAM (packets at a
chosen interval). UDP files and streams go only to addresses that echoed a
cookie; until then a request gets at most 3 times its size back.`

func main() {
	ctx, stop := service.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(err, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg server.Config
	cmd, err := service.ParseCommand("filestream-server", usage, "FILESTREAM_", &cfg, args, environ, stderr)
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
		return health.Check(ctx, 3*time.Second, health.Listeners(cfg.Protocol, cfg.Addr, proto.AppendEcho(nil, 1, []byte("healthcheck")))...)
	}

	log, err := service.NewLogger(cmd.Common, "filestream", stderr)
	if err != nil {
		return service.Usage(err)
	}
	defer log.Sync()

	reg := metrics.NewRegistry()
	h := server.New(cfg, log, server.NewMetrics(reg))
	nm := netserve.NewMetrics(reg, "filestream")
	var units []service.Unit
	udpAddr := cfg.Addr
	if cfg.Protocol != "udp" {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return err
		}
		units = append(units, h.TCPUnit(h.TCPServer(nm), ln))
		log.Info("listening", zap.String("proto", "tcp"), zap.Stringer("addr", ln.Addr()))
		udpAddr = samePort(cfg.Addr, ln.Addr())
	}
	if cfg.Protocol != "tcp" {
		pc, err := net.ListenPacket("udp", udpAddr)
		if err != nil {
			service.CloseAll(units)
			return err
		}
		// Bursts of files and streams wait in the send buffer rather than
		// block the socket's other users; best effort (net.core.wmem_max).
		pc.(*net.UDPConn).SetWriteBuffer(4 << 20)
		units = append(units, h.UDPUnit(h.UDPServer(nm), pc))
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
	log.Info("limits", zap.Int64("max_file", cfg.MaxFile), zap.Int("stream_limit", cfg.StreamLimit),
		zap.Duration("min_interval", cfg.MinInterval), zap.Int("packet_size", cfg.PacketSize))
	return service.Run(ctx, log, cmd.Common.ShutdownTimeout, units...)
}

// samePort returns addr with port 0 replaced by the port TCP was given, so
// that "both" on an ephemeral port serves TCP and UDP on one number.
func samePort(addr string, tcp net.Addr) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.(*net.TCPAddr).Port))
}
