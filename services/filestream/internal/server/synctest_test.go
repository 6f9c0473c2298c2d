package server

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/socklab/socklab/services/filestream/internal/client"
	"github.com/socklab/socklab/services/filestream/proto"
)

// fakeWriter records datagrams and when they were sent.
type fakeWriter struct {
	mu   sync.Mutex
	sent []sentDatagram
}

type sentDatagram struct {
	at  time.Time
	msg proto.Message
}

func (w *fakeWriter) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	m, err := proto.ParseDatagram(append([]byte(nil), b...))
	if err != nil {
		panic("server sent an undecodable datagram: " + err.Error())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent = append(w.sent, sentDatagram{at: time.Now(), msg: m})
	return len(b), nil
}

func (w *fakeWriter) all() []sentDatagram {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]sentDatagram(nil), w.sent...)
}

func (w *fakeWriter) count(t proto.Type) int {
	n := 0
	for _, d := range w.all() {
		if d.msg.Type == t {
			n++
		}
	}
	return n
}

var peer = netip.MustParseAddrPort("192.0.2.7:5000")

// TestStreamExact runs a TCP stream through net.Pipe on the fake clock:
// every packet leaves and arrives exactly on its schedule.
func TestStreamExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(testConfig(t), nil)
		srv := h.TCPServer()
		cc, sc := net.Pipe()
		go srv.ServeConn(sc)
		s := client.NewTCP(cc, client.Options{Timeout: time.Second})
		const count, interval = 50, 10 * time.Millisecond
		start := time.Now()
		res, err := s.Stream(t.Context(), client.StreamParams{Interval: interval, Count: count})
		if err != nil {
			t.Fatal(err)
		}
		if res.Packets.Received != count || !res.EndSeen {
			t.Fatalf("stream: %v, end %v", res.Packets, res.EndSeen)
		}
		for i, got := range res.Sent {
			if want := time.Duration(i) * interval; got != want {
				t.Errorf("packet %d sent at +%v, want +%v", i, got, want)
			}
		}
		if res.MinGap != interval || res.MaxGap != interval || res.Jitter != 0 {
			t.Errorf("gaps %v..%v, jitter %v; want exactly %v and 0", res.MinGap, res.MaxGap, res.Jitter, interval)
		}
		if took := time.Since(start); took != (count-1)*interval {
			t.Errorf("stream took %v, want %v", took, (count-1)*interval)
		}
		if err := s.Quit(t.Context()); err != nil {
			t.Error(err)
		}
		cc.Close()
		srv.Shutdown(t.Context())
	})
}

// TestStalledClient: a client that stops reading mid-file holds the server
// for WriteTimeout and no longer.
func TestStalledClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t)
		cfg.WriteTimeout = 5 * time.Second
		h := newTestHandler(cfg, nil)
		srv := h.TCPServer()
		cc, sc := net.Pipe()
		done := make(chan time.Time, 1)
		go func() {
			srv.ServeConn(sc)
			done <- time.Now()
		}()
		start := time.Now()
		cc.Write(proto.AppendFileRequest(nil, 1, proto.FileRequest{Size: 10 << 20}))
		hdr := make([]byte, proto.HeaderLen+14)
		if _, err := cc.Read(hdr); err != nil {
			t.Fatal(err)
		}
		// ... and read nothing more.
		end := <-done
		if took := end.Sub(start); took < cfg.WriteTimeout || took > cfg.WriteTimeout+time.Second {
			t.Errorf("server gave up after %v, want %v", took, cfg.WriteTimeout)
		}
		cc.Close()
	})
}

// TestUDPPacing: UDP streams and files leave on the drift-free schedule.
func TestUDPPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t)
		cfg.UDPRate = int64(cfg.chunk()) * 1000 // one DATA per millisecond
		h := newTestHandler(cfg, nil)
		w := &fakeWriter{}
		c := h.cookies.Mint(nil, peer)
		start := time.Now()
		h.serveDatagram(w, peer, proto.AppendStreamRequest(nil, 1, proto.StreamRequest{Interval: 7 * time.Millisecond, Count: 20, Cookie: c}), nil)
		h.wg.Wait()
		var i int
		for _, d := range w.all() {
			if d.msg.Type != proto.TypeStreamPacket {
				continue
			}
			sp, _ := proto.ParseStreamPacket(d.msg.Body)
			want := start.Add(time.Duration(i) * 7 * time.Millisecond)
			if int(sp.Seq) != i || !d.at.Equal(want) || !sp.SentAt.Equal(want) {
				t.Errorf("stream packet %d (seq %d) at +%v, stamped +%v, want +%v", i, sp.Seq, d.at.Sub(start), sp.SentAt.Sub(start), want.Sub(start))
			}
			i++
		}
		if i != 20 || w.count(proto.TypeEnd) != 1 {
			t.Fatalf("%d stream packets and %d END, want 20 and 1", i, w.count(proto.TypeEnd))
		}

		w = &fakeWriter{}
		start = time.Now()
		size := 10*cfg.chunk() - 5
		h.serveDatagram(w, peer, proto.AppendFileRequest(nil, 2, proto.FileRequest{Size: uint64(size), Cookie: c}), nil)
		h.wg.Wait()
		got := w.all()
		if len(got) != 12 || got[0].msg.Type != proto.TypeFileHeader || got[11].msg.Type != proto.TypeEnd {
			t.Fatalf("file: %d datagrams, want header, 10 DATA, END", len(got))
		}
		for i, d := range got[1:11] {
			if want := start.Add(time.Duration(i) * time.Millisecond); !d.at.Equal(want) {
				t.Errorf("DATA %d at +%v, want +%v", i, d.at.Sub(start), want.Sub(start))
			}
		}
	})
}

// TestUDPShutdown: Shutdown waits for transfers, then cuts them off with
// ERROR shutting down shortly before its context ends (a tenth of the time
// left, at most a second), so that it returns nil in time; new requests are
// refused.
func TestUDPShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(testConfig(t), nil)
		w := &fakeWriter{}
		c := h.cookies.Mint(nil, peer)
		h.serveDatagram(w, peer, proto.AppendStreamRequest(nil, 1, proto.StreamRequest{Interval: time.Second, Count: 100, Cookie: c}), nil)
		time.Sleep(2500 * time.Millisecond) // packets at 0, 1 and 2 s
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		begun := time.Now()
		if err := h.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown = %v, want nil (transfers cut off in time)", err)
		}
		if took := time.Since(begun); took != 1800*time.Millisecond {
			t.Errorf("Shutdown took %v, want 1.8s (cut 0.2s before its 2s)", took)
		}
		if n := w.count(proto.TypeStreamPacket); n != 5 {
			t.Errorf("%d packets before the cut, want 5 (0 to 4 s)", n)
		}
		all := w.all()
		last := all[len(all)-1].msg
		if e, _ := proto.ParseError(last.Body); last.Type != proto.TypeError || e.Code != proto.CodeShutdown {
			t.Errorf("last datagram %v, want ERROR shutting down", last.Type)
		}
		if h.Transfers() != 0 {
			t.Errorf("%d transfers after Shutdown", h.Transfers())
		}
		w = &fakeWriter{}
		h.serveDatagram(w, peer, proto.AppendFileRequest(nil, 2, proto.FileRequest{Size: 1, Cookie: c}), nil)
		if got := w.all(); len(got) != 1 || got[0].msg.Type != proto.TypeError {
			t.Errorf("request after Shutdown answered with %v", got)
		}
		if err := h.Shutdown(context.Background()); err != nil {
			t.Errorf("second Shutdown = %v", err)
		}
	})
}

func TestUDPShutdownGraceful(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(testConfig(t), nil)
		w := &fakeWriter{}
		c := h.cookies.Mint(nil, peer)
		h.serveDatagram(w, peer, proto.AppendStreamRequest(nil, 1, proto.StreamRequest{Interval: time.Second, Count: 3, Cookie: c}), nil)
		start := time.Now()
		if err := h.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 2*time.Second {
			t.Errorf("Shutdown returned after %v, want 2s (the stream's end)", took)
		}
		if w.count(proto.TypeStreamPacket) != 3 || w.count(proto.TypeEnd) != 1 || w.count(proto.TypeError) != 0 {
			t.Errorf("graceful shutdown cut the stream: %d packets, %d END", w.count(proto.TypeStreamPacket), w.count(proto.TypeEnd))
		}
	})
}

// TestUDPQuit: a QUIT with the address's cookie stops its transfers; one
// without (it could be spoofed) does not.
func TestUDPQuit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newTestHandler(testConfig(t), nil)
		w := &fakeWriter{}
		c := h.cookies.Mint(nil, peer)
		h.serveDatagram(w, peer, proto.AppendStreamRequest(nil, 1, proto.StreamRequest{Interval: time.Second, Count: 100, Cookie: c}), nil)
		synctest.Wait()
		h.serveDatagram(w, peer, proto.AppendQuit(nil, 2, nil), nil)
		synctest.Wait()
		if h.Transfers() != 1 {
			t.Fatalf("QUIT without a cookie stopped the stream")
		}
		h.serveDatagram(w, peer, proto.AppendQuit(nil, 3, c), nil)
		synctest.Wait()
		if h.Transfers() != 0 {
			t.Fatalf("QUIT with the cookie left %d transfers", h.Transfers())
		}
		if w.count(proto.TypeBye) != 2 || w.count(proto.TypeError) != 0 || w.count(proto.TypeEnd) != 0 {
			t.Errorf("got %d BYE, %d ERROR, %d END; want 2, 0, 0", w.count(proto.TypeBye), w.count(proto.TypeError), w.count(proto.TypeEnd))
		}
	})
}
