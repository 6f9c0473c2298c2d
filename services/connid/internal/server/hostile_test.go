package server

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/connid/proto"
	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/nettest"
)

// claimAll sends HELLO for n fresh IDs from c, window at a time, and counts
// the replies by their first word.
func claimAll(t *testing.T, c *net.UDPConn, prefix string, n int) map[string]int {
	t.Helper()
	const window = 64
	got := map[string]int{}
	buf := make([]byte, 256)
	for i := 0; i < n; i += window {
		k := min(window, n-i)
		for j := range k {
			if _, err := fmt.Fprintf(c, "HELLO %s-%d", prefix, i+j); err != nil {
				t.Fatal(err)
			}
		}
		for range k {
			c.SetReadDeadline(time.Now().Add(nettest.Timeout))
			m, err := c.Read(buf)
			if err != nil {
				t.Fatalf("after %d replies: %v", i, err)
			}
			reply := string(buf[:m])
			if strings.HasPrefix(reply, proto.ErrorBusy) {
				got[proto.ErrorBusy]++
			} else {
				got[strings.Fields(reply)[0]]++
			}
		}
	}
	return got
}

// One UDP source claiming IDs without end gets its share of the table and
// then ERROR BUSY; another source is still served, and when the flood's IDs
// expire the table and its per-source counts are empty again (issue 16,
// finding 4: before, the table had no bound and one socket held 1.75
// million IDs and 3.7 GB after 30 s).
func TestIDFloodBounded(t *testing.T) {
	cfg, err := config.Load[Config]("CONNID_", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.st.Limit(cfg.MaxIDs, cfg.MaxIDsPerSource)
	addr := f.serveUDP(t, 1)

	flood := nettest.Dial(t, "udp", addr).(*net.UDPConn)
	n := cfg.MaxIDsPerSource + 2000
	got := claimAll(t, flood, "flood", n)
	if got[proto.OK] != cfg.MaxIDsPerSource || got[proto.ErrorBusy] != n-cfg.MaxIDsPerSource {
		t.Errorf("%d claims from one source: %v; want %d OK, the rest %s", n, got, cfg.MaxIDsPerSource, proto.ErrorBusy)
	}
	if live := f.st.Len(); live > cfg.MaxIDsPerSource {
		t.Errorf("%d IDs in the table, want at most %d", live, cfg.MaxIDsPerSource)
	}

	other, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, flood.RemoteAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got := claimAll(t, other, "other", 1); got[proto.OK] != 1 {
		t.Errorf("a claim from 127.0.0.2 during the flood: %v, want OK", got)
	}

	f.clk.Advance(31 * time.Second)
	nettest.Until(t, "the sweeper to remove every ID after the TTL", func() bool { return f.st.Len() == 0 })
	// The flood's share is free again.
	if got := claimAll(t, flood, "again", 10); got[proto.OK] != 10 {
		t.Errorf("claims after the flood expired: %v, want 10 OK", got)
	}
}
