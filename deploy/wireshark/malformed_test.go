package wireshark

import (
	"strings"
	"testing"

	"github.com/socklab/socklab/services/kit/lab"
)

// TestMalformed feeds each dissector messages that break its spec and
// checks that exactly those frames are marked malformed, with no Lua error.
func TestMalformed(t *testing.T) {
	c := newCapture(t)
	cli := hostPort(clientIP, 47000)
	ar := c.tcp(cli, hostPort(serverIP, lab.Autoreply.Port))
	ar.client([]byte("hi\n"))
	ar.server([]byte("REPLY something else\n")) // frame 5
	ar.close()
	fs := hostPort(serverIP, lab.Filestream.Port)
	c.udp(cli, fs, fsMsg(0x01, 1, []byte("hi"))[:11])           // frame 9: datagram shorter than its header says
	c.udp(fs, cli, fsMsg(0x85, 1, be32(1)))                     // frame 10: END body of 4 bytes
	c.udp(fs, cli, fsMsg(0x83, 1, be32(0), []byte{2}))          // frame 11: DATA flag other than bit 0
	c.udp(fs, cli, append([]byte("XS"), fsMsg(0x88, 1)[2:]...)) // frame 12: bad magic
	c.udp(fs, cli, streamPacket(1, 5, 5, 0, 26))                // frame 13: seq not below total
	md := c.tcp(hostPort(clientIP, 47001), hostPort(serverIP, lab.MovieDB.Port))
	md.client([]byte(`{"op":"get","title":"Alien"}` + "\n"))
	md.server([]byte(`{"ok":tru` + "\n")) // frame 18
	md.close()

	home := pluginHome(t)
	pcap := c.write()
	out := tshark(t, home, "-r", pcap, "-2", "-Y", "_ws.malformed || _ws.lua.error", "-T", "fields", "-e", "frame.number", "-e", "_ws.lua.error")
	got := strings.Fields(out)
	want := []string{"5", "9", "10", "11", "12", "13", "18"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("malformed frames = %v, want %v", got, want)
	}
}
