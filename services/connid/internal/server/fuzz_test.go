package server

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/connid/internal/store"
)

var p0 = netip.MustParseAddrPort("192.0.2.1:5555")

// peerConn gives a net.Pipe end the remote address of a TCP client.
type peerConn struct{ net.Conn }

func (peerConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(p0) }

// converse sends chunks, one write each, to a fresh server over net.Pipe
// (where every write arrives as a read of its own) and returns the replies.
func converse(t *testing.T, chunks ...[]byte) string {
	clk := clock.NewFake(t0)
	st, err := store.New(clk, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { st.Run(ctx) })
	h := &Handler{Store: st, Clock: clk, Metrics: NewMetrics(prometheus.NewRegistry(), st)}
	srv := h.TCPServer(Config{ConnTimeout: time.Minute})
	client, server := net.Pipe()
	wg.Go(func() { srv.ServeConn(peerConn{server}) })
	wg.Go(func() {
		for _, c := range chunks {
			if len(c) > 0 {
				if _, err := client.Write(c); err != nil {
					return
				}
			}
		}
	})
	// One reply per complete line, unless an over-long line ends it all.
	want := bytes.Count(bytes.Join(chunks, nil), []byte("\n"))
	var out strings.Builder
	br := bufio.NewReader(client)
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range want {
		line, err := br.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			// NUL marks the end: no reply holds one.
			out.WriteString("\x00" + err.Error())
			break
		}
	}
	client.Close()
	return out.String()
}

// FuzzServeConn feeds a TCP connection arbitrary bytes whole and in two
// writes split at cut: the replies must be the same, and one per line.
func FuzzServeConn(f *testing.F) {
	seeds := []string{
		"HELLO 1\n", "HELLO 1\nHELLO 1\n", "PING\r\nHELLO x\r\n", "HELLO\n\n\n", "HELLO a b\nHELLO 2",
		"\xff\x00\n", "HELLO " + strings.Repeat("9", 1100) + "\nHELLO 3\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint(i*5))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint) {
		i := int(cut % uint(len(data)+1))
		whole := converse(t, data)
		split := converse(t, data[:i], data[i:])
		if whole != split {
			t.Fatalf("%q: replies whole:\n%s\nsplit at %d:\n%s", data, whole, i, split)
		}
		if strings.Contains(whole, "\x00") && !strings.Contains(whole, "ERROR BAD_REQUEST") {
			t.Fatalf("%q: connection ended early without an error reply:\n%s", data, whole)
		}
	})
}
