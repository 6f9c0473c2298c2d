// Command moviedb-server is one server of the moviedb fleet: it keeps its
// own movie database (go-memdb, made durable by a write-ahead log) and
// answers one JSON request line per TCP connection with one JSON response
// line: get, all (paged), add, edit. It listens on the first free port of a
// list, so that several servers can share a host. The protocol is in
// services/moviedb/README.md.
//
// It reads MOVIEDB_HOST, MOVIEDB_PORTS, MOVIEDB_DATA_DIR, MOVIEDB_SEED,
// MOVIEDB_REPAIR, MOVIEDB_IDLE_TIMEOUT, MOVIEDB_MAX_CONNS, LOG_LEVEL,
// LOG_FORMAT, METRICS_ADDR and SHUTDOWN_TIMEOUT; flags of the same names win
// over them. `moviedb-server healthcheck` asks a running server on the port
// list for one movie and exits 0 when it answers.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/moviedb/internal/ports"
	"github.com/socklab/socklab/services/moviedb/internal/server"
	"github.com/socklab/socklab/services/moviedb/internal/store"
	"github.com/socklab/socklab/services/moviedb/internal/wal"
)

const usage = `usage: moviedb-server [flags]
       moviedb-server healthcheck [flags]

Serves a movie database over TCP on the first free port of a list: one JSON
request line per connection, one JSON response line, then close.
  {"op":"get","title":"Alien"}                      one movie, case-insensitively
  {"op":"all","cursor":"...","limit":100}           a page of all movies
  {"op":"add","movie":{"title":...,"year":...}}     a new movie
  {"op":"edit","title":"Alien","set":{"year":1979}} change some fields
Changes are in the write-ahead log in -data-dir, fsynced, before the reply.`

func main() {
	ctx, stop := service.SignalContext(context.Background())
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(service.ExitCode(err, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	var cfg server.Config
	cmd, err := service.ParseCommand("moviedb-server", usage, "MOVIEDB_", &cfg, args, environ, stderr)
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
		return health.Check(ctx, 3*time.Second, server.Probe(cfg))
	}

	log, err := service.NewLogger(cmd.Common, "moviedb", stderr)
	if err != nil {
		return service.Usage(err)
	}
	defer log.Sync()

	seed, err := cfg.SeedMovies()
	if err != nil {
		return service.Usage(fmt.Errorf("seed: %w", err))
	}
	st, err := openStore(cfg, seed, log)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := metrics.NewRegistry()
	h := &server.Handler{Store: st, Log: log, Metrics: server.NewMetrics(reg, st)}
	ln, err := ports.Listen(cfg.Host, cfg.Ports)
	if err != nil {
		return err
	}
	units := []service.Unit{service.TCPUnit(h.TCPServer(cfg, netserve.NewMetrics(reg, "moviedb")), ln)}
	log.Info("listening", zap.Stringer("addr", ln.Addr()), zap.Stringer("ports", cfg.Ports))
	if cmd.Common.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cmd.Common.MetricsAddr)
		if err != nil {
			service.CloseAll(units)
			return err
		}
		units = append(units, metrics.Unit(mln, reg))
		log.Info("metrics", zap.Stringer("addr", mln.Addr()))
	}
	return service.Run(ctx, log, cmd.Common.ShutdownTimeout, units...)
}

// openStore opens the database and says loudly what it found: a bad log
// tail is an error at startup unless repair was asked for, and then a
// warning naming what was cut off.
func openStore(cfg server.Config, seed []store.Movie, log *zap.Logger) (*store.Store, error) {
	if cfg.DataDir == "" {
		log.Warn("no data directory: changes are kept in memory only and lost when the server stops; set MOVIEDB_DATA_DIR")
	}
	st, info, err := store.Open(store.Options{
		Dir:    cfg.DataDir,
		Seed:   seed,
		Repair: cfg.Repair == server.RepairTruncate,
		Log:    log,
	})
	var ce *wal.CorruptError
	if errors.As(err, &ce) {
		log.Error("write-ahead log is damaged; refusing to start",
			zap.String("path", ce.Path), zap.Int64("offset", ce.Offset), zap.Int64("size", ce.Size),
			zap.Int("good_records", ce.Records), zap.String("reason", ce.Reason))
		if !ce.Repairable() {
			return nil, fmt.Errorf("%w; the header is bad, so this is not a log that can be repaired", err)
		}
		return nil, fmt.Errorf("%w; to drop the %d bytes from offset %d (saved aside) and start, set MOVIEDB_REPAIR=%s",
			err, ce.Size-ce.Offset, ce.Offset, server.RepairTruncate)
	}
	if err != nil {
		return nil, err
	}
	if r := info.Repaired; r != nil {
		log.Warn("write-ahead log tail cut off as MOVIEDB_REPAIR asked",
			zap.String("path", r.Path), zap.Int64("offset", r.Offset), zap.Int64("dropped_bytes", r.Size-r.Offset),
			zap.String("reason", r.Reason), zap.String("saved_to", info.SavedTo))
	}
	log.Info("database ready", zap.Int("movies", st.Len()), zap.String("data_dir", cfg.DataDir),
		zap.Bool("created", info.Created), zap.Int("seeded", info.Seeded),
		zap.Int("replayed", info.Replayed), zap.Int64("log_bytes", info.LogBytes))
	return st, nil
}
