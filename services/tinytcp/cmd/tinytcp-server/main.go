// Command tinytcp-server is the TinyTCP server: on connect it sends a
// WELCOME banner, then answers each command line (TIME, ECHO <text>, HELP,
// QUIT) with one reply line. The protocol is in services/tinytcp/README.md.
//
// It reads TINYTCP_ADDR, TINYTCP_BANNER, TINYTCP_MAX_LINE,
// TINYTCP_IDLE_TIMEOUT, TINYTCP_WRITE_TIMEOUT, TINYTCP_MAX_CONNS, TZ,
// LOG_LEVEL, LOG_FORMAT, METRICS_ADDR and SHUTDOWN_TIMEOUT; flags of the
// same names win over them. `tinytcp-server healthcheck` connects to a
// running server and exits 0 when it sends its banner.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
	_ "time/tzdata" // the scratch image has no /usr/share/zoneinfo; TZ must still work

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/service"
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

// zone is the time zone setting. TZ carries no service prefix: it is the
// variable every program honours.
type zone struct {
	TZ string `env:"TZ" flag:"tz" help:"time zone of TIME replies, an IANA name such as America/Bogota (default: the system's local zone)"`
}

func main() {
	ctx, stop := service.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(err, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg server.Config
	var tz zone
	var common service.Common
	set := config.NewSet("tinytcp-server", usage, environ, stderr)
	if err := set.Add("TINYTCP_", &cfg); err != nil {
		return service.Usage(err)
	}
	if err := set.Add("", &tz); err != nil {
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
	if err := cfg.Validate(); err != nil {
		return service.Usage(err)
	}
	loc, err := location(tz.TZ)
	if err != nil {
		return service.Usage(err)
	}
	if healthcheck {
		return health.Check(ctx, 3*time.Second, health.TCP(cfg.Addr, []byte(proto.BannerPrefix)))
	}

	log, err := service.NewLogger(common, "tinytcp", stderr)
	if err != nil {
		return service.Usage(err)
	}
	defer log.Sync()

	reg := metrics.NewRegistry()
	h := &server.Handler{
		Banner:   cfg.Banner,
		Location: loc,
		Log:      log,
		Metrics:  server.NewMetrics(reg),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := h.TCPServer(cfg, netserve.NewMetrics(reg, "tinytcp"))
	units := []service.Unit{service.TCPUnit(srv, ln)}
	log.Info("listening", zap.Stringer("addr", ln.Addr()), zap.String("tz", loc.String()))
	if common.MetricsAddr != "" {
		mln, err := net.Listen("tcp", common.MetricsAddr)
		if err != nil {
			service.CloseAll(units)
			return err
		}
		units = append(units, metrics.Unit(mln, reg))
		log.Info("metrics", zap.Stringer("addr", mln.Addr()))
	}
	return service.Run(ctx, log, common.ShutdownTimeout, units...)
}

// location resolves a TZ value: empty means the system's local zone (which
// the Go runtime has already read from the process's own TZ); a leading
// ":" is dropped, as POSIX allows.
func location(tz string) (*time.Location, error) {
	tz = strings.TrimPrefix(tz, ":")
	if tz == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("TZ %q: %w", tz, err)
	}
	return loc, nil
}
