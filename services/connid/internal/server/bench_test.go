package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/connid/internal/store"
	"github.com/socklab/socklab/services/connid/proto"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
)

// benchLive is how many IDs are in use while the benchmark runs.
const benchLive = 100_000

var benchClient = netip.MustParseAddrPort("127.0.0.1:40000")

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// serveRaw is the reference: a minimal UDP request/reply loop that answers
// every HELLO with OK and keeps no state.
func serveRaw(b *testing.B) string {
	pc := nettest.ListenUDP(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		out := make([]byte, 0, 256)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			id, _ := bytes.CutPrefix(buf[:n], []byte("HELLO "))
			out = proto.AppendOK(out[:0], id, from)
			pc.WriteToUDPAddrPort(out, from)
		}
	}()
	b.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

// ours is the connid UDP server with benchLive IDs that never expire.
type ours struct {
	addr  string
	clk   *clock.Fake
	st    *store.Store
	perID float64 // heap bytes per live ID
}

func serveOurs(b *testing.B) *ours {
	before := heapAlloc()
	o := &ours{clk: clock.NewFake(time.Date(2023, 1, 16, 6, 6, 6, 0, time.UTC))}
	var err error
	if o.st, err = store.New(o.clk, 30*time.Second); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.st.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	// Claimed in the far future, the preloaded IDs outlive every
	// benchmark round; the fresh IDs of a round expire after it (drain).
	future := o.clk.Now().Add(1000 * time.Hour)
	w := store.NewWaiter()
	for i := range benchLive {
		if ok, err := o.st.Claim(w, "live-"+strconv.Itoa(i), benchClient, future); !ok || err != nil {
			b.Fatalf("preload %d: %v, %v", i, ok, err)
		}
	}
	o.perID = float64(heapAlloc()-before) / benchLive
	h := &Handler{Store: o.st, Clock: o.clk, Metrics: NewMetrics(prometheus.NewRegistry(), o.st)}
	o.addr = nettest.ServeUDP(b, h.UDPServer(Config{Settings: netserve.Settings{UDPReaders: 1}}))
	return o
}

// drain expires the IDs a round claimed and waits for the sweeper to
// remove them, so every round starts with benchLive IDs.
func (o *ours) drain(b *testing.B) {
	nettest.Until(b, "the sweeper to leave the live IDs only", func() bool {
		if o.st.Len() <= benchLive {
			return true
		}
		// Advance again each time: the writer may have computed its
		// timer from the time before an advance.
		o.clk.Advance(o.st.TTL())
		return false
	})
}

// handshakes runs b.N HELLO/OK round trips with fresh IDs from clients
// goroutines, each with its own socket and one request in flight.
func handshakes(b *testing.B, addr string, clients int, seq *atomic.Uint64) {
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.Dial("udp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, c := range conns {
		wg.Go(func() {
			req := make([]byte, 0, 64)
			buf := make([]byte, 2048)
			for next.Add(1) <= int64(b.N) {
				req = proto.AppendHello(req[:0], "b"+strconv.FormatUint(seq.Add(1), 36))
				c.SetDeadline(time.Now().Add(nettest.Timeout))
				if _, err := c.Write(req); err != nil {
					failed.Add(1)
					continue
				}
				n, err := c.Read(buf)
				if err != nil || !bytes.HasPrefix(buf[:n], []byte("OK ")) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Errorf("%d of %d handshakes failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkHandshake measures HELLO/OK handshakes per second over UDP on
// loopback, each claiming a fresh ID, from 1 or 8 clients with one request
// in flight each: ours with 100,000 live IDs in its table, and a stateless
// raw loop. B/id is the heap our table holds per live ID.
func BenchmarkHandshake(b *testing.B) {
	o := serveOurs(b)
	raw := serveRaw(b)
	var seq atomic.Uint64
	for _, clients := range []int{1, 8} {
		for _, impl := range []string{"ours", "raw"} {
			name := fmt.Sprintf("proto=udp/live=%d/clients=%d/impl=%s", benchLive, clients, impl)
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				if impl == "raw" {
					handshakes(b, raw, clients, &seq)
					return
				}
				claims0, commits0 := o.st.Commits()
				handshakes(b, o.addr, clients, &seq)
				claims, commits := o.st.Commits()
				b.ReportMetric(float64(claims-claims0)/float64(commits-commits0), "claims/commit")
				b.ReportMetric(o.perID, "B/id")
				o.drain(b)
			})
		}
	}
}
