package server

import (
	"context"
	"net/netip"
	"sync"

	"github.com/socklab/socklab/services/kit/netserve"
)

// testHandler is a Handler whose UDP transfers belong to o, a packet server
// that serves no socket, so that tests can call serveDatagram with a writer
// of their own, wait for the transfers (wg) and stop them with Shutdown.
type testHandler struct {
	*Handler
	o  *netserve.PacketServer
	wg sync.WaitGroup
}

func newTestHandler(cfg Config, m *Metrics) *testHandler {
	h := &Handler{Config: cfg, Metrics: m}
	h.init()
	return &testHandler{Handler: h, o: &netserve.PacketServer{Handler: h}}
}

// Go runs fn as a goroutine of o, counted in wg.
func (th *testHandler) Go(fn func(ctx context.Context)) bool {
	th.wg.Add(1)
	if !th.o.Go(func(ctx context.Context) { defer th.wg.Done(); fn(ctx) }) {
		th.wg.Done()
		return false
	}
	return true
}

func (th *testHandler) serveDatagram(w datagramWriter, from netip.AddrPort, data, out []byte) []byte {
	return th.Handler.serveDatagram(w, th, from, data, out)
}

// Shutdown shuts down the transfers' owner.
func (th *testHandler) Shutdown(ctx context.Context) error { return th.o.Shutdown(ctx) }
