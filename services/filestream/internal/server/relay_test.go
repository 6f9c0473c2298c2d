package server

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/socklab/socklab/services/filestream/internal/client"
	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/nettest"
)

// action is what the relay does with a datagram from the server.
type action int

const (
	pass action = iota
	drop
	dup  // send twice
	hold // send after the next datagram
)

// relay forwards datagrams between a client and a server on loopback and
// applies policy to those from the server, to simulate a lossy network.
type relay struct {
	front, back *net.UDPConn
	policy      func(m proto.Message) action
	mu          sync.Mutex
	client      netip.AddrPort
	wg          sync.WaitGroup
}

func newRelay(t *testing.T, server string, policy func(proto.Message) action) string {
	t.Helper()
	r := &relay{front: nettest.ListenUDP(t), policy: policy}
	r.back = nettest.Dial(t, "udp", server).(*net.UDPConn)
	r.back.SetReadBuffer(4 << 20)
	r.front.SetReadBuffer(4 << 20)
	r.wg.Go(r.toServer)
	r.wg.Go(r.toClient)
	t.Cleanup(func() {
		r.front.Close()
		r.back.Close()
		r.wg.Wait()
	})
	return r.front.LocalAddr().String()
}

func (r *relay) toServer() {
	buf := make([]byte, proto.MaxDatagram)
	for {
		n, from, err := r.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.client = from
		r.mu.Unlock()
		r.back.Write(buf[:n])
	}
}

func (r *relay) toClient() {
	buf := make([]byte, proto.MaxDatagram)
	var held []byte
	for {
		n, err := r.back.Read(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		to := r.client
		r.mu.Unlock()
		m, _ := proto.ParseDatagram(buf[:n])
		switch r.policy(m) {
		case drop:
			continue
		case hold:
			held = append([]byte(nil), buf[:n]...)
			continue
		case dup:
			r.front.WriteToUDPAddrPort(buf[:n], to)
		}
		r.front.WriteToUDPAddrPort(buf[:n], to)
		if held != nil {
			r.front.WriteToUDPAddrPort(held, to)
			held = nil
		}
	}
}

// dataSeq returns the sequence number of a DATA or STREAM_PACKET, or -1.
func dataSeq(m proto.Message) int {
	switch m.Type {
	case proto.TypeData:
		d, _ := proto.ParseData(m.Body)
		return int(d.Seq)
	case proto.TypeStreamPacket:
		p, _ := proto.ParseStreamPacket(m.Body)
		return int(p.Seq)
	}
	return -1
}

func TestUDPLoss(t *testing.T) {
	ts := start(t, nil)
	chunk := testConfig(t).chunk()
	const packets = 200
	size := uint64(packets*chunk - 100)
	tests := []struct {
		name   string
		policy func(m proto.Message) action
		stream bool
		// timeout is the client's wait for the next datagram. Only the case
		// whose END is lost waits for it to expire, and it must not expire
		// earlier, in a stall of a loaded machine: 2s there, and
		// nettest.Timeout (never reached) where END arrives.
		timeout time.Duration
		check   func(t *testing.T, f client.FileResult, s client.StreamResult)
	}{
		{"file: drops, a duplicate, a swap", func(m proto.Message) action {
			switch dataSeq(m) {
			case 10, 50, 51:
				return drop
			case 20:
				return dup
			case 30:
				return hold
			}
			return pass
		}, false, nettest.Timeout, func(t *testing.T, f client.FileResult, _ client.StreamResult) {
			want := client.SeqStats{Expected: packets, Received: packets - 3, Lost: 3, Duplicates: 1, Reordered: 1}
			if f.Packets != want || !f.EndSeen || f.TimedOut {
				t.Errorf("got %+v, end %v, timed out %v; want %+v and END", f.Packets, f.EndSeen, f.TimedOut, want)
			}
			// Content stops at the first gap; the checksum cannot match.
			if f.OK() || f.Received != uint64(10*chunk) {
				t.Errorf("delivered %d bytes (ok %v), want the %d before the gap", f.Received, f.OK(), 10*chunk)
			}
		}},
		{"file: a swap only", func(m proto.Message) action {
			if dataSeq(m) == 100 {
				return hold
			}
			return pass
		}, false, nettest.Timeout, func(t *testing.T, f client.FileResult, _ client.StreamResult) {
			if !f.OK() || f.Packets.Reordered != 1 || f.Packets.Lost != 0 {
				t.Errorf("reordered file: ok %v, %v", f.OK(), f.Packets)
			}
		}},
		{"file: END and the last DATA lost: the timeout ends it", func(m proto.Message) action {
			if m.Type == proto.TypeEnd || dataSeq(m) == packets-1 {
				return drop
			}
			return pass
		}, false, 2 * time.Second, func(t *testing.T, f client.FileResult, _ client.StreamResult) {
			if !f.TimedOut || f.EndSeen || f.Packets.Lost != 1 || f.Packets.Received != packets-1 {
				t.Errorf("got %+v, timed out %v, end %v; want 1 lost and the timeout", f.Packets, f.TimedOut, f.EndSeen)
			}
		}},
		{"stream: drops and a duplicate", func(m proto.Message) action {
			switch dataSeq(m) {
			case 3, 7:
				return drop
			case 5:
				return dup
			}
			return pass
		}, true, nettest.Timeout, func(t *testing.T, _ client.FileResult, s client.StreamResult) {
			want := client.SeqStats{Expected: 20, Received: 18, Lost: 2, Duplicates: 1}
			if s.Packets != want || !s.EndSeen {
				t.Errorf("got %+v, end %v; want %+v", s.Packets, s.EndSeen, want)
			}
			if s.Sent[3] != -1 || s.Sent[4] < 0 {
				t.Errorf("send times %v: want -1 for lost packet 3", s.Sent[:5])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := newRelay(t, ts.udp, tt.policy)
			s := dial(t, "udp", addr, tt.timeout)
			var f client.FileResult
			var st client.StreamResult
			var err error
			if tt.stream {
				st, err = s.Stream(t.Context(), client.StreamParams{Interval: time.Millisecond, Count: 20})
			} else {
				f, err = s.File(t.Context(), size, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, f, st)
		})
	}
}
