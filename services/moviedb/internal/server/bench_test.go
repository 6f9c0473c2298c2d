package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/moviedb/internal/store"
	"github.com/socklab/socklab/services/moviedb/proto"
)

// synthetic returns n distinct made-up movies.
func synthetic(n int) []proto.Movie {
	genres := []string{"Drama", "Comedy", "Action", "Horror", "Sci-Fi", "Crime", "Romance"}
	ms := make([]proto.Movie, n)
	for i := range ms {
		ms[i] = proto.Movie{
			Title:    fmt.Sprintf("Synthetic Picture No. %06d", i),
			Year:     1920 + i%100,
			Director: fmt.Sprintf("Director %04d", i%5000),
			Genres:   []string{genres[i%len(genres)], genres[(i/7)%len(genres)]},
			Runtime:  80 + i%90,
			Rating:   "PG-13",
		}
	}
	return ms
}

// rawServer is the reference: the least a Go program needs to answer a
// get in this protocol (a map, encoding/json, a goroutine per connection),
// with no limits, deadlines, metrics or memdb.
func rawServer(b *testing.B, movies []proto.Movie) string {
	byKey := make(map[string]proto.Movie, len(movies))
	for _, m := range movies {
		byKey[strings.ToLower(m.Title)] = m
	}
	ln := nettest.ListenTCP(b)
	var wg sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadBytes('\n')
				if err != nil {
					return
				}
				var req proto.Request
				var resp proto.Response
				if err := json.Unmarshal(line, &req); err != nil {
					resp.Error = &proto.Error{Code: proto.CodeBadRequest, Message: err.Error()}
				} else if m, ok := byKey[strings.ToLower(req.Title)]; ok {
					resp = proto.Response{OK: true, Movie: &m}
				} else {
					resp.Error = &proto.Error{Code: proto.CodeNotFound, Message: "no such movie"}
				}
				out, _ := json.Marshal(resp)
				c.Write(append(out, '\n'))
			})
		}
	})
	return ln.Addr().String()
}

// BenchmarkGet measures get requests per second, one connection each, to
// one server holding 100,000 movies, from 1 and 32 concurrent clients:
// ours (netserve, memdb, metrics) against the raw reference.
func BenchmarkGet(b *testing.B) {
	movies := synthetic(100_000)
	st, _, err := store.Open(store.Options{Seed: ToStore(movies)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	fx := &fixture{store: st, handler: &Handler{Store: st, Log: zap.NewNop(), Metrics: NewMetrics(prometheus.NewRegistry(), st)}}
	servers := map[string]string{
		"ours": fx.serve(b, Config{Limits: netserve.Limits{MaxConns: 0}}),
		"raw":  rawServer(b, movies),
	}
	for _, clients := range []int{1, 32} {
		for _, impl := range []string{"ours", "raw"} {
			b.Run(fmt.Sprintf("movies=100000/clients=%d/impl=%s", clients, impl), func(b *testing.B) {
				benchGets(b, servers[impl], clients, movies)
			})
		}
	}
}

// benchDialer returns a dialer whose connections close with RST (linger
// 0). The server closes first, so each exchange would otherwise leave a
// TIME_WAIT socket for a minute; tens of thousands of them slow every
// later connect on loopback, and the benchmark that runs last would lose.
// Like proto.Do's default dialer it turns TCP keep-alive off.
func benchDialer() *net.Dialer {
	return &net.Dialer{KeepAlive: -1, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
		})
		return errors.Join(err, serr)
	}}
}

func benchGets(b *testing.B, addr string, clients int, movies []proto.Movie) {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	ctx := context.Background()
	d := benchDialer()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				title := movies[(i*7919)%int64(len(movies))].Title
				resp, err := proto.Do(ctx, d, addr, proto.Request{Op: proto.OpGet, Title: title})
				if err == nil && (!resp.OK || resp.Movie.Title != title) {
					err = fmt.Errorf("get %q: %+v", title, resp)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	if p := failed.Load(); p != nil {
		b.Fatal(*p)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime returns the CPU time (user and system) the process has used so
// far: client and server together, since both run here. Per request it is
// steadier than wall time on a shared machine, which other work only slows.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
