package server_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socklab/socklab/services/autoreply/internal/server"
	"github.com/socklab/socklab/services/autoreply/proto"
	"github.com/socklab/socklab/services/kit/nettest"
)

// A flood of empty and 1-byte datagrams gets back no more than 3 times
// its bytes plus the credit (issue 16, finding 9: before, every datagram
// got a reply of about 106 bytes, 4.8 times its bytes on the wire).
func TestUDPAmplificationBudget(t *testing.T) {
	cfg := defaults()
	h := newHandler(t)
	addr := nettest.ServeUDP(t, h.UDPServer(cfg))
	c := nettest.Dial(t, "udp", addr).(*net.UDPConn)

	start := time.Now()
	sent, got := 0, 0
	buf := make([]byte, 1024)
	// In rounds of 200 datagrams, which fit the server's receive buffer,
	// each ended by a marker that is always answered (its reply is shorter
	// than 3 times it): its reply says the server has read the round.
	marker := bytes.Repeat([]byte{'m'}, 100)
	for range 10 {
		for i := range 200 {
			d := []byte{'x'}[:i%2] // empty, then 1 byte
			if _, err := c.Write(d); err != nil {
				t.Fatal(err)
			}
			sent += len(d)
		}
		c.Write(marker)
		sent += len(marker)
		for {
			c.SetReadDeadline(time.Now().Add(nettest.Timeout))
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("after %d reply bytes: %v (the marker's reply never came)", got, err)
			}
			got += n
			if r, err := proto.Parse(buf[:n]); err == nil && r.Len == len(marker) {
				break
			}
		}
	}
	elapsed := time.Since(start)
	allowed := server.Amplification*sent + cfg.UDPCredit + int(float64(cfg.UDPCreditRate)*elapsed.Seconds())
	t.Logf("sent %d bytes in 2010 datagrams, received %d (%.1fx) in %v; allowed %d", sent, got, float64(got)/float64(sent), elapsed, allowed)
	if got > allowed {
		t.Errorf("a flood of %d bytes drew %d bytes of replies, want at most %d (3x plus the credit)", sent, got, allowed)
	}
	if got := testutil.ToFloat64(h.Metrics.Withheld); got == 0 {
		t.Error("no reply counted as withheld")
	}
}

// Someone typing lines into nc -u sees every reply: the credit covers the
// difference between a short line and its reply.
func TestUDPBudgetLetsPeopleType(t *testing.T) {
	h := newHandler(t)
	addr := nettest.ServeUDP(t, h.UDPServer(defaults()))
	c := nettest.Dial(t, "udp", addr)
	buf := make([]byte, 1024)
	for i := range 30 {
		line := []byte("hello there\n")
		c.Write(line)
		c.SetReadDeadline(time.Now().Add(nettest.Timeout))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if r, err := proto.Parse(buf[:n]); err != nil || !r.Matches(line) {
			t.Fatalf("line %d: reply %q (%v)", i+1, buf[:n], err)
		}
	}
}
