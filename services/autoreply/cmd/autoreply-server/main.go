// Command autoreply-server is the AutoReplyNet server: it answers every
// message, a line over TCP or a datagram over UDP, with a unique reply line
// carrying a random id, the reception time, the length and a snippet of the
// message, and a random note. The protocol is in services/autoreply/README.md.
//
// It reads AUTOREPLY_PROTOCOL, AUTOREPLY_ADDR, AUTOREPLY_MAX_LINE,
// AUTOREPLY_IDLE_TIMEOUT, AUTOREPLY_MAX_CONNS,
// AUTOREPLY_MAX_CONNS_PER_SOURCE, AUTOREPLY_UDP_READERS,
// AUTOREPLY_UDP_CREDIT, AUTOREPLY_UDP_CREDIT_RATE, LOG_LEVEL, LOG_FORMAT,
// METRICS_ADDR and SHUTDOWN_TIMEOUT; flags of the same names win over them.
// `autoreply-server healthcheck` probes a running server's listeners and
// exits 0 when they answer.
package main

import (
	"context"
	"io"

	"github.com/socklab/socklab/services/autoreply/internal/server"
	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/health"
)

const usage = `usage: autoreply-server [flags]
       autoreply-server healthcheck [flags]

Answers every message with a unique reply line:
  REPLY id=<16 hex> at=<RFC 3339 UTC, ns> len=<n> snippet="<data>" note="<phrase>"
over TCP (one message per line) and/or UDP (one message per datagram).`

func main() { command.Main(run) }

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg server.Config
	return command.Server{
		Command: command.Command{
			Name: "autoreply-server", Usage: usage,
			Settings: []command.Settings{command.Env("AUTOREPLY_", &cfg)},
		},
		Healthcheck: func() []health.Probe {
			return health.Listeners(cfg.Protocol, cfg.Addr, []byte("healthcheck"))
		},
		Start: func(ctx context.Context, s *command.Setup) error {
			h := &server.Handler{Log: s.Log, Metrics: server.NewMetrics(s.Metrics)}
			return s.Listen(cfg.Protocol, cfg.Addr, h.TCPServer(cfg), h.UDPServer(cfg))
		},
	}.Run(ctx, args, environ, stderr)
}
