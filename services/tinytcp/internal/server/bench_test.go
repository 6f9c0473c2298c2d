package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

// BenchmarkPipelined measures pipelined commands per second: each
// connection writes a batch of commands at once and reads all the replies,
// over and over. It compares
//
//	impl=ours     this package's Handler on kit/netserve, metrics on
//	impl=raw      a minimal Go line server with the same reply code that
//	              flushes when the client's input is drained
//	impl=perline  the same raw server writing once per line
//
// Run: go test -run '^$' -bench Pipelined -benchmem ./internal/server
func BenchmarkPipelined(b *testing.B) {
	impls := []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"ours", startOurs},
		{"raw", func(b *testing.B) string { return startRaw(b, false) }},
		{"perline", func(b *testing.B) string { return startRaw(b, true) }},
	}
	for _, conns := range []int{1, 64} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("conns=%d/impl=%s", conns, impl.name), func(b *testing.B) {
				benchPipelined(b, impl.start(b), conns)
			})
		}
	}
}

// batch is the commands a connection writes at once, and want the length
// of their replies (fixed: TIME has a fixed width).
var batch, batchReplies = func() ([]byte, int) {
	var cmds bytes.Buffer
	n := 0
	for range batchSize / 4 {
		cmds.WriteString("ECHO hello, pipelined world\nTIME\nECHO 42\nHELP\n")
		n += len("ECHO hello, pipelined world\n") + len(seedTIME) + len("ECHO 42\n") + len(proto.HelpReply) + 1
	}
	return cmds.Bytes(), n
}()

const batchSize = 256

func benchPipelined(b *testing.B, addr string, conns int) {
	perConn := (b.N + conns*batchSize - 1) / (conns * batchSize) // batches
	clients := make([]net.Conn, conns)
	for i := range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		if line, err := r.ReadString('\n'); err != nil || line != wantBanner {
			b.Fatalf("banner %q, %v", line, err)
		}
		clients[i] = c
	}
	// The first batch's replies are checked line by line once.
	if err := checkBatch(clients[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	for _, c := range clients {
		wg.Go(func() {
			buf := make([]byte, batchReplies)
			c.SetDeadline(time.Now().Add(time.Minute))
			for range perConn {
				if _, err := c.Write(batch); err != nil {
					errc <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errc <- err
					return
				}
				if buf[len(buf)-1] != '\n' {
					errc <- fmt.Errorf("replies out of step: %q", buf[len(buf)-40:])
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	ops := float64(perConn * conns * batchSize)
	b.ReportMetric(ops/elapsed.Seconds(), "ops/s")
	// CPU time of the whole process (clients and server) per command: on
	// a machine shared with other work it varies much less than ops/s.
	b.ReportMetric(float64(cpu.Nanoseconds())/ops, "cpu-ns/op")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func checkBatch(c net.Conn) error {
	c.SetDeadline(time.Now().Add(nettest.Timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(batch); err != nil {
		return err
	}
	buf := make([]byte, batchReplies)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	cmds := bytes.Split(bytes.TrimSuffix(batch, []byte("\n")), []byte("\n"))
	replies := bytes.Split(bytes.TrimSuffix(buf, []byte("\n")), []byte("\n"))
	if len(cmds) != len(replies) {
		return fmt.Errorf("%d replies to %d commands", len(replies), len(cmds))
	}
	for i, line := range replies {
		r, err := proto.ParseReply(line)
		if err == nil {
			err = r.Answers(cmds[i])
		}
		if err != nil {
			return fmt.Errorf("reply %d: %w", i, err)
		}
	}
	return nil
}

func startOurs(b *testing.B) string {
	reg := prometheus.NewRegistry()
	h := &Handler{Location: seedTime.Location(), Metrics: NewMetrics(reg)}
	srv := h.TCPServer(defaultConfig(b))
	srv.Metrics = netserve.NewMetrics(reg, "tinytcp")
	return nettest.ServeTCP(b, srv)
}

// startRaw runs the reference server: an accept loop, a goroutine per
// connection, a bufio reader and writer, and the same replies as ours
// (including TIME's per-second text), without limits, deadlines or
// metrics.
func startRaw(b *testing.B, perLine bool) string {
	loc := seedTime.Location()
	return nettest.ServeFunc(b, func(c net.Conn) { rawServe(c, loc, perLine) })
}

func rawServe(c net.Conn, loc *time.Location, perLine bool) {
	r := bufio.NewReaderSize(c, 16<<10)
	w := bufio.NewWriterSize(c, 16<<10)
	w.WriteString(wantBanner)
	w.Flush()
	clock := timeCache{loc: loc}
	buf := make([]byte, 0, 128)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		cmd, err := proto.Parse(line)
		buf = buf[:0]
		switch {
		case err != nil:
			buf = proto.AppendError(buf, err.(proto.Code))
		case cmd.Verb == proto.Time:
			buf = clock.appendTime(buf, time.Now())
		case cmd.Verb == proto.Echo:
			buf = proto.AppendEcho(buf, cmd.Text)
		case cmd.Verb == proto.Help:
			buf = append(buf, proto.HelpReply...)
		case cmd.Verb == proto.Quit:
			w.WriteString("BYE\n")
			w.Flush()
			return
		}
		w.Write(append(buf, '\n'))
		if perLine || r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// BenchmarkInMemory answers pipelined bursts on an in-memory connection,
// without syscalls: the CPU cost per command of the handler and its
// framework, ours against the raw loop.
func BenchmarkInMemory(b *testing.B) {
	const bursts = 64
	chunks := make([][]byte, bursts)
	for i := range chunks {
		chunks[i] = batch
	}
	loc := seedTime.Location()
	impls := []struct {
		name  string
		serve func(c net.Conn)
	}{
		{"ours", func() func(c net.Conn) {
			h := &Handler{Location: loc, Metrics: NewMetrics(prometheus.NewRegistry())}
			srv := h.TCPServer(defaultConfig(b))
			return srv.ServeConn
		}()},
		{"raw", func(c net.Conn) { rawServe(c, loc, false) }},
	}
	for _, impl := range impls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			cpu0 := cpuTime()
			for b.Loop() {
				c := &scriptConn{chunks: append([][]byte(nil), chunks...), discard: true}
				impl.serve(c)
				n += bursts * batchSize
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "ops/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/op")
		})
	}
}
