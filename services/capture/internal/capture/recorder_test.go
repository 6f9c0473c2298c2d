package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/socklab/socklab/services/capture/internal/filter"
	"github.com/socklab/socklab/services/capture/internal/pcapfile"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC)

// udpFrame builds an Ethernet/IPv4/UDP frame with gopacket.
func udpFrame(t testing.TB, dport uint16, payload string) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{172, 28, 0, 5}, DstIP: net.IP{172, 28, 0, 9}}
	udp := &layers.UDP{SrcPort: 50000, DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type pkt struct {
	data []byte
	ci   gopacket.CaptureInfo
}

// fakeSource hands out the packets it is fed. ReadPacket blocks until a
// packet, Close or (with eof) the end of the list.
type fakeSource struct {
	ch     chan pkt
	eof    bool // io.EOF once the list is consumed, instead of blocking
	err    error
	drops  uint64
	once   sync.Once
	closed chan struct{}
}

func newSource(t testing.TB, eof bool, pkts ...[]byte) *fakeSource {
	s := &fakeSource{ch: make(chan pkt, len(pkts)), eof: eof, closed: make(chan struct{})}
	for i, d := range pkts {
		s.ch <- pkt{d, gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(d), Length: len(d)}}
	}
	return s
}

func (s *fakeSource) ReadPackets(fn func([]byte, gopacket.CaptureInfo) error) error {
	if s.eof && len(s.ch) == 0 {
		if s.err != nil {
			return s.err
		}
		return io.EOF
	}
	select {
	case p := <-s.ch:
		if err := fn(p.data, p.ci); err != nil {
			return err
		}
		// The rest of what is queued, as one batch.
		for {
			select {
			case p := <-s.ch:
				if err := fn(p.data, p.ci); err != nil {
					return err
				}
			default:
				return nil
			}
		}
	case <-s.closed:
		return errors.New("use of closed file")
	}
}

func (s *fakeSource) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *fakeSource) Drops() uint64 { return s.drops }

type fixture struct {
	rec  *Recorder
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	dir  string
}

func newRecorder(t *testing.T, src Source, filterExpr string) *fixture {
	t.Helper()
	f, err := filter.Parse(filterExpr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	core, logs := observer.New(zap.InfoLevel)
	rec := &Recorder{
		Source: src,
		Filter: f,
		Out: &pcapfile.Rotator{
			Dir: dir, Prefix: "socklab", Snaplen: pcapfile.MaxSnaplen, LinkType: layers.LinkTypeEthernet,
		},
		Iface:          "test0",
		FlushEvery:     time.Second,
		HeartbeatEvery: 5 * time.Second,
		HeartbeatPath:  HeartbeatPath(dir, "socklab"),
		LogEvery:       30 * time.Second,
		Metrics:        NewMetrics(reg),
		Log:            zap.New(core),
	}
	return &fixture{rec: rec, reg: reg, logs: logs, dir: dir}
}

// readDir reads every capture file in dir, oldest first.
func readDir(t *testing.T, dir string) (files []string, pkts [][]pkt) {
	t.Helper()
	names, err := pcapfile.List(dir, "socklab")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var ps []pkt
		for {
			data, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ps = append(ps, pkt{data, ci})
		}
		f.Close()
		files = append(files, name)
		pkts = append(pkts, ps)
	}
	return files, pkts
}

func TestRecorderFiltersRotatesAndKeeps(t *testing.T) {
	var frames [][]byte
	for i := range 20 {
		port := uint16(9000)
		if i%2 == 1 {
			port = 5000
		}
		frames = append(frames, udpFrame(t, port, strings.Repeat("x", 50)+string(rune('a'+i))))
	}
	fx := newRecorder(t, newSource(t, true, frames...), "udp port 9000")
	rec := int64(16 + len(frames[0]))
	fx.rec.Out.MaxBytes = 24 + 3*rec // three packets per file
	fx.rec.Out.Keep = 2
	if err := fx.rec.Run(t.Context()); err != nil {
		t.Fatalf("Run = %v", err)
	}
	// 10 packets pass: files of 3, 3, 3, 1; the two newest stay.
	files, pkts := readDir(t, fx.dir)
	if len(files) != 2 || len(pkts[0]) != 3 || len(pkts[1]) != 1 {
		t.Fatalf("files %q with %d and %d packets, want 2 files of 3 and 1", files, len(pkts[0]), len(pkts[1]))
	}
	want := []int{12, 14, 16, 18} // the frames the last two files hold
	got := append(pkts[0], pkts[1]...)
	for i, w := range want {
		if !bytes.Equal(got[i].data, frames[w]) || !got[i].ci.Timestamp.Equal(t0.Add(time.Duration(w)*time.Millisecond)) {
			t.Errorf("packet %d is not frame %d", i, w)
		}
	}
	for name, m := range map[string]prometheus.Counter{
		"packets": fx.rec.Metrics.Packets, "filtered": fx.rec.Metrics.Filtered,
		"rotated": fx.rec.Metrics.Rotated, "deleted": fx.rec.Metrics.Deleted,
	} {
		wantV := map[string]float64{"packets": 10, "filtered": 10, "rotated": 3, "deleted": 2}[name]
		if v := testutil.ToFloat64(m); v != wantV {
			t.Errorf("%s metric = %v, want %v", name, v, wantV)
		}
	}
	if v := testutil.ToFloat64(fx.rec.Metrics.Bytes); v != float64(10*len(frames[0])) {
		t.Errorf("bytes metric = %v, want %d", v, 10*len(frames[0]))
	}
	s := fx.rec.Summary()
	if s.Packets != 10 || s.Filtered != 10 || s.Files != 4 || s.File != files[1] {
		t.Errorf("Summary = %+v", s)
	}
	if _, err := os.Stat(fx.rec.HeartbeatPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("heartbeat left after the end: %v", err)
	}
	stopped := fx.logs.FilterMessage("capture stopped").All()
	if len(stopped) != 1 || stopped[0].ContextMap()["cause"] != "EOF" || stopped[0].ContextMap()["packets"] != int64(10) {
		t.Errorf("stop log %+v", stopped)
	}
}

func TestRecorderCount(t *testing.T) {
	var frames [][]byte
	for i := range 8 {
		frames = append(frames, udpFrame(t, 9000, string(rune('a'+i))))
	}
	src := newSource(t, false, frames...) // never ends by itself
	fx := newRecorder(t, src, "")
	fx.rec.Count = 5
	if err := fx.rec.Run(t.Context()); err != nil {
		t.Fatalf("Run = %v", err)
	}
	_, pkts := readDir(t, fx.dir)
	if len(pkts) != 1 || len(pkts[0]) != 5 {
		t.Fatalf("recorded %v, want one file of 5 packets", pkts)
	}
	select {
	case <-src.closed:
	default:
		t.Error("source not closed")
	}
	if e := fx.logs.FilterMessage("capture stopped").All(); len(e) != 1 || e[0].ContextMap()["cause"] != ErrCountReached.Error() {
		t.Errorf("stop log %+v", e)
	}
}

// TestRecorderTimers runs a capture bounded by a duration in a synctest
// bubble: flushes, heartbeats and summaries happen on time.
func TestRecorderTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource(t, false, udpFrame(t, 9000, "one"), udpFrame(t, 9000, "two"))
		src.drops = 7
		fx := newRecorder(t, src, "")
		fx.rec.Duration = 95 * time.Second
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- fx.rec.Run(context.Background()) }()

		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		// Flushed at 1s: both packets are on disk, and the heartbeat says so.
		if _, pkts := readDir(t, fx.dir); len(pkts) != 1 || len(pkts[0]) != 2 {
			t.Errorf("after the first flush the file holds %v, want 2 packets", pkts)
		}
		if err := CheckHeartbeat(fx.rec.HeartbeatPath, 15*time.Second, time.Now()); err != nil {
			t.Errorf("healthcheck while running: %v", err)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if err := CheckHeartbeat(fx.rec.HeartbeatPath, 5*time.Second, time.Now()); err != nil {
			t.Errorf("heartbeat not rewritten every 5s: %v", err)
		}
		var hb Heartbeat
		if b, err := os.ReadFile(fx.rec.HeartbeatPath); err != nil || json.Unmarshal(b, &hb) != nil || hb.Drops != 7 || hb.Packets != 2 {
			t.Errorf("heartbeat %+v (%v), want 2 packets and the source's 7 drops", hb, err)
		}

		err := <-done
		if err != nil {
			t.Errorf("Run = %v", err)
		}
		if d := time.Since(start); d != 95*time.Second {
			t.Errorf("ran %v, want 95s", d)
		}
		if n := fx.logs.FilterMessage("capture summary").Len(); n != 3 {
			t.Errorf("%d summaries in 95s, want 3 (every 30s)", n)
		}
		stop := fx.logs.FilterMessage("capture stopped").All()
		if len(stop) != 1 || stop[0].ContextMap()["cause"] != ErrDurationReached.Error() || stop[0].ContextMap()["drops"] != uint64(7) {
			t.Errorf("stop log %+v", stop)
		}
		if v := testutil.ToFloat64(fx.rec.Metrics.Drops); v != 7 {
			t.Errorf("drops metric %v, want 7", v)
		}
		if err := CheckHeartbeat(fx.rec.HeartbeatPath, time.Hour, time.Now()); err == nil {
			t.Error("healthcheck passes after the capture stopped")
		}
	})
}

// TestHeartbeatFollowsRotation keeps one file only: the heartbeat must name
// the new file as soon as the old one is deleted.
func TestHeartbeatFollowsRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource(t, false, udpFrame(t, 1, "a"), udpFrame(t, 1, "b"), udpFrame(t, 1, "c"))
		fx := newRecorder(t, src, "")
		fx.rec.Out.MaxBytes = 1 // one packet per file
		fx.rec.Out.Keep = 1
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- fx.rec.Run(ctx) }()
		synctest.Wait() // all three packets written, no heartbeat tick yet
		files, _ := readDir(t, fx.dir)
		if len(files) != 1 || fx.rec.Summary().Files != 3 {
			t.Errorf("files %q of %d opened, want the third alone", files, fx.rec.Summary().Files)
		}
		if err := CheckHeartbeat(fx.rec.HeartbeatPath, time.Second, time.Now()); err != nil {
			t.Errorf("healthcheck right after rotation: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestRecorderStopsOnContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fx := newRecorder(t, newSource(t, false, udpFrame(t, 1, "x")), "")
		ctx, cancel := context.WithCancelCause(context.Background())
		done := make(chan error, 1)
		go func() { done <- fx.rec.Run(ctx) }()
		time.Sleep(10 * time.Second)
		cancel(errors.New("signal received: terminated"))
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		stop := fx.logs.FilterMessage("capture stopped").All()
		if len(stop) != 1 || stop[0].ContextMap()["cause"] != "signal received: terminated" {
			t.Errorf("stop log %+v", stop)
		}
		if _, pkts := readDir(t, fx.dir); len(pkts) != 1 || len(pkts[0]) != 1 {
			t.Errorf("file holds %v, want the one packet", pkts)
		}
	})
}

func TestRecorderReadError(t *testing.T) {
	src := newSource(t, true, udpFrame(t, 1, "x"))
	src.err = errors.New("network is down")
	fx := newRecorder(t, src, "")
	err := fx.rec.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "read test0: network is down") {
		t.Errorf("Run = %v, want the read error", err)
	}
	if _, pkts := readDir(t, fx.dir); len(pkts) != 1 || len(pkts[0]) != 1 {
		t.Errorf("file holds %v, want the packet read before the error", pkts)
	}
	if fx.logs.FilterMessage("capture stopped").FilterLevelExact(zap.ErrorLevel).Len() != 1 {
		t.Errorf("no error-level stop log: %+v", fx.logs.All())
	}
}

func TestRecorderUnwritableDir(t *testing.T) {
	src := newSource(t, false)
	fx := newRecorder(t, src, "")
	fx.rec.Out.Dir = filepath.Join(fx.dir, "missing")
	if err := fx.rec.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "open capture file") {
		t.Errorf("Run = %v, want an open error", err)
	}
	select {
	case <-src.closed:
	default:
		t.Error("source left open")
	}
}

// TestStatusEverySecond reads the dashboard's status file as the capture
// runs: rewritten every second with the counts and the kernel's drops, and
// left with the final figures after the stop.
func TestStatusEverySecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource(t, false, udpFrame(t, 9000, "one"), udpFrame(t, 9000, "two"), udpFrame(t, 5000, "three"))
		src.drops = 7
		fx := newRecorder(t, src, "udp port 9000")
		fx.rec.StatusPath = StatusPath(fx.dir)
		fx.rec.Duration = 10 * time.Second
		start := time.Now().UTC()
		done := make(chan error, 1)
		go func() { done <- fx.rec.Run(context.Background()) }()

		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		st := readStatus(t, fx.dir)
		want := Status{
			Iface: "test0", Filter: "udp port 9000", File: fx.rec.Summary().File,
			Packets: 2, Bytes: int64(len(udpFrame(t, 9000, "one")) + len(udpFrame(t, 9000, "two"))), Drops: 7,
			Started: start, Updated: start.Add(3 * time.Second),
		}
		if st != want {
			t.Errorf("status after 3.5s = %+v, want %+v", st, want)
		}
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		want.Updated = start.Add(10 * time.Second)
		if st := readStatus(t, fx.dir); st != want {
			t.Errorf("status after the stop = %+v, want %+v", st, want)
		}
	})
}

func readStatus(t *testing.T, dir string) Status {
	t.Helper()
	b, err := os.ReadFile(StatusPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("status file %s: %v", b, err)
	}
	return st
}
