package shape

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/socklab/socklab/services/kit/nettest"
	"golang.org/x/sys/unix"
)

// pair is two network namespaces joined by a veth pair: a (192.0.2.1,
// the interface under test) and b (192.0.2.2). All traffic stays in them.
type pair struct {
	a, b       netns.NsHandle
	devA, devB string
}

const (
	addrA = "192.0.2.1"
	addrB = "192.0.2.2"
)

// newPair makes the namespaces, named slimp-PID-N-a and -b, and removes
// them when the test ends, whatever happens.
func newPair(t *testing.T) *pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	base := fmt.Sprintf("slimp-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	p := &pair{devA: "slimpa0", devB: "slimpb0"}
	for _, side := range []struct {
		h    *netns.NsHandle
		name string
	}{{&p.a, base + "-a"}, {&p.b, base + "-b"}} {
		h, err := netns.NewNamed(side.name)
		if serr := netns.Set(orig); serr != nil {
			t.Fatalf("back to the test's namespace: %v", serr)
		}
		if err != nil {
			t.Fatalf("netns %s: %v", side.name, err)
		}
		*side.h = h
		t.Cleanup(func() {
			h.Close()
			if err := netns.DeleteNamed(side.name); err != nil {
				t.Errorf("delete netns %s: %v", side.name, err)
			}
		})
	}
	ha, hb := handleAt(t, p.a), handleAt(t, p.b)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.devA}, PeerName: p.devB, PeerNamespace: netlink.NsFd(p.b)}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	for _, s := range []struct {
		h    *netlink.Handle
		dev  string
		addr string
	}{{ha, p.devA, addrA}, {hb, p.devB, addrB}} {
		for _, name := range []string{"lo", s.dev} {
			l, err := s.h.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			if name == s.dev {
				a, _ := netlink.ParseAddr(s.addr + "/24")
				if err := s.h.AddrAdd(l, a); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Until the kernel's link watcher has marked each end operationally up
	// (it may take a second under load), its queue is the noop one and
	// drops every datagram: a burst sent now would all be lost.
	for _, s := range []struct {
		h   *netlink.Handle
		dev string
	}{{ha, p.devA}, {hb, p.devB}} {
		nettest.Until(t, s.dev+" operationally up", func() bool {
			l, err := s.h.LinkByName(s.dev)
			return err == nil && l.Attrs().OperState == netlink.OperUp
		})
	}
	return p
}

// handleAt returns a netlink handle in namespace ns, closed when the test
// ends.
func handleAt(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// in runs f with the calling thread in namespace ns, so that sockets f
// opens belong to ns.
func in(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the test's namespace: " + err.Error())
		}
	}()
	f()
}

func open(t *testing.T, p *pair) *Link {
	t.Helper()
	l, err := Open(p.a, p.devA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// sendUDP sends n datagrams from namespace from to addr:port in namespace
// to and returns how many arrived. The receiver stops after 300 ms with
// nothing new. Every sendto must succeed: a drop must look like loss, not
// an error.
func sendUDP(t *testing.T, from, to netns.NsHandle, fromAddr, toAddr string, n int) int {
	t.Helper()
	var rx *net.UDPConn
	in(t, to, func() {
		var err error
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(toAddr)})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer rx.Close()
	forceRcvBuf(t, rx, 16<<20)
	var tx *net.UDPConn
	in(t, from, func() {
		var err error
		tx, err = net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(fromAddr)}, rx.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
	})
	defer tx.Close()
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 2048)
		count := 0
		for {
			rx.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := rx.Read(buf); err != nil {
				got <- count
				return
			}
			count++
		}
	}()
	msg := make([]byte, 64)
	for i := range n {
		if _, err := tx.Write(msg); err != nil {
			t.Errorf("datagram %d: send failed (%v): a drop must not be an error to the sender", i, err)
			break
		}
	}
	return <-got
}

// forceRcvBuf gives the receiver room for the whole burst, so that only
// the impairment loses datagrams (SO_RCVBUFFORCE: root may exceed rmem_max).
func forceRcvBuf(t *testing.T, c *net.UDPConn, size int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
	}); err != nil || serr != nil {
		t.Fatalf("SO_RCVBUFFORCE: %v %v", err, serr)
	}
}

// snapshot describes namespace a: its links, their qdiscs and every
// nftables table, so that a clear can be checked to restore it exactly.
func snapshot(t *testing.T, p *pair) string {
	t.Helper()
	h := handleAt(t, p.a)
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		out = append(out, fmt.Sprintf("link %s %s mtu %d", l.Attrs().Name, l.Type(), l.Attrs().MTU))
		qs, err := h.QdiscList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			out = append(out, fmt.Sprintf("  qdisc %s %v", q.Type(), *q.Attrs()))
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(p.a)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		out = append(out, fmt.Sprintf("nft table %v %s", tb.Family, tb.Name))
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chains {
		out = append(out, fmt.Sprintf("nft chain %s %s", ch.Table.Name, ch.Name))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func TestLossBothDirections(t *testing.T) {
	p := newPair(t)
	l := open(t, p)
	before := snapshot(t, p)
	// Each side learns the other's MAC address first, so that the burst
	// below measures loss alone, not the first packets' wait for ARP
	// (which loss spares: TestLossKeepsARP).
	for _, d := range [][2]netns.NsHandle{{p.a, p.b}, {p.b, p.a}} {
		src, dst := addrA, addrB
		if d[0] == p.b {
			src, dst = addrB, addrA
		}
		if got := sendUDP(t, d[0], d[1], src, dst, 10); got != 10 {
			t.Fatalf("before Apply: %d of 10 datagrams arrived", got)
		}
	}
	if err := l.Apply(Settings{LossPercent: 10}, time.Now()); err != nil {
		t.Fatalf("Apply(loss 10%%): %v", err)
	}
	const n = 2000
	for _, dir := range []struct {
		name     string
		from, to netns.NsHandle
		src, dst string
	}{
		{"outgoing", p.a, p.b, addrA, addrB},
		{"incoming", p.b, p.a, addrB, addrA},
	} {
		got := sendUDP(t, dir.from, dir.to, dir.src, dir.dst, n)
		lost := n - got
		t.Logf("%s: %d of %d datagrams lost (%.1f%%)", dir.name, lost, n, 100*float64(lost)/n)
		// 10% of 2000 is 200, standard deviation 13.4: 120 to 300 is
		// six deviations either way (and room for an odd extra drop).
		if lost < 120 || lost > 300 {
			t.Errorf("%s with loss 10%%: lost %d of %d, want 120 to 300", dir.name, lost, n)
		}
	}
	if err := l.Clear(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, p); after != before {
		t.Errorf("after Clear the namespace differs:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if got := sendUDP(t, p.a, p.b, addrA, addrB, n); got != n {
		t.Errorf("after Clear: %d of %d datagrams arrived", got, n)
	}
}

// tcpTransfer sends size bytes over TCP from namespace from to namespace
// to and returns how long the receiver took to get them all.
func tcpTransfer(t *testing.T, from, to netns.NsHandle, toAddr string, size int) time.Duration {
	t.Helper()
	var ln net.Listener
	in(t, to, func() {
		var err error
		ln, err = net.Listen("tcp4", toAddr+":0")
		if err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	type result struct {
		n   int64
		d   time.Duration
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		start := time.Now()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		n, err := io.Copy(io.Discard, c)
		done <- result{n, time.Since(start), err}
	}()
	var c net.Conn
	in(t, from, func() {
		var err error
		c, err = net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
	})
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	r := <-done
	if r.err != nil || r.n != int64(size) {
		t.Fatalf("received %d of %d bytes: %v", r.n, size, r.err)
	}
	return r.d
}

func TestRateBothDirections(t *testing.T) {
	p := newPair(t)
	l := open(t, p)
	before := snapshot(t, p)
	const rate = 4_000_000 // bits/s
	if err := l.Apply(Settings{Rate: rate}, time.Now()); err != nil {
		t.Fatalf("Apply(rate 4mbit): %v", err)
	}
	const size = 400_000 // 0.8 s at 4mbit, headers aside
	ideal := time.Duration(float64(size*8) / rate * float64(time.Second))
	for _, dir := range []struct {
		name     string
		from, to netns.NsHandle
		dst      string
	}{
		{"outgoing", p.a, p.b, addrB},
		{"incoming", p.b, p.a, addrA},
	} {
		d := tcpTransfer(t, dir.from, dir.to, dir.dst, size)
		t.Logf("%s: %d bytes in %v at 4mbit (%.2f mbit/s)", dir.name, size, d, float64(size*8)/d.Seconds()/1e6)
		// The shaper may let one burst (15 KiB) through at once; it must
		// not be much faster than the rate. The upper bound only catches
		// a shaper that stalls.
		if d < ideal*85/100 || d > ideal*4 {
			t.Errorf("%s at 4mbit: %d bytes took %v, want %v to %v", dir.name, size, d, ideal*85/100, ideal*4)
		}
	}
	if err := l.Clear(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, p); after != before {
		t.Errorf("after Clear the namespace differs:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if d := tcpTransfer(t, p.a, p.b, addrB, size); d > ideal/4 {
		t.Errorf("after Clear: %d bytes took %v, still shaped", size, d)
	}
}

func TestCurrent(t *testing.T) {
	p := newPair(t)
	l := open(t, p)
	if _, ok, err := l.Current(); ok || err != nil {
		t.Fatalf("Current() on a clear link = %v, %v, want none", ok, err)
	}
	since := time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)
	want := Settings{LossPercent: 2.5, Rate: 2_000_000}
	if err := l.Apply(want, since); err != nil {
		t.Fatal(err)
	}
	got, ok, err := l.Current()
	if err != nil || !ok || got.Settings != want || !got.Since.Equal(since) {
		t.Errorf("Current() = %+v, %v, %v, want %+v since %v", got, ok, err, want, since)
	}
	// Apply replaces: the second setting is the only one in force.
	if err := l.Apply(Settings{LossPercent: 1}, since); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := l.Current(); got.Settings != (Settings{LossPercent: 1}) {
		t.Errorf("after a second Apply, Current() = %+v", got.Settings)
	}
	if err := l.Apply(Settings{}, since); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.Current(); ok || err != nil {
		t.Errorf("Current() after Apply(zero) = %v, %v, want none", ok, err)
	}
}

func TestMissingInterface(t *testing.T) {
	p := newPair(t)
	before := snapshot(t, p)
	l, err := Open(p.a, "nosuchdev0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Apply(Settings{LossPercent: 5}, time.Now()); err == nil || !strings.Contains(err.Error(), "nosuchdev0") {
		t.Errorf("Apply on a missing interface = %v, want an error naming it", err)
	}
	if after := snapshot(t, p); after != before {
		t.Errorf("a failed Apply left something behind:\n%s", after)
	}
}

// TestDelay checks a delay of 40 ms each way where the kernel has netem,
// and elsewhere the error that names the missing feature, with nothing
// left behind.
func TestDelay(t *testing.T) {
	p := newPair(t)
	l := open(t, p)
	before := snapshot(t, p)
	err := l.Apply(Settings{Delay: 40 * time.Millisecond, Jitter: 5 * time.Millisecond}, time.Now())
	if errors.Is(err, ErrNoNetem) {
		if !strings.Contains(err.Error(), "CONFIG_NET_SCH_NETEM") {
			t.Errorf("error %q does not name the kernel option", err)
		}
		if after := snapshot(t, p); after != before {
			t.Errorf("a refused delay left something behind:\n%s", after)
		}
		t.Skipf("kernel lacks netem (CONFIG_NET_SCH_NETEM): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Clear()
	var srv *net.UDPConn
	in(t, p.a, func() {
		srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addrA)})
		if err != nil {
			t.Fatal(err)
		}
	})
	defer srv.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			srv.WriteToUDP(buf[:n], from)
		}
	}()
	var cl *net.UDPConn
	in(t, p.b, func() {
		cl, err = net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
	})
	defer cl.Close()
	buf := make([]byte, 64)
	for range 5 {
		start := time.Now()
		cl.Write([]byte("ping"))
		cl.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := cl.Read(buf); err != nil {
			t.Fatal(err)
		}
		// 40 ms each way, less 5 ms of jitter each way at worst.
		if rtt := time.Since(start); rtt < 70*time.Millisecond {
			t.Errorf("round trip %v with 40ms delay each way, want at least 70ms", rtt)
		}
	}
}

// TestLossKeepsARP: at 100% loss every datagram is lost, but ARP still
// resolves, so what a client sends leaves it and can be seen on the wire
// (the connid experiment in the root README captures its HELLOs).
func TestLossKeepsARP(t *testing.T) {
	p := newPair(t)
	l := open(t, p)
	if err := l.Apply(Settings{LossPercent: 100}, time.Now()); err != nil {
		t.Fatalf("Apply(loss 100%%): %v", err)
	}
	if got := sendUDP(t, p.a, p.b, addrA, addrB, 5); got != 0 {
		t.Errorf("loss 100%%: %d of 5 datagrams arrived", got)
	}
	h := handleAt(t, p.a)
	link, err := h.LinkByName(p.devA)
	if err != nil {
		t.Fatal(err)
	}
	resolved := netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE
	state := "no entry"
	nettest.Until(t, addrB+" resolved through ARP at 100% loss", func() bool {
		neighs, err := h.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range neighs {
			if n.IP.String() == addrB {
				state = fmt.Sprintf("state %#x", n.State)
				return n.State&resolved != 0 && len(n.HardwareAddr) == 6
			}
		}
		return false
	})
	t.Logf("neighbour %s: %s", addrB, state)
}
