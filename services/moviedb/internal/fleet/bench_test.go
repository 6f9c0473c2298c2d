package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/latency"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/moviedb/data"
	"github.com/socklab/socklab/services/moviedb/internal/ports"
	"github.com/socklab/socklab/services/moviedb/internal/server"
	"github.com/socklab/socklab/services/moviedb/internal/store"
	"github.com/socklab/socklab/services/moviedb/proto"
)

// BenchmarkFanout measures what asking every server costs over asking one:
// each iteration sends one get to all N servers at once (Ask) and one get
// to a single server (taking turns), timing both; for reference it also
// asks the N servers one after another. It reports the fan-out's p50, the
// p50 of the slowest single server, their ratio (target: at most 1.2), the
// sequential p50, fan-outs per second, and the CPU time (client and servers
// together) per exchange.
func BenchmarkFanout(b *testing.B) {
	seed := data.Builtin()
	for _, delay := range []time.Duration{0, time.Millisecond} {
		var addrs []string
		for range 10 {
			addrs = append(addrs, benchServer(b, seed, delay))
		}
		for _, n := range []int{3, 10} {
			b.Run(fmt.Sprintf("servers=%d/delay=%v/impl=ours", n, delay), func(b *testing.B) {
				benchFanout(b, addrs[:n])
			})
		}
	}
}

// benchServer starts a server holding seed on loopback. A delay is waited
// before each connection is served: a stand-in for a network's round trip,
// which loopback lacks.
func benchServer(b *testing.B, seed []proto.Movie, delay time.Duration) string {
	st, _, err := store.Open(store.Options{Seed: server.ToStore(seed)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	h := &server.Handler{Store: st, Log: zap.NewNop(), Metrics: server.NewMetrics(prometheus.NewRegistry(), st)}
	srv := h.TCPServer(server.Config{IdleTimeout: 5 * time.Second})
	if delay > 0 {
		srv.Handler = netserve.HandlerFunc(func(ctx context.Context, c *netserve.Conn) {
			time.Sleep(delay)
			h.ServeConn(ctx, c)
		})
	}
	return serveTCP(b, srv)
}

// serveTCP runs srv on loopback on a listener from ports.Listen, as
// moviedb-server does (no TCP keep-alive), until the test ends.
func serveTCP(t testing.TB, srv *netserve.Server) string {
	t.Helper()
	ln, err := ports.Listen("127.0.0.1", ports.MustParse("0"))
	if err != nil {
		t.Fatal(err)
	}
	return nettest.ServeListener(t, srv, ln)
}

func benchFanout(b *testing.B, addrs []string) {
	n := len(addrs)
	f := &Fleet{Servers: addrs, Dialer: benchDialer()}
	ctx := context.Background()
	req := proto.Request{Op: proto.OpGet, Title: "Alien"}
	fan, seq := latency.New(), latency.New()
	single := make([]*latency.Recorder, n)
	for i := range single {
		single[i] = latency.New()
	}
	b.ReportAllocs()
	var fanTime time.Duration
	cpu0 := cpuTime(b)
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		for _, a := range f.Ask(ctx, req) {
			if a.Err != nil || !a.Resp.OK {
				b.Fatalf("%s: %+v", a.Server, a)
			}
		}
		took := time.Since(start)
		fanTime += took
		fan.Record(took)

		// The same requests one server after another: what asking at once
		// saves.
		start = time.Now()
		for _, addr := range addrs {
			if resp, err := proto.Do(ctx, f.Dialer, addr, req); err != nil || !resp.OK {
				b.Fatalf("sequential %s: %+v, %v", addr, resp, err)
			}
		}
		seq.Record(time.Since(start))

		s := i % n
		start = time.Now()
		if resp, err := proto.Do(ctx, f.Dialer, addrs[s], req); err != nil || !resp.OK {
			b.Fatalf("single %s: %+v, %v", addrs[s], resp, err)
		}
		single[s].Record(time.Since(start))
	}
	// Each iteration makes 2n+1 exchanges: the fan-out, the sequential
	// pass and the single one.
	cpuPer := float64((cpuTime(b) - cpu0).Microseconds()) / float64(b.N*(2*n+1))
	var slowest time.Duration
	for _, r := range single {
		if r.Count() > 0 {
			slowest = max(slowest, r.Summary().P50)
		}
	}
	p50 := fan.Summary().P50
	b.ReportMetric(float64(p50.Microseconds()), "fanout-p50-µs")
	b.ReportMetric(float64(slowest.Microseconds()), "slowest-single-p50-µs")
	b.ReportMetric(float64(seq.Summary().P50.Microseconds()), "sequential-p50-µs")
	if slowest > 0 {
		b.ReportMetric(float64(p50)/float64(slowest), "p50-ratio")
	}
	b.ReportMetric(float64(fan.Count())/fanTime.Seconds(), "ops/s")
	b.ReportMetric(cpuPer, "cpu-µs/exchange")
}

// cpuTime returns the CPU time (user and system) the process has used so
// far: clients and servers together, since all run here. Per exchange it is
// steadier than wall time on a shared machine, which other work only slows.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchDialer closes with RST (linger 0), so that thousands of exchanges
// leave no TIME_WAIT sockets to slow the connects of later benchmarks, and
// like proto.Do's default dialer turns TCP keep-alive off.
func benchDialer() *net.Dialer {
	return &net.Dialer{KeepAlive: -1, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
		})
		return errors.Join(err, serr)
	}}
}
