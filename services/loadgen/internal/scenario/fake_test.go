package scenario

import (
	"bufio"
	"errors"
	"net"
	"testing"

	"github.com/socklab/socklab/services/kit/nettest"
)

// fakeTCP serves each connection with serve until the test ends, on a
// loopback port. It stands in for servers that answer wrongly on purpose.
func fakeTCP(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	return nettest.ServeFunc(t, serve)
}

// fakeLines answers every line of every connection with reply(line), which
// includes its own "\n" (or nothing, to stay silent).
func fakeLines(t *testing.T, greeting string, reply func(line []byte) []byte) string {
	return fakeTCP(t, func(c net.Conn) {
		if greeting != "" {
			if _, err := c.Write([]byte(greeting)); err != nil {
				return
			}
		}
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if out := reply(line[:len(line)-1]); len(out) > 0 {
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}
	})
}

// fakeUDP answers every datagram with reply(d) (nothing when nil).
func fakeUDP(t *testing.T, reply func(d []byte) []byte) string {
	t.Helper()
	pc := nettest.ListenUDP(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			if out := reply(buf[:n]); out != nil {
				pc.WriteToUDPAddrPort(out, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

// closedPort returns a loopback address where connections are refused.
func closedPort(t *testing.T) string { return nettest.RefusedAddr(t) }
