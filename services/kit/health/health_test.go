package health_test

import (
	"context"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/health"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

func TestLoopback(t *testing.T) {
	tests := []struct{ give, want string }{
		{":9000", "127.0.0.1:9000"},
		{"0.0.0.0:80", "127.0.0.1:80"},
		{"[::]:80", "[::1]:80"},
		{"10.1.2.3:80", "10.1.2.3:80"},
		{"name:80", "name:80"},
	}
	for _, tt := range tests {
		if got := health.Loopback(tt.give); got != tt.want {
			t.Errorf("Loopback(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestProbes(t *testing.T) {
	ln := nettest.ListenTCP(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("WELCOME\n"))
			c.Close()
		}
	}()
	udp := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(func(p *netserve.Packet) { p.Reply(p.Data) })}
	uaddr := nettest.ServeUDP(t, udp)
	silent := nettest.ListenUDP(t)

	ctx := context.Background()
	// The healthy servers must answer within the bound: give them the tests'
	// usual one, not a second, which a loaded machine under -race can miss.
	if err := health.Check(ctx, nettest.Timeout, health.TCP(ln.Addr().String(), []byte("WELCOME")), health.UDP(uaddr, []byte("hi"))); err != nil {
		t.Errorf("healthy servers: %v", err)
	}
	if err := health.Check(ctx, time.Second, health.TCP(ln.Addr().String(), []byte("HELLO"))); err == nil {
		t.Error("wrong banner passed")
	}
	if err := health.Check(ctx, 200*time.Millisecond, health.UDP(silent.LocalAddr().String(), []byte("hi"))); err == nil {
		t.Error("silent UDP server passed")
	}
	if err := health.Check(ctx, time.Second, health.TCP(nettest.RefusedAddr(t), nil)); err == nil {
		t.Error("closed port passed")
	}
}

func TestListeners(t *testing.T) {
	tests := []struct {
		protocol string
		want     int
	}{{"tcp", 1}, {"udp", 1}, {"both", 2}}
	for _, tt := range tests {
		if got := len(health.Listeners(tt.protocol, ":1", nil)); got != tt.want {
			t.Errorf("Listeners(%q) = %d probes, want %d", tt.protocol, got, tt.want)
		}
	}
}
