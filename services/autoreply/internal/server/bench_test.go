package server_test

// Benchmarks of autoreply against a minimal raw Go server with the same
// framing and no reply building: the practical limit on this machine. Run
// with `make bench`; each sub-benchmark reports replies/s as ops/s, and the
// bench table pairs impl=ours with impl=raw.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socklab/socklab/services/autoreply/internal/server"
	"github.com/socklab/socklab/services/autoreply/proto"
	"github.com/socklab/socklab/services/kit/nettest"
)

// rawTCP echoes each line, flushing when the input is drained.
func rawTCP(b *testing.B) string { return rawTCPReply(b, nil) }

// rawSameBytes answers each line with a fixed line as long as autoreply's
// reply to msg: the raw server's cost with ours's byte volume, which tells
// the price of building replies from the price of sending them.
func rawSameBytes(b *testing.B) string {
	line := proto.NewGenerator([32]byte{}).Append(nil, time.Now(), msg[:len(msg)-1])
	return rawTCPReply(b, append(line, '\n'))
}

// rawTCPReply answers each line with reply, or echoes it when reply is nil.
func rawTCPReply(b *testing.B, reply []byte) string {
	return nettest.ServeFunc(b, func(c net.Conn) {
		r := bufio.NewReaderSize(c, 16<<10)
		w := bufio.NewWriterSize(c, 16<<10)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if reply != nil {
				line = reply
			}
			w.Write(line)
			if r.Buffered() == 0 {
				if w.Flush() != nil {
					return
				}
			}
		}
	})
}

// rawUDP echoes each datagram.
func rawUDP(b *testing.B) string {
	pc := nettest.ListenUDP(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	b.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

func oursTCP(b *testing.B) string {
	h := &server.Handler{Log: nil, Metrics: server.NewMetrics(newReg())}
	return nettest.ServeTCP(b, h.TCPServer(defaults()))
}

func oursUDP(b *testing.B) string {
	h := &server.Handler{Metrics: server.NewMetrics(newReg())}
	return nettest.ServeUDP(b, h.UDPServer(defaults()))
}

var msg = []byte("the quick brown fox jumps over the lazy dog 0123456789\n")

// tcpLoad sends b.N lines over conns connections, window lines in flight
// per connection (1 is closed loop), and reports replies/s.
func tcpLoad(b *testing.B, addr string, conns, window int) {
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		cs[i] = c
	}
	batch := make([]byte, 0, window*len(msg))
	for range window {
		batch = append(batch, msg...)
	}
	b.ResetTimer()
	start := time.Now()
	for _, c := range cs {
		wg.Go(func() {
			defer c.Close()
			r := bufio.NewReaderSize(c, 64<<10)
			for {
				n := int(next.Add(int64(window)))
				if n-window >= b.N {
					return
				}
				k := min(window, b.N-(n-window))
				if _, err := c.Write(batch[:k*len(msg)]); err != nil {
					failed.Store(err)
					return
				}
				for range k {
					if _, err := r.ReadSlice('\n'); err != nil {
						failed.Store(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	if err, _ := failed.Load().(error); err != nil && !errors.Is(err, io.EOF) {
		b.Fatal(err)
	}
}

func udpLoad(b *testing.B, addr string, senders int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var lost atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for range senders {
		wg.Go(func() {
			c, err := net.Dial("udp", addr)
			if err != nil {
				lost.Add(1)
				return
			}
			defer c.Close()
			buf := make([]byte, 2048)
			payload := msg[:len(msg)-1]
			for next.Add(1) <= int64(b.N) {
				c.SetReadDeadline(time.Now().Add(time.Second))
				c.Write(payload)
				if _, err := c.Read(buf); err != nil {
					lost.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	b.ReportMetric(float64(lost.Load()), "lost")
}

func BenchmarkTCP(b *testing.B) {
	for _, conns := range []int{1, 16, 64} {
		for _, mode := range []struct {
			name   string
			window int
		}{{"closed", 1}, {"pipelined", 64}} {
			for _, impl := range []struct {
				name  string
				start func(*testing.B) string
			}{{"ours", oursTCP}, {"raw", rawTCP}, {"samebytes", rawSameBytes}} {
				b.Run(fmt.Sprintf("conns=%d/mode=%s/impl=%s", conns, mode.name, impl.name), func(b *testing.B) {
					tcpLoad(b, impl.start(b), conns, mode.window)
				})
			}
		}
	}
}

func BenchmarkUDP(b *testing.B) {
	for _, senders := range []int{1, 16} {
		for _, impl := range []struct {
			name  string
			start func(*testing.B) string
		}{{"ours", oursUDP}, {"raw", rawUDP}} {
			b.Run(fmt.Sprintf("senders=%d/impl=%s", senders, impl.name), func(b *testing.B) {
				udpLoad(b, impl.start(b), senders)
			})
		}
	}
}

// BenchmarkReply is the cost of building one reply, which must not allocate.
func BenchmarkReply(b *testing.B) {
	gen := proto.NewGenerator([32]byte{})
	buf := make([]byte, 0, proto.MaxLen)
	now := time.Now()
	line := msg[:len(msg)-1]
	b.ReportAllocs()
	for b.Loop() {
		buf = gen.Append(buf[:0], now, line)
	}
}
