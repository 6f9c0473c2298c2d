// Command filestream-server is the filestream server: over TCP and UDP it
// echoes text, sends "files" of N characters generated while they are sent,
// and sends packet streams at a client-chosen interval. The protocol is in
// services/filestream/README.md.
//
// It reads FILESTREAM_PROTOCOL, FILESTREAM_ADDR, FILESTREAM_MAX_FILE,
// FILESTREAM_STREAM_LIMIT, FILESTREAM_MIN_INTERVAL, FILESTREAM_PACKET_SIZE,
// FILESTREAM_UDP_RATE, FILESTREAM_UDP_TRANSFERS,
// FILESTREAM_UDP_TRANSFERS_PER_SOURCE, FILESTREAM_COOKIE_TTL,
// FILESTREAM_IDLE_TIMEOUT, FILESTREAM_WRITE_TIMEOUT, FILESTREAM_MAX_CONNS,
// FILESTREAM_MAX_CONNS_PER_SOURCE, FILESTREAM_BODY_BUDGET,
// FILESTREAM_UDP_READERS, LOG_LEVEL, LOG_FORMAT, METRICS_ADDR and
// SHUTDOWN_TIMEOUT; flags of the same names win over them. `filestream-server
// healthcheck` probes a running server's listeners and exits 0 when they
// answer.
package main

import (
	"context"
	"io"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/filestream/internal/server"
	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/health"
)

const usage = `usage: filestream-server [flags]
       filestream-server healthcheck [flags]

Serves filestream over TCP and/or UDP on one port: ECHO, FILE (N characters
sent as they are generated, with a CRC-32C up front) and STREAM (packets at a
chosen interval). UDP files and streams go only to addresses that echoed a
cookie; until then a request gets at most 3 times its size back.`

func main() { command.Main(run) }

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg server.Config
	return command.Server{
		Command: command.Command{Name: "filestream-server", Usage: usage, Settings: []command.Settings{command.Env("FILESTREAM_", &cfg)}},
		Healthcheck: func() []health.Probe {
			return health.Listeners(cfg.Protocol, cfg.Addr, proto.AppendEcho(nil, 1, []byte("healthcheck")))
		},
		Start: func(_ context.Context, s *command.Setup) error {
			h := &server.Handler{Config: cfg, Log: s.Log, Metrics: server.NewMetrics(s.Metrics)}
			if err := s.Listen(cfg.Protocol, cfg.Addr, h.TCPServer(), h.UDPServer()); err != nil {
				return err
			}
			s.Add(h.TransfersUnit()) // TCP transfers cut off in time, with their ERROR
			s.Log.Info("limits", zap.Int64("max_file", cfg.MaxFile), zap.Int("stream_limit", cfg.StreamLimit),
				zap.Duration("min_interval", cfg.MinInterval), zap.Int("packet_size", cfg.PacketSize))
			return nil
		},
	}.Run(ctx, args, environ, stderr)
}
