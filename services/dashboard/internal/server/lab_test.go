package server

import (
	"testing"

	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/lab"
)

// TestDefaultListenIsLabMap: the server's default listen setting is the
// lab map's port (services/kit/lab), where compose, loadgen and the docs
// read it too.
func TestDefaultListenIsLabMap(t *testing.T) {
	cfg, err := config.Load[Config]("DASHBOARD_", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Addr; !lab.Dashboard.IsDefaultListen(got) {
		t.Errorf("default listen setting %q, want port %d (lab.Dashboard)", got, lab.Dashboard.Port)
	}
}
