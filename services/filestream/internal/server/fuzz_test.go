package server

import (
	"net/netip"
	"testing"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/netserve"
)

// countingWriter counts what the server sends.
type countingWriter struct{ bytes, datagrams int }

func (w *countingWriter) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	w.bytes += len(b)
	w.datagrams++
	return len(b), nil
}

// FuzzServeDatagram feeds any datagram to the UDP handler, whole and as two
// datagrams (its halves): the server must not fail, must answer each with
// at most one datagram of at most 3 times its size, and must start no
// transfer (no input can carry a valid cookie).
func FuzzServeDatagram(f *testing.F) {
	f.Add([]byte("hello\n"))
	f.Add(proto.AppendEcho(nil, 1, []byte("echo")))
	f.Add(proto.AppendFileRequest(nil, 2, proto.FileRequest{Size: 123456789}))
	f.Add(proto.AppendFileRequest(nil, 2, proto.FileRequest{Size: 1, Cookie: make([]byte, proto.CookieLen)}))
	f.Add(proto.AppendStreamRequest(nil, 3, proto.StreamRequest{Interval: time.Millisecond, Count: 100}))
	f.Add(proto.AppendStreamRequest(nil, 3, proto.StreamRequest{Count: 1 << 30, Size: 65000}))
	f.Add(proto.AppendQuit(nil, 4, nil))
	f.Add(proto.AppendBye(nil, 5))
	f.Add([]byte("FS\x01\x42\x00\x00\x00\x00\x00\x01"))
	cfg := Config{Settings: netserve.Settings{Protocol: "udp", UDPReaders: 1}, MaxFile: 123456789, StreamLimit: 100, MinInterval: time.Millisecond,
		PacketSize: 1200, UDPTransfers: 4, UDPTransfersPerSource: 4, CookieTTL: time.Minute}
	h := newTestHandler(cfg, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		half := len(b) / 2
		for _, d := range [][]byte{b, b[:half], b[half:]} {
			w := &countingWriter{}
			h.serveDatagram(w, peer, d, nil)
			if w.datagrams > 1 || w.bytes > amplification*len(d) {
				t.Fatalf("%q got %d datagrams, %d bytes", d, w.datagrams, w.bytes)
			}
		}
		if n := h.Transfers(); n != 0 {
			t.Fatalf("%q started %d transfers", b, n)
		}
	})
}
