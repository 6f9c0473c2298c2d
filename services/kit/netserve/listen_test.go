package netserve_test

import (
	"net"
	"strings"
	"testing"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

func TestListenBothSamePort(t *testing.T) {
	ln, pc, err := netserve.Listen("both", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	tp, up := ln.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port
	if tp != up {
		t.Errorf("Listen(both, :0) = tcp port %d, udp port %d; want one port", tp, up)
	}
}

func TestListenOne(t *testing.T) {
	for _, tt := range []struct{ proto, want string }{{"tcp", "tcp"}, {"udp", "udp"}} {
		ln, pc, err := netserve.Listen(tt.proto, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if ln != nil {
			got += "tcp"
			ln.Close()
		}
		if pc != nil {
			got += "udp"
			pc.Close()
		}
		if got != tt.want {
			t.Errorf("Listen(%q) opened %q, want %q", tt.proto, got, tt.want)
		}
	}
}

// TestListenBothUDPTaken: a fixed port free for TCP but not for UDP is an
// error naming UDP, and leaves no TCP listener behind.
func TestListenBothUDPTaken(t *testing.T) {
	addr := udpPortFreeForTCP(t)
	ln, pc, err := netserve.Listen("both", addr)
	if err == nil {
		ln.Close()
		pc.Close()
		t.Fatalf("Listen(both, %s) with the UDP port taken succeeded", addr)
	}
	if !strings.Contains(err.Error(), "udp") {
		t.Errorf("error %q does not name udp", err)
	}
	free, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("TCP port left taken after the failure: %v", err)
	} else {
		free.Close()
	}
}

// udpPortFreeForTCP takes a UDP port on 127.0.0.1 for the rest of the test
// whose number is free for TCP as it returns (another test process may hold
// the TCP port of the same number; then it takes another), and returns it.
func udpPortFreeForTCP(t *testing.T) string {
	t.Helper()
	for range 50 {
		busy := nettest.ListenUDP(t)
		addr := busy.LocalAddr().String()
		if probe, err := net.Listen("tcp", addr); err == nil {
			probe.Close()
			return addr
		}
		busy.Close()
	}
	t.Fatal("50 UDP ports in a row were taken for TCP")
	return ""
}

func TestListenBadProtocol(t *testing.T) {
	if _, _, err := netserve.Listen("sctp", "127.0.0.1:0"); err == nil {
		t.Error("Listen(sctp) succeeded")
	}
	if _, _, err := netserve.Listen("both", "no-port"); err == nil {
		t.Error("Listen(both, no-port) succeeded")
	}
}
