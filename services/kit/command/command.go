// Package command builds socklab's commands. A command declares only what
// is special about it; the package does the rest, once for every command.
//
// A server (Server) declares its settings structs, each with the prefix of
// its environment variables (flags mirror them), its healthcheck probes and
// a Start function that builds its handlers and metrics and hands its
// listeners to the Setup. The package parses the command line (errors name
// the variable or flag), builds the zap logger, runs the process-wide setup,
// serves Prometheus /metrics on METRICS_ADDR, answers the `healthcheck` mode,
// ends on SIGINT or SIGTERM (Main), and shuts down in phases bounded by
// SHUTDOWN_TIMEOUT (service.Run). A client (Command) gets the same parsing
// and exit codes.
//
// # The Handler shape
//
// Every service's internal/server package follows one shape, which
// Setup.Listen and netserve rely on:
//
//   - A Handler is a struct with exported, documented fields (net/http's
//     Server is the model), not a constructor: dependencies (a store, a
//     clock) and, where the handler needs them, the service's Config are
//     fields, and the zero value of every optional field works.
//   - Log and Metrics are fields, and nil is always safe: a nil Log logs
//     nothing, a nil Metrics counts nothing. Tests leave them out.
//   - The Config embeds netserve.Settings (a TCP-only service:
//     netserve.Limits), the listener and connection-limit settings every
//     server reads alike, and its SetDefaults sets the lab map's port.
//   - TCPServer and UDPServer return the handler's netserve servers with
//     the limits of the Config (netserve.Limits.Apply for the connection
//     limits); Setup.Listen fills in their Log and loop Metrics.
//   - State a UDP read loop keeps across datagrams (a random generator, a
//     reply buffer) is a typed struct that the handler's NewLoop returns
//     (netserve.LoopHandler), never an `any` asserted back.
//   - Work that outlives a datagram runs under the packet server: a
//     transfer as Packet.Go, a queue's writer as PacketServer.GoWorker. The
//     server's Shutdown waits for it, so no handler keeps goroutines of its
//     own, or a Shutdown.
//   - A context is an argument, never a field.
//   - An error a caller must tell apart is a concrete type or a sentinel,
//     matched with errors.As or errors.Is (tinytcp's proto.CodeOf), never
//     asserted back.
//
// # Shutdown
//
// service.Run stops the units in phases: the network servers (each stops
// accepting, drains its connections and datagrams, then waits for the
// goroutines it owns), then what they used (jobs such as a store's writer),
// then the metrics endpoint; the units of one phase stop in parallel. The
// phases share a deadline at nine tenths of SHUTDOWN_TIMEOUT, after which
// each unit stops what is left at once (netserve waits at most 100ms more
// for it); Run returns at SHUTDOWN_TIMEOUT at the latest, naming any unit
// still running.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/memlimit"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/service"
)

// Main runs a command's run function with the process's arguments,
// environment and standard streams under a context that ends on SIGINT or
// SIGTERM, and exits with the status service.ExitCode gives its error.
func Main(run func(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error) {
	MainIO(func(ctx context.Context, args, environ []string, _ io.Reader, stdout, stderr io.Writer) error {
		return run(ctx, args, environ, stdout, stderr)
	})
}

// MainIO is Main for a command that reads standard input (a client).
func MainIO(run func(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error) {
	ctx, stop := service.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(err, os.Stderr))
}

// IsTerminal reports whether v is a file on a terminal (standard input
// typed at, or an output a person watches), for prompts and live displays.
func IsTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Settings is one settings struct of a command (Ptr, a pointer to it) and
// the prefix of its environment variables ("TINYTCP_"; "" for variables
// every program reads, such as TZ).
type Settings struct {
	Prefix string
	Ptr    any
}

// Env returns the Settings of ptr with prefix.
func Env(prefix string, ptr any) Settings { return Settings{Prefix: prefix, Ptr: ptr} }

// Command is a command line: its settings structs (a field tagged `flag`
// and no `env` is a flag only) and its positional arguments.
type Command struct {
	// Name is the command's name, as typed ("tinytcp-client").
	Name string
	// Usage is printed first by -h: a synopsis and a short description.
	Usage string
	// Settings are loaded from the environment in order, then flags win;
	// each that has a Validate() error method is checked with it.
	Settings []Settings
	// Interleaved lets flags come after positional arguments too
	// ("HOST PORT -timeout 1s"); after "--" all are arguments.
	Interleaved bool
	// FullUsage prints the whole usage, not one line, for an error from
	// Args or Validate, as a person typing the arguments needs.
	FullUsage bool
	// Args takes the positional arguments; nil means there must be none.
	Args func(rest []string) error
	// Validate, when set, checks what the settings' own Validate methods
	// do not: how they go together.
	Validate func() error
}

// Parse loads the settings from environ, applies args, hands the
// positional arguments to Args, and checks the settings with their Validate
// methods, then with Validate. Its errors are
// usage errors (service.ExitCode exits 2 for them; 0 for -h), naming the
// variable or flag at fault.
func (c Command) Parse(args, environ []string, stderr io.Writer) error {
	set := config.NewSet(c.Name, c.Usage, environ, stderr)
	for _, s := range c.Settings {
		if err := set.Add(s.Prefix, s.Ptr); err != nil {
			return service.Usage(err)
		}
	}
	var pos []string
	for {
		rest, err := set.Parse(args)
		if err != nil {
			return service.Usage(err)
		}
		if !c.Interleaved || len(rest) == 0 || len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	err := service.NoArgs(pos)
	if c.Args != nil {
		err = c.Args(pos)
	}
	for _, s := range c.Settings {
		if v, ok := s.Ptr.(interface{ Validate() error }); ok && err == nil {
			err = v.Validate()
		}
	}
	if err == nil && c.Validate != nil {
		err = c.Validate()
	}
	if err != nil && c.FullUsage {
		fmt.Fprintf(set.FlagSet().Output(), "%s: %v\n\n", c.Name, err)
		set.PrintUsage()
		return &config.ParseError{Err: err}
	}
	return service.Usage(err)
}

// healthcheckTimeout bounds a healthcheck's probes together.
const healthcheckTimeout = 3 * time.Second

// Server is a server command: what is special about it. Run does the rest.
type Server struct {
	// Command's Name, without a "-server" suffix, names the service: its
	// logger and the metrics namespace of its netserve loops ("autoreply").
	Command
	// Healthcheck, when set, enables `NAME healthcheck`: the probes it
	// returns for a running server must all pass within 3 seconds.
	Healthcheck func() []health.Probe
	// ProbeMetrics adds a probe of METRICS_ADDR, when set, to Healthcheck's.
	ProbeMetrics bool
	// Start builds the handlers and hands listeners and other units to s.
	// It may add nothing (there is nothing to serve): Run then returns nil.
	Start func(ctx context.Context, s *Setup) error
	// Main, when set, is the command's work, done in the foreground once
	// Start has run, while the units (the metrics endpoint) serve in the
	// background; Run stops them when Main returns and returns its error.
	Main func(ctx context.Context, s *Setup) error
}

// Run runs the server command with args (without the program name) and
// environ until ctx ends, a unit fails, or its work is done.
func (c Server) Run(ctx context.Context, args, environ []string, stderr io.Writer) error {
	var common service.Common
	cmd := c.Command
	cmd.Settings = append(slices.Clone(cmd.Settings), Env("", &common))
	healthcheck := c.Healthcheck != nil && len(args) > 0 && args[0] == "healthcheck"
	if healthcheck {
		args = args[1:]
	}
	if err := cmd.Parse(args, environ, stderr); err != nil {
		return err
	}
	if healthcheck {
		probes := c.Healthcheck()
		if c.ProbeMetrics && common.MetricsAddr != "" {
			probes = append(probes, health.TCP(common.MetricsAddr, nil))
		}
		return health.Check(ctx, healthcheckTimeout, probes...)
	}

	name := strings.TrimSuffix(c.Name, "-server")
	log, err := service.NewLogger(common, name, stderr)
	if err != nil {
		return service.Usage(err)
	}
	defer log.Sync()
	startProcess(log)

	s := &Setup{Log: log, Metrics: metrics.NewRegistry(), Common: common, service: name}
	defer s.runDeferred()
	if c.Start != nil {
		if err := c.Start(ctx, s); err != nil {
			service.CloseAll(s.units)
			return err
		}
	}
	if err := s.serveMetrics(); err != nil {
		service.CloseAll(s.units)
		return err
	}
	if c.Main == nil {
		if len(s.units) == 0 {
			return nil
		}
		return service.Run(ctx, log, common.ShutdownTimeout, s.units...)
	}
	return s.runBeside(ctx, c.Main)
}

// runBeside serves the units while main runs, then stops them.
func (s *Setup) runBeside(ctx context.Context, main func(ctx context.Context, s *Setup) error) error {
	if len(s.units) == 0 {
		return main(ctx, s)
	}
	bctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(bctx, s.Log, s.Common.ShutdownTimeout, s.units...) }()
	err := main(ctx, s)
	cancel()
	if uerr := <-done; err == nil && uerr != nil {
		err = uerr
	}
	return err
}

// Setup is what a server's Start builds on: the logger, the metrics
// registry, the common settings, and the units it adds.
type Setup struct {
	// Log is the command's logger, named for the service.
	Log *zap.Logger
	// Metrics is the registry served on METRICS_ADDR.
	Metrics *prometheus.Registry
	// Common holds the settings every server shares.
	Common service.Common

	service  string
	units    []service.Unit
	net      *netserve.Metrics
	deferred []func()
}

// NetMetrics returns the netserve loop metrics, registered once.
func (s *Setup) NetMetrics() *netserve.Metrics {
	if s.net == nil {
		s.net = netserve.NewMetrics(s.Metrics, s.service)
	}
	return s.net
}

// Listen opens protocol ("tcp", "udp" or "both", on one port) on addr with
// netserve.Listen and serves tcp and/or udp there; the one not asked for
// may be nil. It logs "listening" for each socket, with fields.
func (s *Setup) Listen(protocol, addr string, tcp *netserve.Server, udp *netserve.PacketServer, fields ...zap.Field) error {
	ln, pc, err := netserve.Listen(protocol, addr)
	if err != nil {
		return err
	}
	if ln != nil {
		s.ServeTCP(tcp, ln, fields...)
	}
	if pc != nil {
		s.ServeUDP(udp, pc, fields...)
	}
	return nil
}

// ServeTCP serves srv on ln, filling in srv's Log and Metrics when unset.
func (s *Setup) ServeTCP(srv *netserve.Server, ln net.Listener, fields ...zap.Field) {
	s.fill(&srv.Log, &srv.Metrics)
	s.serve(service.TCPUnit(srv, ln), "tcp", fields)
}

// ServeUDP serves srv on pc, filling in srv's Log and Metrics when unset.
func (s *Setup) ServeUDP(srv *netserve.PacketServer, pc net.PacketConn, fields ...zap.Field) {
	s.fill(&srv.Log, &srv.Metrics)
	s.serve(service.UDPUnit(srv, pc), "udp", fields)
}

func (s *Setup) fill(log **zap.Logger, m **netserve.Metrics) {
	if *log == nil {
		*log = s.Log
	}
	if *m == nil {
		*m = s.NetMetrics()
	}
}

func (s *Setup) serve(u service.Unit, proto string, fields []zap.Field) {
	s.Add(u)
	s.Log.Info("listening", append([]zap.Field{zap.String("proto", proto), zap.Stringer("addr", u.Addr)}, fields...)...)
}

// Add adds units to serve (service.Job for work beside the listeners).
func (s *Setup) Add(units ...service.Unit) { s.units = append(s.units, units...) }

// Defer runs f when the command returns, after every unit has stopped
// (closing a store the handlers used).
func (s *Setup) Defer(f func()) { s.deferred = append(s.deferred, f) }

func (s *Setup) runDeferred() {
	for _, f := range slices.Backward(s.deferred) {
		f()
	}
}

func (s *Setup) serveMetrics() error {
	if s.Common.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.Common.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.Add(metricsUnit(ln, s.Metrics))
	s.Log.Info("metrics", zap.Stringer("addr", ln.Addr()))
	return nil
}

// metricsUnit serves reg on ln as a service unit.
func metricsUnit(ln net.Listener, reg *prometheus.Registry) service.Unit {
	srv := &http.Server{Handler: metrics.Handler(reg), ReadHeaderTimeout: 5 * time.Second}
	return service.Unit{
		Name:     "metrics",
		Phase:    service.Observing,
		Serve:    func() error { return srv.Serve(ln) },
		Shutdown: func(ctx context.Context) error { return srv.Shutdown(ctx) },
		Closed:   func(err error) bool { return errors.Is(err, http.ErrServerClosed) },
		Close:    ln.Close,
	}
}

// startProcess is the one place where process-wide setup runs, for every
// server command, once the logger exists and before any unit starts (a
// memory limit from the cgroup, say). Clients do not pass here.
func startProcess(log *zap.Logger) {
	// The runtime's memory limit from the container's, so that a server's
	// heap stays within it and memory freed after a burst goes back.
	memlimit.Set(log)
	log.Debug("process", zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)))
}
