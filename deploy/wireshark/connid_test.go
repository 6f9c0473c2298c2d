package wireshark

import (
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/lab"
)

func TestConnID(t *testing.T) {
	c := newCapture(t)
	srv := hostPort(serverIP, lab.ConnID.Port)
	a, b := hostPort(clientIP, 43000), hostPort("172.30.0.11", 43001)

	// UDP: an OK, a RESET for the same ID from another client, a reply
	// after 4 ms, PING, a malformed request.
	c.udp(a, srv, []byte("HELLO 9876\n"))
	c.udp(srv, a, []byte("OK 9876 172.30.0.10 43000"))
	c.udp(b, srv, []byte("HELLO 9876"))
	c.udp(srv, b, []byte("RESET 9876"))
	c.udp(b, srv, []byte("HELLO 2678\r\n"))
	c.wait(3 * time.Millisecond)
	c.udp(srv, b, []byte("OK 2678 172.30.0.11 43001"))
	c.udp(a, srv, []byte("PING"))
	c.udp(srv, a, []byte("PONG"))
	c.udp(a, srv, []byte("hello lower case id"))
	c.udp(srv, a, []byte("ERROR BAD_REQUEST"))
	// Behind a NAT the address in OK differs from the source.
	c.udp(a, srv, []byte("HELLO nat"))
	c.udp(srv, a, []byte("OK nat 192.0.2.1 6000"))

	// TCP: pipelined lines, one split across segments, answered in order.
	conn := c.tcp(hostPort(clientIP, 43002), srv)
	conn.client(split("HELLO tcp-1\nHELLO tcp-2\r\nHEL", 26)...)
	conn.client([]byte("LO tcp-1\nPING\nHELLO two  spaces\n"))
	conn.server([]byte("OK tcp-1 172.30.0.10 43002\nOK tcp-2 172.30.0.10 43002\nRESET tcp-1\nPONG\nERROR BAD_REQUEST\n"))
	conn.close()

	out := decode(t, c, "connid", "connid",
		"connid.command", "connid.reply", "connid.id", "connid.address", "connid.port", "connid.error",
		"connid.response_in", "connid.response_to", "connid.time", "_ws.expert.message")
	if !strings.Contains(out, "0.004000000") {
		t.Errorf("HELLO 2678 is not answered after 4 ms:\n%s", out)
	}
}
