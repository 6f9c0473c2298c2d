package server

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/moviedb/internal/ports"
	"github.com/socklab/socklab/services/moviedb/internal/store"
	"github.com/socklab/socklab/services/moviedb/internal/wal"
)

// Start opens the database of cfg and hands s its listener, on the first
// free port of cfg's list; the database closes once the server has stopped.
func Start(s *command.Setup, cfg Config) error {
	st, err := OpenStore(cfg, s.Log)
	if err != nil {
		return err
	}
	s.Defer(func() { st.Close() })
	h := &Handler{Store: st, Log: s.Log, Metrics: NewMetrics(s.Metrics, st)}
	ln, err := ports.Listen(cfg.Host, cfg.Ports)
	if err != nil {
		return err
	}
	s.ServeTCP(h.TCPServer(cfg), ln, zap.Stringer("ports", cfg.Ports))
	return nil
}

// OpenStore opens the database of cfg, seeded as cfg says, and says loudly
// what it found: a bad log tail is an error at startup unless repair was
// asked for, and then a warning naming what was cut off.
func OpenStore(cfg Config, log *zap.Logger) (*store.Store, error) {
	seed, err := cfg.SeedMovies()
	if err != nil {
		return nil, service.Usage(fmt.Errorf("seed: %w", err))
	}
	if cfg.DataDir == "" {
		log.Warn("no data directory: changes are kept in memory only and lost when the server stops; set MOVIEDB_DATA_DIR")
	}
	st, info, err := store.Open(store.Options{
		Dir:    cfg.DataDir,
		Seed:   seed,
		Repair: cfg.Repair == RepairTruncate,
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
			err, ce.Size-ce.Offset, ce.Offset, RepairTruncate)
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
