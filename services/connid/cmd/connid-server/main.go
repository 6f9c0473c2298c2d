// Command connid-server grants connection IDs: a client sends
// "HELLO <ConnectionID>" and gets "OK <ConnectionID> <Client_IP>
// <Client_Port>" when the ID is free, which makes it in use for
// CONNID_ID_TTL, or "RESET <ConnectionID>" when it is in use. It serves UDP
// (one message per datagram) and TCP (one message per line) on one port, and
// exits 0 after CONNID_IDLE_TIMEOUT without a request. The protocol is in
// services/connid/README.md.
//
// It reads CONNID_PROTOCOL, CONNID_ADDR, CONNID_ID_TTL, CONNID_MAX_IDS,
// CONNID_MAX_IDS_PER_SOURCE, CONNID_IDLE_TIMEOUT, CONNID_CONN_TIMEOUT,
// CONNID_MAX_CONNS, CONNID_MAX_CONNS_PER_SOURCE, CONNID_UDP_READERS,
// LOG_LEVEL, LOG_FORMAT, METRICS_ADDR and SHUTDOWN_TIMEOUT; flags of the same
// names win over them, and SERVER_IP SERVER_PORT arguments over the address.
// `connid-server healthcheck` probes a running server and exits 0 when it
// answers.
package main

import (
	"context"
	"io"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/connid/internal/server"
	"github.com/socklab/socklab/services/connid/proto"
	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/health"
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
with status 0 after -idle-timeout without a request. SERVER_IP SERVER_PORT,
when given, are the listen address, over -addr.`

func main() { command.Main(run) }

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	return runWith(ctx, clock.Real{}, args, environ, stderr)
}

// runWith is run with the clock that times ID expiry and the idle exit.
func runWith(ctx context.Context, clk clock.Clock, args, environ []string, stderr io.Writer) error {
	var cfg server.Config
	return command.Server{
		Command: command.Command{Name: "connid-server", Usage: usage, Settings: []command.Settings{command.Env("CONNID_", &cfg)},
			Args: cfg.SetArgs},
		Healthcheck: func() []health.Probe { return health.Listeners(cfg.Protocol, cfg.Addr, []byte(proto.Ping)) },
		Start:       func(_ context.Context, s *command.Setup) error { return server.Start(s, clk, cfg) },
	}.Run(ctx, args, environ, stderr)
}
