package netserve_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

func upper(p *netserve.Packet) {
	p.Out = append(p.Out, bytes.ToUpper(p.Data)...)
	p.Reply(p.Out)
}

func TestPacketServerReplies(t *testing.T) {
	for _, readers := range []int{1, 4} {
		srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(upper), Readers: readers}
		addr := nettest.ServeUDP(t, srv)
		c := nettest.Dial(t, "udp", addr)
		buf := make([]byte, 100)
		for _, give := range []string{"hello", "", "x"} {
			c.SetDeadline(time.Now().Add(nettest.Timeout))
			if _, err := c.Write([]byte(give)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("readers=%d: read reply to %q: %v", readers, give, err)
			}
			if want := string(bytes.ToUpper([]byte(give))); string(buf[:n]) != want {
				t.Errorf("readers=%d: reply to %q = %q, want %q", readers, give, buf[:n], want)
			}
		}
	}
}

func TestPacketServerDropsOversized(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := netserve.NewMetrics(reg, "test")
	srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(upper), MaxPacketBytes: 8, Metrics: m}
	addr := nettest.ServeUDP(t, srv)
	c := nettest.Dial(t, "udp", addr)
	c.Write([]byte("123456789")) // one byte over
	c.Write([]byte("12345678"))  // fits exactly
	c.SetDeadline(time.Now().Add(nettest.Timeout))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "12345678" {
		t.Fatalf("first reply = %q, %v; want only the datagram that fits answered", buf[:n], err)
	}
	if got := testutil.ToFloat64(m.Oversized); got != 1 {
		t.Errorf("oversized count = %v, want 1", got)
	}
}

func TestPacketServerShutdown(t *testing.T) {
	srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(upper), Readers: 3}
	pc := nettest.ListenUDP(t)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServePacket(pc) }()
	c := nettest.Dial(t, "udp", pc.LocalAddr().String())
	c.SetDeadline(time.Now().Add(nettest.Timeout))
	c.Write([]byte("up?"))
	if _, err := c.Read(make([]byte, 10)); err != nil {
		t.Fatalf("server not answering: %v", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-errc; !errors.Is(err, netserve.ErrServerClosed) {
		t.Errorf("ServePacket = %v, want ErrServerClosed", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
	if err := srv.ServePacket(nettest.ListenUDP(t)); !errors.Is(err, netserve.ErrServerClosed) {
		t.Errorf("ServePacket after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestPacketServerNeedsUDPConn(t *testing.T) {
	srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(upper)}
	pc, err := net.ListenPacket("unixgram", t.TempDir()+"/sock")
	if err != nil {
		t.Skip("no unixgram:", err)
	}
	if err := srv.ServePacket(pc); err == nil || errors.Is(err, netserve.ErrServerClosed) {
		t.Errorf("ServePacket(unixgram) = %v, want an error", err)
	}
}

func TestPacketAllocs(t *testing.T) {
	srv := &netserve.PacketServer{Handler: netserve.PacketHandlerFunc(func(p *netserve.Packet) {
		p.Reply(append(p.Out, p.Data...))
	})}
	addr := nettest.ServeUDP(t, srv)
	c := nettest.Dial(t, "udp", addr)
	buf := make([]byte, 64)
	msg := []byte("ping")
	c.SetDeadline(time.Now().Add(nettest.Timeout))
	roundTrip := func() {
		c.Write(msg)
		c.Read(buf)
	}
	roundTrip()
	// The client side allocates nothing either, so any allocation counted
	// here would be the server's (the testing package counts the process).
	if n := testing.AllocsPerRun(200, roundTrip); n > 0 {
		t.Errorf("allocations per datagram = %v, want 0", n)
	}
}
