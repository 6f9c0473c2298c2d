//go:build linux

package capture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/socklab/socklab/services/capture/internal/filter"
	"github.com/socklab/socklab/services/capture/internal/live"
	"github.com/socklab/socklab/services/kit/nettest"
)

// vethPair creates a veth pair named slcap<random>a and ...b, both up, and
// removes it when the test ends. It returns the sending end and the one to
// capture on. It skips where this process may not create one.
func vethPair(t *testing.T) (send, capture string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a veth pair needs root (CAP_NET_ADMIN)")
	}
	var b [4]byte
	rand.Read(b[:])
	name := "slcap" + hex.EncodeToString(b[:])
	send, capture = name+"a", name+"b"
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: send}, PeerName: capture}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("this kernel has no veth devices: %v", err)
		}
		t.Fatalf("create veth pair %s/%s: %v", send, capture, err)
	}
	t.Cleanup(func() {
		// Deleting one end deletes its peer.
		if link, err := netlink.LinkByName(send); err == nil {
			if err := netlink.LinkDel(link); err != nil {
				t.Errorf("delete veth %s: %v", send, err)
			}
		}
	})
	for _, n := range []string{send, capture} {
		// Without IPv6 the pair carries no packets of its own (neighbour
		// discovery, MLD reports), so the counts below are exact.
		err := os.WriteFile("/proc/sys/net/ipv6/conf/"+n+"/disable_ipv6", []byte("1"), 0o644)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("disable IPv6 on %s: %v", n, err)
		}
		link, err := netlink.LinkByName(n)
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
	waitOperUp(t, send, capture)
	return send, capture
}

// waitOperUp waits until the kernel reports each link operationally up.
// Until then (the kernel's link watcher may take a second under load) a
// link's queue is the noop one and drops every frame sent on it.
func waitOperUp(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		nettest.Until(t, n+" operationally up", func() bool {
			link, err := netlink.LinkByName(n)
			return err == nil && link.Attrs().OperState == netlink.OperUp
		})
	}
}

// sendFrames writes frames out of iface through a raw packet socket: they
// arrive on its peer as if from the wire. It sends them in bursts of 256
// and waits for the kernel to have put each burst's matching frames (those
// on UDP port 9000) in h's ring: a veth hands frames over through a
// per-CPU queue of 1000 (net.core.netdev_max_backlog), which a loaded
// machine may let overflow, and those drops are not the capture's.
func sendFrames(t *testing.T, iface string, frames [][]byte, h *live.Handle) {
	t.Helper()
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index}
	var matching uint64
	for i, f := range frames {
		if err := unix.Sendto(fd, f, 0, to); err != nil {
			t.Fatalf("send frame %d of %d on %s: %v", i, len(frames), iface, err)
		}
		if len(f) >= 38 && f[23] == 17 && f[36] == 9000>>8 && f[37] == 9000&0xff {
			matching++
		}
		if (i+1)%256 == 0 || i == len(frames)-1 {
			nettest.Until(t, fmt.Sprintf("the kernel to put the %d frames sent in the ring", matching),
				func() bool { return h.Stats().Received >= matching })
		}
	}
}

// openRing opens a ring of ringBytes on iface that keeps what "udp port
// 9000" matches: the filter in the kernel keeps the veth's own packets out
// of the ring and out of the counts.
func openRing(t *testing.T, iface string, ringBytes int) *live.Handle {
	t.Helper()
	flt, err := filter.Parse("udp port 9000")
	if err != nil {
		t.Fatal(err)
	}
	h, err := live.Open(t.Context(), live.Options{Iface: iface, Snaplen: 65535, RingBytes: ringBytes, Promisc: true, Filter: flt})
	if err != nil {
		t.Fatalf("open %s: %v", iface, err)
	}
	return h
}

// startRecorder runs a recorder on a live handle of iface and returns a
// function that stops it and returns Run's error.
func startRecorder(t *testing.T, h *live.Handle, iface, expr string) (*fixture, func() error) {
	t.Helper()
	fx := newRecorder(t, h, expr)
	fx.rec.Iface = iface
	fx.rec.StatusPath = StatusPath(fx.dir)
	fx.rec.StatusEvery = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fx.rec.Run(ctx) }()
	return fx, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(nettest.Timeout):
			t.Fatal("recorder did not stop")
			return nil
		}
	}
}

// TestVethCountsEveryFrame sends a bounded number of frames across a veth
// pair the test creates, with other traffic mixed in, and checks that the
// recorder wrote each matching frame once, that the kernel's ring counted
// the same number and dropped none, and that the files and the status file
// say so.
func TestVethCountsEveryFrame(t *testing.T) {
	const n = 20000
	sendIf, capIf := vethPair(t)
	h := openRing(t, capIf, 16<<20)
	fx, stop := startRecorder(t, h, capIf, "udp port 9000")

	var frames [][]byte
	for i := range n {
		frames = append(frames, udpFrame(t, 9000, fmt.Sprintf("frame %06d of the veth test", i)))
		if i%10 == 0 {
			frames = append(frames, udpFrame(t, 9001, "other port")) // filtered in the kernel
		}
	}
	sendFrames(t, sendIf, frames, h)

	// The last block reaches user space within the ring's retire timeout.
	nettest.Until(t, "the recorder to write every frame", func() bool { return fx.rec.Summary().Packets >= n })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	sum := fx.rec.Summary()
	st := h.Stats()
	if sum.Packets != n || sum.Filtered != 0 || sum.Drops != 0 {
		t.Errorf("recorder: %d packets, %d filtered, %d drops; want %d, 0, 0", sum.Packets, sum.Filtered, sum.Drops, n)
	}
	if st.Received != n || st.Drops != 0 {
		t.Errorf("kernel ring: received %d, dropped %d; want %d, 0", st.Received, st.Drops, n)
	}

	_, pkts := readDir(t, fx.dir)
	var got int
	for _, file := range pkts {
		for _, p := range file {
			if want := fmt.Sprintf("frame %06d of the veth test", got); string(p.data[42:]) != want {
				t.Fatalf("packet %d in the files = %q, want %q", got, p.data[42:], want)
			}
			got++
		}
	}
	if got != n {
		t.Errorf("files hold %d packets, want %d", got, n)
	}
	status := readStatus(t, fx.dir)
	if status.Packets != n || status.Drops != 0 || status.Iface != capIf || status.Filter != "udp port 9000" || status.File != sum.File {
		t.Errorf("status %+v, want %d packets, 0 drops, iface %s, file %s", status, n, capIf, sum.File)
	}
}

// TestVethReportsDrops fills a small ring before anything reads it: the
// kernel drops what does not fit, and the recorder reports those drops
// (summary, metric, status), the packets it wrote and the drops adding up
// to what was sent.
func TestVethReportsDrops(t *testing.T) {
	const n = 20000 // about 2.5 MB in the ring, which holds 1 MiB
	sendIf, capIf := vethPair(t)
	h := openRing(t, capIf, live.MinRingBytes)
	var frames [][]byte
	for i := range n {
		frames = append(frames, udpFrame(t, 9000, fmt.Sprintf("frame %06d of the veth test", i)))
	}
	sendFrames(t, sendIf, frames, h)
	fx, stop := startRecorder(t, h, capIf, "udp port 9000")

	nettest.Until(t, "the recorder to account for every frame, written or dropped", func() bool {
		s := fx.rec.Summary()
		return int64(s.Drops)+s.Packets >= n
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	sum := fx.rec.Summary()
	st := h.Stats()
	t.Logf("%d sent into a 1 MiB ring before reading: %d recorded, %d dropped (kernel: %d received, %d dropped)", n, sum.Packets, sum.Drops, st.Received, st.Drops)
	if sum.Drops == 0 || sum.Drops != st.Drops || sum.Packets+int64(sum.Drops) != n {
		t.Errorf("recorder: %d packets, %d drops (kernel: %d received, %d dropped); want drops > 0 adding up to %d",
			sum.Packets, sum.Drops, st.Received, st.Drops, n)
	}
	if got := testutil.ToFloat64(fx.rec.Metrics.Drops); got != float64(sum.Drops) {
		t.Errorf("capture_kernel_drops_total = %v, want %d", got, sum.Drops)
	}
	if status := readStatus(t, fx.dir); status.Drops != sum.Drops || status.Packets != sum.Packets {
		t.Errorf("status %+v, want %d packets, %d drops", status, sum.Packets, sum.Drops)
	}
	if st.Received != n {
		t.Errorf("kernel ring: received %d, want %d", st.Received, n)
	}
}

// TestVethStopKeepsTheLastPackets stops the recorder as soon as the kernel
// has put the frames in the ring, before its block timeout hands the block
// over: the stop waits for that block, so nothing received before it is
// lost.
func TestVethStopKeepsTheLastPackets(t *testing.T) {
	const n = 100
	sendIf, capIf := vethPair(t)
	h := openRing(t, capIf, 16<<20)
	fx, stop := startRecorder(t, h, capIf, "udp port 9000")
	var frames [][]byte
	for i := range n {
		frames = append(frames, udpFrame(t, 9000, fmt.Sprintf("frame %06d of the veth test", i)))
	}
	sendFrames(t, sendIf, frames, h) // returns once they are in the ring
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if sum, st := fx.rec.Summary(), h.Stats(); sum.Packets != n || st.Received != n {
		t.Errorf("stopped at once after %d frames: recorder wrote %d, kernel received %d", n, sum.Packets, st.Received)
	}
	var inFiles int
	_, pkts := readDir(t, fx.dir)
	for _, f := range pkts {
		inFiles += len(f)
	}
	if inFiles != n {
		t.Errorf("files hold %d packets, want %d", inFiles, n)
	}
}
