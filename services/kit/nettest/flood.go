package nettest

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// DialFrom connects to addr over TCP from the local IP from (another
// loopback address such as 127.0.0.2, to stand for a second client host).
func DialFrom(t testing.TB, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: Timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Hold opens n TCP connections to addr from 127.0.0.1, writes first on each
// (nothing when empty: an idle client; a partial message: a slow one) and
// leaves them open until the end of the test. It raises the process's open
// file limit when 2n descriptors (both ends on loopback) would not fit.
func Hold(t testing.TB, addr string, n int, first []byte) []net.Conn {
	t.Helper()
	RaiseNoFile(t, uint64(2*n+256))
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	d := net.Dialer{Timeout: Timeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("hold connection %d of %d: %v", len(conns)+1, n, err)
		}
		conns = append(conns, c)
		if len(first) > 0 {
			c.SetWriteDeadline(time.Now().Add(Timeout))
			// A refused connection may already be closed: its write
			// failing is part of what the test looks at, not an error.
			c.Write(first)
		}
	}
	return conns
}

// RaiseNoFile raises the soft limit on open files to at least n (up to the
// hard limit), failing the test when even the hard limit is lower.
func RaiseNoFile(t testing.TB, n uint64) {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if l.Cur >= n {
		return
	}
	if l.Max < n {
		t.Fatalf("open file limit: need %d, hard limit %d", n, l.Max)
	}
	l.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
}
