package nettest_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/socklab/socklab/services/kit/nettest"
)

// A refused address refuses connections, and no listener can take its
// port while the test runs.
func TestRefusedAddr(t *testing.T) {
	addr := nettest.RefusedAddr(t)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("dial %s succeeded, want refused", addr)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: %v, want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Errorf("a listener took %s, which must stay refused", addr)
	}
}
