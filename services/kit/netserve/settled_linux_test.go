package netserve

import (
	"net"
	"testing"
	"time"
)

// timeout bounds each wait; timeout, which this package cannot
// import (nettest imports netserve).
const timeout = 10 * time.Second

// TestSettled: a connection is settled once the peer has acknowledged
// everything written and nothing it sent is unread, and not while it has
// unread input.
func TestSettled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	cli, err := net.DialTimeout("tcp", ln.Addr().String(), timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer srv.Close()
	// waitFor polls the socket's queues, which give no notification.
	waitFor := func(want bool, what string) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for settled(srv) != want {
			if time.Now().After(deadline) {
				t.Fatalf("settled = %v %s, want %v", !want, what, want)
			}
			time.Sleep(time.Millisecond) // a poll interval, bounded by the deadline
		}
	}
	srv.Write([]byte("reply\n"))
	cli.SetReadDeadline(time.Now().Add(timeout))
	if _, err := cli.Read(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	waitFor(true, "after the client read the whole reply")
	cli.Write([]byte("more"))
	waitFor(false, "with client bytes unread")
	if _, err := srv.Read(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	waitFor(true, "after the server read them")
	if settled(&net.UnixConn{}) {
		t.Error("settled(non-TCP conn) = true, want false")
	}
}
