package scenario

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// Is loadgen the bottleneck? BenchmarkClosedLoop drives a minimal Go line
// echo server on loopback with loadgen's closed loop (engine, scenario
// connection helpers, answer check, HdrHistogram) and with a minimal Go
// client doing only the write and the read, at the same concurrency. The
// ratio ours/raw of ops/s is the share of the client's capacity loadgen
// keeps; the target is 0.95.
func BenchmarkClosedLoop(b *testing.B) {
	for _, conns := range []int{16} {
		addr := rawEchoServer(b)
		b.Run(fmt.Sprintf("conns=%d/impl=ours", conns), func(b *testing.B) {
			sc := echoScenario{target: addr, size: 64}
			b.ReportAllocs()
			start := time.Now()
			st, err := engine.Run(context.Background(), engine.Config{
				Parts:   []engine.Part{{Name: "echo", Weight: 1, Scenario: sc}},
				Workers: conns, Requests: int64(b.N),
			})
			elapsed := time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if st.Total.Successes != int64(b.N) {
				b.Fatalf("%d of %d requests succeeded: %v", st.Total.Successes, b.N, st.Total.Errors)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
		})
		b.Run(fmt.Sprintf("conns=%d/impl=raw", conns), func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			rawClient(b, addr, conns, b.N)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
		})
	}
}

// echoScenario sends a payload line and expects it back, through the same
// helpers as the real scenarios.
type echoScenario struct {
	target string
	size   int
}

func (s echoScenario) NewWorker(ctx context.Context) (engine.Worker, error) {
	c, err := dialLines(ctx, s.target, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &echoWorker{lineConn: c, size: s.size}, nil
}

type echoWorker struct {
	*lineConn
	size int
	seq  uint64
	msg  []byte
}

func (w *echoWorker) Do(context.Context) error {
	w.seq++
	w.msg = append(appendPayload(w.msg[:0], w.seq, w.size), '\n')
	if err := w.arm(); err != nil {
		return err
	}
	if err := w.send(w.msg); err != nil {
		return err
	}
	line, err := w.readLine(w.size)
	if err != nil {
		return err
	}
	if !bytes.Equal(line, w.msg[:len(w.msg)-1]) {
		return wrong("echo differs", line)
	}
	return nil
}

// rawClient is the minimal client: conns goroutines writing a line and
// reading the echo, n times in all.
func rawClient(b *testing.B, addr string, conns, n int) {
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	msg := append(appendPayload(nil, 1, 64), '\n')
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			r := bufio.NewReader(c)
			for left.Add(-1) >= 0 {
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				if _, err := r.ReadSlice('\n'); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// rawEchoServer is a minimal Go line echo server on loopback.
func rawEchoServer(b *testing.B) string {
	return nettest.ServeFunc(b, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
}
