package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/socklab/socklab/services/filestream/internal/client"
	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

const bigFile = 123456789

// readFile asks c for a file (ours: request, header, content) or just
// content (raw) and reads it into a discarding buffer.
func readFile(b *testing.B, c net.Conn, buf []byte, size int64, header bool) {
	c.SetDeadline(time.Now().Add(time.Minute))
	var req [proto.HeaderLen + 8]byte
	if _, err := c.Write(proto.AppendFileRequest(req[:0], 1, proto.FileRequest{Size: uint64(size)})); err != nil {
		b.Fatal(err)
	}
	if header {
		var h [proto.HeaderLen + 14]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			b.Fatal(err)
		}
	}
	for n := int64(0); n < size; {
		m, err := c.Read(buf[:min(int64(len(buf)), size-n)])
		if err != nil {
			b.Fatal(err)
		}
		n += int64(m)
	}
}

// rawTCPServer is the reference: it reads a FILE request and writes the
// content with plain Write calls from the same 256 KiB block, no framing,
// no netserve.
func rawTCPServer(b *testing.B) string {
	ln := nettest.ListenTCP(b)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				var req [proto.HeaderLen + 8]byte
				for {
					if _, err := io.ReadFull(c, req[:]); err != nil {
						return
					}
					size := int64(binary.BigEndian.Uint64(req[proto.HeaderLen:]))
					for off := int64(0); off < size; {
						n := min(int64(blockLen), size-off)
						if _, err := c.Write(block[:n]); err != nil {
							return
						}
						off += n
					}
				}
			})
		}
	})
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func benchServer(b *testing.B, mod func(*Config)) *testServer {
	cfg := Config{Settings: netserve.Settings{Protocol: "both", UDPReaders: 1}, MaxFile: bigFile, StreamLimit: 1_000_000, MinInterval: 0, PacketSize: 1200,
		UDPRate: 0, UDPTransfers: 64, UDPTransfersPerSource: 64, CookieTTL: time.Minute, BodyBudget: 16 << 20}
	if mod != nil {
		mod(&cfg)
	}
	h := &Handler{Config: cfg}
	ts := &testServer{h: h}
	ts.tcp = nettest.ServeTCP(b, h.TCPServer())
	ts.udp = nettest.ServeUDP(b, h.UDPServer())
	return ts
}

// BenchmarkTCPFile: a file of 123456789 characters over loopback TCP, ours
// (netserve, framing, CRC known up front) against a raw Go writer of the
// same bytes and, when installed, iperf3 sending as many bytes.
func BenchmarkTCPFile(b *testing.B) {
	for _, size := range []int64{1 << 20, bigFile} {
		b.Run(fmt.Sprintf("size=%d/impl=ours", size), func(b *testing.B) {
			ts := benchServer(b, nil)
			benchTCPFile(b, ts.tcp, size, true)
		})
		b.Run(fmt.Sprintf("size=%d/impl=ours+client", size), func(b *testing.B) {
			ts := benchServer(b, nil)
			s, err := client.Dial(b.Context(), "tcp", ts.tcp, client.Options{Timeout: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for b.Loop() {
				if res, err := s.File(b.Context(), uint64(size), nil); err != nil || !res.OK() {
					b.Fatal(res, err)
				}
			}
			reportFiles(b, size)
		})
		b.Run(fmt.Sprintf("size=%d/impl=raw", size), func(b *testing.B) {
			benchTCPFile(b, rawTCPServer(b), size, false)
		})
		b.Run(fmt.Sprintf("size=%d/impl=iperf3", size), func(b *testing.B) {
			benchIperf(b, size)
		})
	}
}

func benchTCPFile(b *testing.B, addr string, size int64, header bool) {
	c := nettest.Dial(b, "tcp", addr)
	buf := make([]byte, 256<<10)
	for b.Loop() {
		readFile(b, c, buf, size, header)
	}
	reportFiles(b, size)
}

func reportFiles(b *testing.B, size int64) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/s, "ops/s")
	b.ReportMetric(float64(size)*float64(b.N)/s/1e6, "MB/s")
}

// benchIperf runs `iperf3 -c 127.0.0.1 -n size` once per iteration against
// an iperf3 server on a free loopback port, and reports the rate iperf3
// measured at the receiver (its process start does not count).
func benchIperf(b *testing.B, size int64) {
	path, err := exec.LookPath("iperf3")
	if err != nil {
		b.Skip("iperf3 not installed")
	}
	ln := nettest.ListenTCP(b) // a free port, handed to iperf3
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	ctx, cancel := context.WithCancel(b.Context())
	srv := exec.CommandContext(ctx, path, "-s", "-B", "127.0.0.1", "-p", port)
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); srv.Wait() })
	once := func() (float64, error) {
		out, err := exec.CommandContext(ctx, path, "-c", "127.0.0.1", "-p", port, "-n", strconv.FormatInt(size, 10), "-J").Output()
		var res struct {
			Error string `json:"error"`
			End   struct {
				SumReceived struct {
					Seconds float64 `json:"seconds"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if jerr := json.Unmarshal(out, &res); err == nil && jerr != nil {
			err = jerr
		}
		switch {
		case err != nil:
		case res.Error != "": // with -J, iperf3 may exit 0 on errors
			err = errors.New(res.Error)
		case res.End.SumReceived.Seconds == 0:
			err = errors.New("iperf3 measured nothing")
		}
		return res.End.SumReceived.Seconds, err
	}
	run := func() (secs float64, err error) {
		// Until the server listens, and between tests ("busy").
		for range 100 {
			if secs, err = once(); err == nil {
				return secs, nil
			}
			time.Sleep(20 * time.Millisecond) // a retry interval
		}
		return 0, fmt.Errorf("iperf3: %w", err)
	}
	// The first run also waits for the server to listen.
	if _, err := run(); err != nil {
		b.Fatal(err)
	}
	var total float64
	for b.Loop() {
		secs, err := run()
		if err != nil {
			b.Fatal(err)
		}
		total += secs
	}
	b.ReportMetric(float64(b.N)/total, "ops/s")
	b.ReportMetric(float64(size)*float64(b.N)/total/1e6, "MB/s")
}

// BenchmarkUDPStream: packets per second a stream delivers to our client
// over loopback, and the loss, at decreasing intervals (interval=0: as
// fast as the socket takes them), against a raw Go loop writing datagrams
// of the same size as fast as it can.
func BenchmarkUDPStream(b *testing.B) {
	const size = 1200
	for _, iv := range []time.Duration{100 * time.Microsecond, 20 * time.Microsecond, 10 * time.Microsecond, 5 * time.Microsecond, 0} {
		b.Run(fmt.Sprintf("interval=%v/impl=ours", iv), func(b *testing.B) {
			ts := benchServer(b, nil)
			count := uint32(20000)
			if iv > 0 {
				count = uint32(min(20000, 200*time.Millisecond/iv)) // about 0.2 s
			}
			s, err := client.Dial(b.Context(), "udp", ts.udp, client.Options{Timeout: 200 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var got, lost uint64
			var took time.Duration
			for b.Loop() {
				res, err := s.Stream(b.Context(), client.StreamParams{Interval: iv, Count: count, Size: size})
				if err != nil {
					b.Fatal(err)
				}
				got += res.Packets.Received
				lost += res.Packets.Lost
				took += res.Elapsed
			}
			b.ReportMetric(float64(got)/took.Seconds(), "ops/s")
			b.ReportMetric(100*float64(lost)/float64(got+lost), "loss%")
		})
	}
	b.Run("interval=0s/impl=raw", func(b *testing.B) {
		recv := nettest.ListenUDP(b)
		recv.SetReadBuffer(4 << 20)
		send := nettest.Dial(b, "udp", recv.LocalAddr().String())
		const count = 20000
		pkt := make([]byte, size)
		buf := make([]byte, 2048)
		var got, lost uint64
		var took time.Duration
		for b.Loop() {
			done := make(chan struct{})
			var n uint64
			var last time.Time
			start := time.Now()
			go func() {
				defer close(done)
				for n < count {
					recv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					if _, err := recv.Read(buf); err != nil {
						return
					}
					n++
					last = time.Now()
				}
			}()
			for i := range count {
				binary.BigEndian.PutUint32(pkt, uint32(i))
				send.Write(pkt)
			}
			<-done
			got += n
			lost += count - n
			took += last.Sub(start)
		}
		b.ReportMetric(float64(got)/took.Seconds(), "ops/s")
		b.ReportMetric(100*float64(lost)/float64(got+lost), "loss%")
	})
}

// BenchmarkFileMemory reports the largest heap in use (server and reading
// client in one process) while files are sent, and its growth over the
// heap before: flat whatever the size.
func BenchmarkFileMemory(b *testing.B) {
	for _, size := range []int64{1 << 20, bigFile} {
		b.Run(fmt.Sprintf("size=%d/impl=ours", size), func(b *testing.B) {
			ts := benchServer(b, nil)
			c := nettest.Dial(b, "tcp", ts.tcp)
			buf := make([]byte, 256<<10)
			readFile(b, c, buf, 1, true) // warm up the connection
			runtime.GC()
			base := heapInUse()
			stop := make(chan struct{})
			done := make(chan uint64)
			go func() {
				var p uint64
				t := time.NewTicker(time.Millisecond)
				defer t.Stop()
				for {
					p = max(p, heapInUse())
					select {
					case <-stop:
						done <- p
						return
					case <-t.C:
					}
				}
			}()
			for b.Loop() {
				readFile(b, c, buf, size, true)
			}
			close(stop)
			peak := <-done
			b.ReportMetric(float64(peak)/1e6, "heap-peak-MB")
			b.ReportMetric(float64(peak-min(peak, base))/1e6, "heap-growth-MB")
		})
	}
}

// heapInUse reads the bytes of live and not yet swept heap objects without
// stopping the world.
func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
