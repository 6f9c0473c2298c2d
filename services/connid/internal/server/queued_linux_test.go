package server

import (
	"net"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/nettest"
)

// TestRecvQueue: waiting tells whether a datagram is queued on the socket,
// without reading it.
func TestRecvQueue(t *testing.T) {
	pc := nettest.ListenUDP(t)
	q := newRecvQueue(pc)
	if q.waiting() {
		t.Fatal("waiting on an empty socket")
	}
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("HELLO 1")); err != nil {
		t.Fatal(err)
	}
	nettest.Until(t, "waiting to see the datagram sent", q.waiting)
	if !q.waiting() {
		t.Error("waiting read the datagram")
	}
	buf := make([]byte, 64)
	pc.SetReadDeadline(time.Now().Add(nettest.Timeout))
	if n, _, err := pc.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "HELLO 1" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if q.waiting() {
		t.Error("waiting after the only datagram was read")
	}
	if newRecvQueue(nil).waiting() {
		t.Error("waiting without a socket")
	}
}
