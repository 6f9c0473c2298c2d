package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/capture/internal/live"
	"github.com/socklab/socklab/services/capture/internal/pcapfile"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// needCapture skips the test where this process may not open an AF_PACKET
// socket (no CAP_NET_RAW, or not Linux).
func needCapture(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("live capture needs Linux (AF_PACKET sockets)")
	}
	h, err := live.Open(t.Context(), live.Options{Iface: "lo", Snaplen: 100, RingBytes: live.MinRingBytes})
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Skipf("capturing on lo is not permitted here: %v", err)
	}
	if err != nil {
		t.Fatalf("open lo: %v", err)
	}
	h.Close()
}

// start runs the command in the background and waits for "capturing".
func start(t *testing.T, ctx context.Context, args ...string) (fields map[string]any, done <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, args, []string{"LOG_FORMAT=json"}, io.Discard, pw)
		pw.Close()
	}()
	return nettest.WaitLog(t, pr, "capturing"), errc
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(nettest.Timeout):
		t.Fatal("capture did not stop")
		return nil
	}
}

// readUDP returns the destination port and payload of every packet in file.
func readUDP(t *testing.T, file string) (ports []uint16, payloads []string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			t.Fatalf("not UDP: %v", p)
		}
		ports = append(ports, uint16(udp.DstPort))
		payloads = append(payloads, string(udp.Payload))
	}
	return ports, payloads
}

// TestRunCapturesLoopback records a few UDP datagrams sent to a kernel-chosen
// port on 127.0.0.1, bounded by -count, and reads them back.
func TestRunCapturesLoopback(t *testing.T) {
	needCapture(t)
	recv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	port := recv.LocalAddr().(*net.UDPAddr).Port
	dir := t.TempDir()
	fields, done := start(t, t.Context(), "-iface", "lo", "-dir", dir, "-count", "3",
		"-filter", fmt.Sprintf("udp dst port %d", port), "-snaplen", "1500")

	if err := run(t.Context(), []string{"healthcheck", "-dir", dir}, nil, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck while capturing: %v", err)
	}
	send, err := net.DialUDP("udp", nil, recv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	want := []string{"TIME", "ECHO hello", "QUIT"}
	for _, p := range want {
		if _, err := send.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait(t, done); err != nil {
		t.Fatalf("run = %v", err)
	}

	names, err := pcapfile.List(dir, "socklab")
	if err != nil || len(names) != 1 || names[0] != fields["file"] {
		t.Fatalf("files %q (%v), want the one logged: %v", names, err, fields["file"])
	}
	file := filepath.Join(dir, names[0])
	ports, payloads := readUDP(t, file)
	if strings.Join(payloads, "|") != strings.Join(want, "|") {
		t.Errorf("captured %q, want %q", payloads, want)
	}
	for _, p := range ports {
		if int(p) != port {
			t.Errorf("captured port %d, want %d", p, port)
		}
	}
	if err := run(t.Context(), []string{"healthcheck", "-dir", dir}, nil, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck passes after the capture stopped")
	}

	// tshark, when installed, reads the file as well.
	if _, err := os.Stat("/usr/bin/tshark"); err != nil {
		t.Log("no /usr/bin/tshark: skipping its check")
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "/usr/bin/tshark", "-r", file, "-T", "fields", "-e", "udp.dstport")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	wantOut := strings.Repeat(fmt.Sprintf("%d\n", port), 3)
	if string(out) != wantOut {
		t.Errorf("tshark says %q, want %q", out, wantOut)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	needCapture(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(t.Context())
	fields, done := start(t, ctx, "-iface", "lo", "-dir", dir, "-filter", "udp port 9", "-metrics-addr", "127.0.0.1:0")
	cancel(service.ErrSignal)
	if err := wait(t, done); err != nil {
		t.Errorf("run after a signal = %v, want nil", err)
	}
	file := filepath.Join(dir, fields["file"].(string))
	if ports, _ := readUDP(t, file); len(ports) != 0 {
		t.Errorf("captured %d packets for udp port 9", len(ports))
	}
	if _, err := os.Stat(filepath.Join(dir, ".socklab.heartbeat")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("heartbeat left behind: %v", err)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		environ  []string
		wantCode int
		wantErr  string
	}{
		{"bad filter", []string{"-filter", "tcp port eighty"}, nil, 2, `filter "tcp port eighty": port "eighty"`},
		{"bad filter env", nil, []string{"CAPTURE_FILTER=host example.com"}, 2, `host "example.com"`},
		{"bad size", nil, []string{"CAPTURE_ROTATE_BYTES=lots"}, 2, `size "lots"`},
		{"bad snaplen", []string{"-snaplen", "1"}, nil, 2, "snaplen 1"},
		{"unknown flag", []string{"-nope"}, nil, 2, ""},
		{"extra", []string{"lo"}, nil, 2, `unexpected arguments ["lo"]`},
		{"bad log level", nil, []string{"LOG_LEVEL=loud"}, 2, "log level"},
		{"healthcheck without capture", []string{"healthcheck", "-dir", dir}, nil, 1, "no heartbeat at"},
		{"missing dir", []string{"-dir", filepath.Join(dir, "nope"), "-iface", "lo"}, nil, 1, "is not writable"},
		{"missing interface", []string{"-dir", dir, "-iface", "socklab-nope0", "-wait", "0"}, nil, 1, "interface socklab-nope0"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		err := run(t.Context(), tt.args, tt.environ, io.Discard, &stderr)
		code := service.ExitCode(err, &stderr)
		if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, stderr.String(), tt.wantCode, tt.wantErr)
		}
	}
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"-h"}, nil, io.Discard, &stderr)
	if service.ExitCode(err, io.Discard) != 0 || !strings.Contains(stderr.String(), "CAPTURE_FILTER") || !strings.Contains(stderr.String(), "healthcheck") {
		t.Errorf("-h: %v, help:\n%s", err, stderr.String())
	}
}
