package scenario

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fsproto "github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// fuzzWorkers build each scenario's worker over an in-memory connection,
// as if dialled.
var fuzzWorkers = []func(c *conn) (engine.Worker, func() error){
	func(c *conn) (engine.Worker, func() error) {
		return &autoreplyTCPWorker{lineConn: lines(c), size: 40}, nil
	},
	func(c *conn) (engine.Worker, func() error) {
		return &autoreplyUDPWorker{udpConn: datagrams(c), size: 40}, nil
	},
	func(c *conn) (engine.Worker, func() error) {
		w := &tinytcpWorker{lineConn: lines(c), size: 20, seq: new(atomic.Uint64)}
		return w, w.banner
	},
	func(c *conn) (engine.Worker, func() error) {
		return &fsEchoWorker{fsConn: &fsConn{conn: c, r: bufio.NewReader(c)}, size: 20}, nil
	},
	func(c *conn) (engine.Worker, func() error) {
		return &fsFileWorker{fsConn: &fsConn{conn: c, r: bufio.NewReader(c)}, size: 100, crc: fsproto.ContentCRC(100)}, nil
	},
	func(c *conn) (engine.Worker, func() error) {
		s, _ := newFilestreamStream(opts(""))
		req := s.(fsStream).req
		return &fsStreamWorker{udpConn: datagrams(c), req: req, seen: make([]bool, req.Count)}, nil
	},
	func(c *conn) (engine.Worker, func() error) {
		s, _ := newConnID(opts(""))
		return &connidWorker{udpConn: datagrams(c), s: s.(connid)}, nil
	},
}

var knownKinds = map[string]bool{
	engine.KindConnect: true, engine.KindTimeout: true, engine.KindLoss: true, engine.KindClosed: true,
	engine.KindWrongReply: true, engine.KindServerError: true, engine.KindIO: true,
}

func lines(c *conn) *lineConn    { return &lineConn{conn: c, r: bufio.NewReaderSize(c, 16<<10)} }
func datagrams(c *conn) *udpConn { return &udpConn{conn: c, buf: make([]byte, 64<<10)} }

// FuzzAnswers feeds arbitrary server bytes, in two writes split anywhere, to
// every scenario's worker: whatever comes back, a request ends with a
// verdict (nil only for a right answer) and never a panic or a hang.
func FuzzAnswers(f *testing.F) {
	f.Add(uint8(0), []byte("REPLY id=0123456789abcdef at=2025-01-01T00:00:00.000000000Z len=40 snippet=\"1-abcdefghijklmnopqrstuvwxyz0123456789AB\" note=\"copy that\"\n"), 17)
	f.Add(uint8(2), []byte("WELCOME\nECHO 1-abcdefghijklmnopqr\n"), 8)
	f.Add(uint8(2), []byte("ERROR SERVER_BUSY\n"), 3)
	f.Add(uint8(3), fsproto.AppendEchoReply(nil, 1, []byte("1-abcdefghijklmnopqr")), 12)
	f.Add(uint8(4), append(fsproto.AppendFileHeader(nil, 1, fsproto.FileHeader{Size: 100, CRC: fsproto.ContentCRC(100)}), make([]byte, 100)...), 30)
	f.Add(uint8(5), fsproto.AppendRetry(nil, 1, make([]byte, fsproto.CookieLen)), 5)
	f.Add(uint8(6), []byte("OK test1-1 127.0.0.1 5000"), 4)
	f.Fuzz(func(t *testing.T, which uint8, data []byte, cut int) {
		build := fuzzWorkers[int(which)%len(fuzzWorkers)]
		cut = min(max(cut, 0), len(data))
		client, server := net.Pipe()
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(io.Discard, server) })
		wg.Go(func() {
			server.Write(data[:cut])
			server.Write(data[cut:])
			server.Close()
		})
		c := watch(context.Background(), client, 5*time.Second)
		w, first := build(c)
		var err error
		if first != nil {
			err = first()
		}
		if err == nil {
			err = w.Do(context.Background())
		}
		switch kind := engine.KindOf(err); {
		case err == nil && len(data) == 0:
			t.Errorf("success without an answer")
		case err != nil && !knownKinds[kind]:
			t.Errorf("error of unknown kind %q: %v", kind, err)
		}
		c.Close()
		wg.Wait()
	})
}
