//go:build linux

package live

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"golang.org/x/net/bpf"

	"github.com/socklab/socklab/services/capture/internal/filter"
)

func TestKernelFilter(t *testing.T) {
	udp, err := filter.Parse("udp port 9000")
	if err != nil {
		t.Fatal(err)
	}
	long, _ := filter.Parse(strings.Repeat("port 1 or ", 80) + "port 2")
	tests := []struct {
		flt      *filter.Filter
		loopback bool
		min, max int
		wantErr  error
	}{
		{nil, false, 2, 2, nil}, // accept, reject
		{nil, true, 4, 4, nil},  // the packet type first
		{udp, false, 40, 200, nil},
		{long, false, 0, 0, filter.ErrProgramTooLong},
	}
	for _, tt := range tests {
		prog, err := kernelFilter(tt.flt, tt.loopback, 1500)
		if err != tt.wantErr || len(prog) < tt.min || len(prog) > tt.max {
			t.Errorf("kernelFilter(%q, %v) = %d instructions, %v; want %d to %d, %v", tt.flt, tt.loopback, len(prog), err, tt.min, tt.max, tt.wantErr)
		}
		if err == nil {
			if _, ok := bpf.Disassemble(prog); !ok {
				t.Errorf("kernelFilter(%q) does not disassemble", tt.flt)
			}
		}
	}
}

// openLoopback opens lo, skipping the test where AF_PACKET is not allowed.
func openLoopback(t *testing.T, flt *filter.Filter) *Handle {
	t.Helper()
	h, err := Open(t.Context(), Options{Iface: "lo", Snaplen: 65535, RingBytes: MinRingBytes, Filter: flt})
	if err != nil {
		if strings.Contains(err.Error(), "not permitted") {
			t.Skipf("opening an AF_PACKET socket is not permitted here: %v", err)
		}
		t.Fatalf("Open(lo): %v", err)
	}
	return h
}

func TestOpenMissingInterface(t *testing.T) {
	_, err := Open(t.Context(), Options{Iface: "socklab-nope", Snaplen: 100})
	if err == nil || !strings.Contains(err.Error(), "interface socklab-nope") {
		t.Errorf("Open of a missing interface = %v", err)
	}
}

// TestLoopbackSeesEachDatagramOnce sends datagrams to a kernel-chosen port on
// 127.0.0.1 and reads them back from the capture, each exactly once, and
// nothing else: the kernel drops what the filter rejects.
func TestLoopbackSeesEachDatagramOnce(t *testing.T) {
	type seen struct {
		payload string
		err     error
	}
	recv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	port := uint16(recv.LocalAddr().(*net.UDPAddr).Port)
	flt, err := filter.Parse(fmt.Sprintf("udp dst port %d", port))
	if err != nil {
		t.Fatal(err)
	}
	h := openLoopback(t, flt)

	out := make(chan seen, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			err := h.ReadPackets(func(data []byte, _ gopacket.CaptureInfo) error {
				// Ethernet (14) + IPv4 without options (20) + UDP (8).
				if len(data) < 42 || data[23] != 17 || binary.BigEndian.Uint16(data[36:38]) != port {
					out <- seen{payload: fmt.Sprintf("a packet the filter rejects: % x", data[:min(len(data), 40)])}
					return nil
				}
				out <- seen{payload: string(data[42:])}
				return nil
			})
			if err != nil {
				out <- seen{err: err}
				return
			}
		}
	}()

	send, err := net.DialUDP("udp", nil, recv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	want := []string{"one", "two", "three"}
	for _, p := range want {
		send.Write([]byte(p))
	}
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case s := <-out:
			if s.err != nil {
				t.Fatalf("ReadPacket: %v", s.err)
			}
			got = append(got, s.payload)
		case <-timeout:
			t.Fatalf("captured %q, want %q", got, want)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("captured %q, want %q", got, want)
	}
	// One more datagram, then close: a duplicate of the first three would
	// have arrived before it.
	send.Write([]byte("last"))
	for s := range out {
		if s.err != nil {
			break
		}
		if s.payload != "last" {
			t.Errorf("captured %q again: loopback packets seen twice", s.payload)
		}
		h.Close()
	}
	<-done
	if err := h.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if d := h.Drops(); d != 0 {
		t.Errorf("Drops = %d after a few packets", d)
	}
}

func TestGeometry(t *testing.T) {
	tests := []struct {
		ring              int
		blockSize, blocks int
		wantErr           bool
	}{
		{ring: 64 << 20, blockSize: 1 << 20, blocks: 64},
		{ring: 8 << 20, blockSize: 1 << 20, blocks: 8},
		{ring: 4 << 20, blockSize: 512 << 10, blocks: 8},
		{ring: 1 << 20, blockSize: 128 << 10, blocks: 8},
		{ring: 3<<20 + 5, blockSize: 256 << 10, blocks: 12}, // the rest is left out
		{ring: 1<<20 - 1, wantErr: true},
	}
	for _, tt := range tests {
		bs, n, err := geometry(tt.ring)
		if (err != nil) != tt.wantErr || bs != tt.blockSize || n != tt.blocks {
			t.Errorf("geometry(%d) = %d blocks of %d, %v; want %d of %d, error %v", tt.ring, n, bs, err, tt.blocks, tt.blockSize, tt.wantErr)
		}
	}
}

// TestCloseEndsBlockedRead closes a handle whose ReadPackets waits on a
// quiet filter: the read returns ErrClosed, and so does every later one.
func TestCloseEndsBlockedRead(t *testing.T) {
	flt, err := filter.Parse("udp port 1 and host 192.0.2.1") // nothing on lo matches
	if err != nil {
		t.Fatal(err)
	}
	h := openLoopback(t, flt)
	done := make(chan error, 1)
	go func() {
		done <- h.ReadPackets(func([]byte, gopacket.CaptureInfo) error { return nil })
	}()
	// ReadPackets is blocked in poll, or has yet to start: both must end
	// with ErrClosed.
	if err := h.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("blocked ReadPackets after Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadPackets still blocked 10s after Close")
	}
	if err := h.ReadPackets(func([]byte, gopacket.CaptureInfo) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadPackets after Close = %v, want ErrClosed", err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if s := h.Stats(); s.Received != 0 || s.Drops != 0 {
		t.Errorf("Stats = %+v, want nothing received on a quiet filter", s)
	}
}
