package server

import (
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/connid/internal/store"
	"github.com/socklab/socklab/services/kit/command"
	"github.com/socklab/socklab/services/kit/service"
)

// Start builds a Handler for cfg on clk, with its store, and hands s its
// listeners, the store's writer and the idle watch.
func Start(s *command.Setup, clk clock.Clock, cfg Config) error {
	st, err := store.New(clk, cfg.IDTTL)
	if err != nil {
		return err
	}
	st.Limit(cfg.MaxIDs, cfg.MaxIDsPerSource)
	h := &Handler{Store: st, Clock: clk, Metrics: NewMetrics(s.Metrics, st), Log: s.Log}
	if cfg.IdleTimeout > 0 {
		h.Idle = NewIdle(clk, cfg.IdleTimeout)
		s.Add(h.Idle.Job())
	}
	udp := h.UDPServer(cfg)
	if err := s.Listen(cfg.Protocol, cfg.Addr, h.TCPServer(cfg), udp); err != nil {
		return err
	}
	// The store's writer also sends the replies to the UDP claims queued
	// for it: the UDP server owns it, so that it stops after the reads and
	// before the socket closes. Without UDP it is a job, stopped once the
	// TCP server has drained.
	if cfg.Protocol == "tcp" || !udp.GoWorker(st.Run) {
		s.Add(service.Job("store", st.Run))
	}
	s.Log.Info("serving", zap.Duration("id_ttl", cfg.IDTTL), zap.Duration("idle_timeout", cfg.IdleTimeout))
	return nil
}
