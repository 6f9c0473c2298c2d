package wireshark

import (
	"testing"

	"github.com/socklab/socklab/services/kit/lab"
)

func TestAutoreply(t *testing.T) {
	c := newCapture(t)
	srv := hostPort(serverIP, lab.Autoreply.Port)
	conn := c.tcp(hostPort(clientIP, 42000), srv)
	conn.client([]byte("hello\n"))
	conn.server([]byte(`REPLY id=9c1f0e7d55aa2b3c at=2025-09-12T22:24:13.104729381Z len=5 snippet="hello" note="copy that"` + "\n"))
	// A pipelined burst in one segment: an empty line, a long line, and
	// one with a tab and quotes ended by CR LF.
	conn.client([]byte("\nthe quick brown fox jumps over the lazy dog\ntab\tand \"quotes\"\r\n"))
	// Its replies, the second cut in the middle of the snippet.
	conn.server(split(`REPLY id=1b2c3d4e5f607182 at=2025-09-12T22:24:13.104811007Z len=0 snippet="" note="roger, over"`+"\n"+
		`REPLY id=77a0c4e1d2b3f596 at=2025-09-12T22:24:13.104902113Z len=43 snippet="the quick brown ...s over the lazy dog" note="fresh off the wire"`+"\n"+
		`REPLY id=0f1e2d3c4b5a6978 at=2025-09-12T22:24:13.105001554Z len=19 snippet="tab\tand \"quotes\"" note="noted with interest"`+"\n", 150, 300)...)
	// Binary bytes are message data.
	conn.client([]byte("\x00\xff\x01bin\n"))
	conn.server([]byte(`REPLY id=0000000000000001 at=2025-09-12T22:24:13.200000000Z len=6 snippet="\x00\xff\x01bin" note="received"` + "\n"))
	conn.close()

	tooLong := c.tcp(hostPort(clientIP, 42001), srv)
	tooLong.server([]byte("ERROR line too long\n"))
	tooLong.close()

	// A recording that begins in the middle of a reply.
	mid := c.tcpJoined(hostPort(clientIP, 42003), srv)
	mid.server([]byte(`9.104729381Z len=5 snippet="hello" note="copy that"` + "\n"))

	cli := hostPort(clientIP, 42002)
	c.udp(cli, srv, []byte("hello"))
	c.udp(srv, cli, []byte(`REPLY id=aaaaaaaaaaaaaaaa at=2025-09-12T22:24:14.000000001Z len=5 snippet="hello" note="copy that"`))
	c.udp(cli, srv, []byte("nc adds a newline\n"))
	c.udp(srv, cli, []byte(`REPLY id=bbbbbbbbbbbbbbbb at=2025-09-12T22:24:14.000000002Z len=18 snippet="nc adds a newline\n" note="copy that"`))
	c.udp(cli, srv, nil)
	c.udp(srv, cli, []byte(`REPLY id=cccccccccccccccc at=2025-09-12T22:24:14.000000003Z len=0 snippet="" note="copy that"`))

	decode(t, c, "autoreply", "autoreply",
		"autoreply.request.len", "autoreply.id", "autoreply.at", "autoreply.len", "autoreply.snippet", "autoreply.note", "autoreply.error", "_ws.expert.message")
}
