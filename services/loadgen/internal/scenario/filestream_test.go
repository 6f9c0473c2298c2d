package scenario

import (
	"net"
	"testing"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/loadgen/internal/labtest"
)

func TestFilestreamAgainstServer(t *testing.T) {
	bin := labtest.Build(t, "filestream", "filestream-server")
	addr := labtest.Start(t, bin, nil, "-addr", "127.0.0.1:0", "-protocol", "both").Addr
	tests := []struct {
		name string
		edit func(o *Options)
		n    int64
	}{
		{name: "filestream-echo", n: 400},
		{name: "filestream-echo", n: 100, edit: func(o *Options) { o.Size = proto.MaxBody }},
		{name: "filestream-file", n: 100},
		{name: "filestream-file", n: 10, edit: func(o *Options) { o.FileSize = 0 }},
		{name: "filestream-file", n: 5, edit: func(o *Options) { o.FileSize = 3_000_001 }},
		{name: "filestream-stream", n: 40},
		{name: "filestream-stream", n: 10, edit: func(o *Options) { o.StreamCount, o.StreamSize = 1, proto.StreamPacketMinLen }},
	}
	for _, tt := range tests {
		o := opts(addr)
		if tt.edit != nil {
			tt.edit(&o)
		}
		st := run(t, tt.name, o, engine.Config{Workers: 4, Requests: tt.n})
		wantAllGood(t, st, tt.n)
	}
	st := run(t, "filestream-echo", opts(addr), engine.Config{Workers: 2, Rate: 2000, Requests: 200})
	wantAllGood(t, st, 200)
}

// fakeFS answers each filestream request over TCP with reply(request).
func fakeFS(t *testing.T, reply func(m proto.Message) []byte) string {
	return fakeTCP(t, func(c net.Conn) {
		var buf []byte
		for {
			m, b, err := proto.ReadMessage(c, buf)
			buf = b
			if err != nil {
				return
			}
			if _, err := c.Write(reply(m)); err != nil {
				return
			}
		}
	})
}

func TestFilestreamWrongAnswers(t *testing.T) {
	fileReply := func(size int64, crc uint32, content []byte) func(m proto.Message) []byte {
		return func(m proto.Message) []byte {
			out := proto.AppendFileHeader(nil, m.ID, proto.FileHeader{Size: uint64(size), CRC: crc})
			return append(out, content...)
		}
	}
	good := make([]byte, 100_000)
	proto.FillContent(good, 0)
	bad := append([]byte(nil), good...)
	bad[50_000] ^= 1
	tests := []struct {
		name     string
		scenario string
		reply    func(m proto.Message) []byte
		kind     string
	}{
		{name: "echo of other bytes", scenario: "filestream-echo", kind: engine.KindWrongReply,
			reply: func(m proto.Message) []byte { return proto.AppendEchoReply(nil, m.ID, []byte("other")) }},
		{name: "echo for another id", scenario: "filestream-echo", kind: engine.KindWrongReply,
			reply: func(m proto.Message) []byte { return proto.AppendEchoReply(nil, m.ID+1, m.Body) }},
		{name: "echo refused", scenario: "filestream-echo", kind: engine.KindServerError,
			reply: func(m proto.Message) []byte { return proto.AppendError(nil, m.ID, proto.CodeBusy, "busy") }},
		{name: "not filestream", scenario: "filestream-echo", kind: engine.KindWrongReply,
			reply: func(proto.Message) []byte { return []byte("HTTP/1.0 400 Bad Request\r\n\r\n") }},
		{name: "file of wrong size", scenario: "filestream-file", kind: engine.KindWrongReply,
			reply: fileReply(99_999, proto.ContentCRC(99_999), good[:99_999])},
		{name: "file with wrong crc", scenario: "filestream-file", kind: engine.KindWrongReply,
			reply: fileReply(100_000, 12345, good)},
		{name: "file content altered", scenario: "filestream-file", kind: engine.KindWrongReply,
			reply: fileReply(100_000, proto.ContentCRC(100_000), bad)},
		{name: "echo instead of file", scenario: "filestream-file", kind: engine.KindWrongReply,
			reply: func(m proto.Message) []byte { return proto.AppendEchoReply(nil, m.ID, m.Body) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeFS(t, tt.reply)
			st := run(t, tt.scenario, opts(addr), engine.Config{Workers: 2, Requests: 20})
			wantAllKind(t, st, 20, tt.kind)
		})
	}
}

func TestFilestreamStreamLoss(t *testing.T) {
	addr := fakeUDPStream(t, func(seq uint32) bool { return seq == 2 }, true)
	o := opts(addr)
	o.Timeout = 100 * time.Millisecond
	st := run(t, "filestream-stream", o, engine.Config{Workers: 1, Requests: 5})
	wantAllKind(t, st, 5, engine.KindLoss)

	// Every packet, but no END: lost too, once the timeout has passed.
	o.Target = fakeUDPStream(t, func(uint32) bool { return false }, false)
	start := time.Now()
	st = run(t, "filestream-stream", o, engine.Config{Workers: 1, Requests: 3})
	if d := time.Since(start); d < 3*o.Timeout {
		t.Errorf("3 streams without END took %v, want each to wait the %v timeout", d, o.Timeout)
	}
	wantAllKind(t, st, 3, engine.KindLoss)

	st = run(t, "filestream-stream", opts(fakeUDPStream(t, func(uint32) bool { return false }, true)), engine.Config{Workers: 2, Requests: 20})
	wantAllGood(t, st, 20)
}

// fakeUDPStream serves STREAM requests over UDP: a RETRY for a request
// without cookie, then every packet unless dropped, then END when end.
func fakeUDPStream(t *testing.T, drop func(seq uint32) bool, end bool) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m, err := proto.ParseDatagram(buf[:n])
			if err != nil {
				continue
			}
			req, err := proto.ParseStreamRequest(m.Body)
			if err != nil {
				continue
			}
			if req.Cookie == nil {
				pc.WriteToUDPAddrPort(proto.AppendRetry(nil, m.ID, make([]byte, proto.CookieLen)), from)
				continue
			}
			pad := int(req.Size) - proto.StreamPacketMinLen
			for seq := range req.Count {
				if !drop(seq) {
					pc.WriteToUDPAddrPort(proto.AppendStreamPacket(nil, m.ID, proto.StreamPacket{Seq: seq, Total: req.Count, SentAt: time.Now(), Pad: pad}), from)
				}
			}
			if end {
				pc.WriteToUDPAddrPort(proto.AppendEnd(nil, m.ID, proto.End{Packets: req.Count}), from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}
