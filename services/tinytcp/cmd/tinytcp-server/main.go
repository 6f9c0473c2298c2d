// Command tinytcp-server is the TinyTCP server: on connect it sends a
// WELCOME banner, then answers each command line (TIME, ECHO <text>, HELP,
// QUIT) with one reply line. The protocol is in services/tinytcp/README.md.
//
// It reads TINYTCP_ADDR, TINYTCP_BANNER, TINYTCP_MAX_LINE,
// TINYTCP_IDLE_TIMEOUT, TINYTCP_WRITE_TIMEOUT, TINYTCP_MAX_CONNS,
// TINYTCP_MAX_CONNS_PER_SOURCE, TZ, LOG_LEVEL, LOG_FORMAT, METRICS_ADDR and
// SHUTDOWN_TIMEOUT; flags of the same names win over them. `tinytcp-server
// healthcheck` connects to a running server and exits 0 when it sends its
// banner.
package main

import (
	"context"
	"io"
	_ "time/tzdata" // the scratch image has no /usr/share/zoneinfo; TZ must still work

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/tinytcp/internal/server"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

const usage = `usage: tinytcp-server [flags]
       tinytcp-server healthcheck [flags]

Serves the TinyTCP protocol: a WELCOME banner on connect, then one reply
line per command line:
  TIME          -> TIME <ISO 8601 with seconds and UTC offset, in TZ>
  ECHO <text>   -> ECHO <text>
  HELP          -> HELP <the commands>
  QUIT          -> BYE, then the server closes
  anything else -> ERROR UNKNOWN_COMMAND or ERROR BAD_ARGUMENTS`

func main() { command.Main(run) }

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg server.Config
	var tz server.Zone
	return command.Server{
		Command: command.Command{
			Name: "tinytcp-server", Usage: usage,
			Settings: []command.Settings{command.Env("TINYTCP_", &cfg), command.Env("", &tz)},
			Validate: func() error { _, err := tz.Location(); return err },
		},
		Healthcheck: func() []health.Probe {
			return []health.Probe{health.TCP(cfg.Addr, []byte(proto.BannerPrefix))}
		},
		Start: func(ctx context.Context, s *command.Setup) error {
			loc, _ := tz.Location() // checked by Validate
			h := &server.Handler{Banner: cfg.Banner, Location: loc, Log: s.Log, Metrics: server.NewMetrics(s.Metrics)}
			return s.Listen("tcp", cfg.Addr, h.TCPServer(cfg), nil, zap.String("tz", loc.String()))
		},
	}.Run(ctx, args, environ, stderr)
}
