package server

import (
	"testing"
	"time"
	_ "time/tzdata" // the tests need America/Bogota wherever they run

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// seedTime is the instant of the seed's demo, in its zone.
var seedTime = func() time.Time {
	loc, err := time.LoadLocation("America/Bogota")
	if err != nil {
		panic(err)
	}
	return time.Date(2025, 9, 12, 17, 24, 13, 0, loc)
}()

// defaultConfig is the configuration with every default.
func defaultConfig(t testing.TB) Config {
	t.Helper()
	cfg, err := config.Load[Config]("TINYTCP_", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newHandler returns a handler whose clock stands still at seedTime.
func newHandler() *Handler {
	return &Handler{
		Location: seedTime.Location(),
		Now:      func() time.Time { return seedTime },
		Metrics:  NewMetrics(prometheus.NewRegistry()),
	}
}

// serve runs h with cfg on a loopback listener until the end of the test.
func serve(t testing.TB, h *Handler, cfg Config) (string, *netserve.Server) {
	t.Helper()
	srv := h.TCPServer(cfg)
	return nettest.ServeTCP(t, srv), srv
}
