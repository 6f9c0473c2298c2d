package wireshark

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/socklab/socklab/services/kit/lab"
)

// pattern is the filestream content pattern: byte i of a file is
// pattern[i%64].
const pattern = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n"

func content(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = pattern[(off+i)%len(pattern)]
	}
	return b
}

func contentCRC(n int) uint32 {
	return crc32.Checksum(content(0, n), crc32.MakeTable(crc32.Castagnoli))
}

// fsMsg builds a filestream message: the 10-byte header and body.
func fsMsg(typ byte, id uint32, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	h := []byte{'F', 'S', 1, typ, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[4:], uint16(len(b)))
	binary.BigEndian.PutUint32(h[6:], id)
	return append(h, b...)
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func fileHeader(id uint32, size int, crc uint32, chunk uint16) []byte {
	return fsMsg(0x82, id, be64(uint64(size)), be32(crc), be16(chunk))
}

func streamPacket(id, seq, total uint32, sentNS int64, size int) []byte {
	body := append(append(be32(seq), be32(total)...), be64(uint64(sentNS))...)
	return fsMsg(0x84, id, body, make([]byte, size-10-len(body)))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// cutAt splits b at the given offsets.
func cutAt(b []byte, at ...int) [][]byte { return split(string(b), at...) }

func TestFilestream(t *testing.T) {
	// The README's example: a FILE of 1000 characters has CRC 4db0c8a7.
	if got := contentCRC(1000); got != 0x4db0c8a7 {
		t.Fatalf("contentCRC(1000) = %08x, want 4db0c8a7", got)
	}
	c := newCapture(t)
	srv := hostPort(serverIP, lab.Filestream.Port)
	sent := int64(1767323045000000000) // 2026-01-02T03:04:05Z

	// TCP: an ECHO and a FILE in one segment; the answers cut mid-header,
	// mid-content and mid-message.
	conn := c.tcp(hostPort(clientIP, 45000), srv)
	conn.client(cat(fsMsg(0x01, 1, []byte("hello, server")), fsMsg(0x02, 2, be64(1000))))
	answer := cat(fsMsg(0x81, 1, []byte("hello, server")), fileHeader(2, 1000, contentCRC(1000), 0), content(0, 1000))
	conn.server(cutAt(answer, 28, 400)...)
	// STREAM, one request split across segments, its packets and END.
	conn.client(cutAt(fsMsg(0x03, 3, be32(10000), be32(3), be16(26)), 4, 13)...)
	conn.server(cat(streamPacket(3, 0, 3, sent, 26), streamPacket(3, 1, 3, sent+10e6, 26)[:15]))
	conn.server(cat(streamPacket(3, 1, 3, sent+10e6, 26)[15:], streamPacket(3, 2, 3, sent+20e6, 40), fsMsg(0x85, 3, be32(3), be64(0))))
	// A file ending in "F" (42 bytes) at the end of a segment, the next
	// message in the next one.
	conn.client(fsMsg(0x02, 4, be64(42)))
	conn.server(cat(fileHeader(4, 42, contentCRC(42), 0), content(0, 42)))
	conn.client(fsMsg(0x01, 5, []byte("after F")))
	conn.server(fsMsg(0x81, 5, []byte("after F")))
	// Too large, then QUIT.
	conn.client(fsMsg(0x02, 6, be64(200000000)), fsMsg(0x04, 7))
	conn.server(fsMsg(0x87, 6, be16(4), []byte("file too large: max 123456789")), fsMsg(0x88, 7))
	conn.close()

	// TCP: a FILE_HEADER with a wrong CRC.
	bad := c.tcp(hostPort(clientIP, 45001), srv)
	bad.client(fsMsg(0x02, 1, be64(64)))
	bad.server(cat(fileHeader(1, 64, contentCRC(64)^1, 0), content(0, 64)))
	bad.close()

	// UDP: FILE without a cookie draws a RETRY; with it, FILE_HEADER,
	// three DATA and END; a STREAM; ECHO; QUIT; a busy server.
	cli := hostPort(clientIP, 45002)
	cookie := cat(be32(1767323045), []byte("0123456789abcdef"))
	c.udp(cli, srv, fsMsg(0x02, 1, be64(3000)))
	c.udp(srv, cli, fsMsg(0x86, 1, cookie))
	c.udp(cli, srv, fsMsg(0x02, 2, be64(3000), cookie))
	c.udp(srv, cli, fileHeader(2, 3000, contentCRC(3000), 1185))
	c.udp(srv, cli, fsMsg(0x83, 2, be32(0), []byte{0}, content(0, 1185)))
	c.udp(srv, cli, fsMsg(0x83, 2, be32(2), []byte{1}, content(2370, 630)))
	c.udp(srv, cli, fsMsg(0x83, 2, be32(1), []byte{0}, content(1185, 1185)))
	c.udp(srv, cli, fsMsg(0x85, 2, be32(3), be64(3000)))
	c.udp(cli, srv, fsMsg(0x03, 3, be32(5000), be32(2), be16(26), cookie))
	c.udp(srv, cli, streamPacket(3, 0, 2, sent, 26))
	c.udp(srv, cli, streamPacket(3, 1, 2, sent+5e6, 26))
	c.udp(srv, cli, fsMsg(0x85, 3, be32(2), be64(0)))
	c.udp(cli, srv, fsMsg(0x01, 4, []byte("ping")))
	c.udp(srv, cli, fsMsg(0x81, 4, []byte("ping")))
	c.udp(cli, srv, fsMsg(0x02, 5, be64(10), cookie))
	c.udp(srv, cli, fsMsg(0x87, 5, be16(6), []byte("busy: 64 transfers")))
	// A large file's CRC, which the dissector combines in O(log n).
	const large = 10<<20 + 37
	c.udp(cli, srv, fsMsg(0x02, 7, be64(large), cookie))
	c.udp(srv, cli, fileHeader(7, large, contentCRC(large), 1185))
	c.udp(cli, srv, fsMsg(0x04, 6, cookie))
	c.udp(srv, cli, fsMsg(0x88, 6))

	out := decode(t, c, "filestream", "filestream",
		"filestream.type", "filestream.id", "filestream.size", "filestream.crc32c", "filestream.crc32c.good",
		"filestream.seq", "filestream.flags.last", "filestream.total", "filestream.packets", "filestream.bytes",
		"filestream.cookie", "filestream.error.code", "filestream.content.len", "_ws.expert.message")
	for _, want := range []string{
		fmt.Sprintf("S: FILE_HEADER id=1 size=64 crc32c=0x%08x (WRONG)", contentCRC(64)^1),
		fmt.Sprintf("Wrong CRC-32C 0x%08x for 64 bytes of content: want 0x%08x", contentCRC(64)^1, contentCRC(64)),
		"S: FILE_HEADER id=2 size=1000 crc32c=0x4db0c8a7 chunk=0",
		fmt.Sprintf("S: FILE_HEADER id=7 size=%d crc32c=0x%08x chunk=1185\t", large, contentCRC(large)),
		"S: RETRY id=1 cookie=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
