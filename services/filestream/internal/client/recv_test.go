package client

import (
	"bytes"
	"testing"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
)

// udpFile is the datagrams of a UDP file as the server sends them.
func udpFile(size uint64, chunk uint16) (proto.FileHeader, []proto.Data) {
	h := proto.FileHeader{Size: size, CRC: proto.ContentCRC(int64(size)), Chunk: chunk}
	var ds []proto.Data
	n := h.Packets()
	for i := range n {
		off := i * uint64(chunk)
		p := make([]byte, min(uint64(chunk), size-off))
		proto.FillContent(p, int64(off))
		ds = append(ds, proto.Data{Seq: uint32(i), Last: i == n-1, Payload: p})
	}
	return h, ds
}

func TestFileReceiver(t *testing.T) {
	const size, chunk = 1000, 100
	tests := []struct {
		name      string
		order     []int // DATA sequence numbers in arrival order; -1: header
		end       bool
		want      SeqStats
		delivered uint64
		ok        bool
	}{
		{"in order", []int{-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, false,
			SeqStats{Expected: 10, Received: 10}, size, true},
		{"reordered", []int{-1, 1, 0, 3, 2, 4, 5, 6, 9, 8, 7}, false,
			SeqStats{Expected: 10, Received: 10, Reordered: 4}, size, true},
		{"duplicates", []int{-1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9}, false,
			SeqStats{Expected: 10, Received: 10, Duplicates: 2}, size, true},
		{"loss", []int{-1, 0, 1, 2, 4, 5, 6, 7, 8, 9}, true,
			SeqStats{Expected: 10, Received: 9, Lost: 1}, 300, false},
		{"header late", []int{0, 1, -1, 2, 3, 4, 5, 6, 7, 8, 9}, false,
			SeqStats{Expected: 10, Received: 10}, size, true},
		{"out of range", []int{-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12}, false,
			SeqStats{Expected: 10, Received: 10}, size, true},
	}
	for _, tt := range tests {
		hdr, ds := udpFile(size, chunk)
		var sink bytes.Buffer
		rx := newFileReceiver(size, &sink)
		for _, i := range tt.order {
			switch {
			case i == -1:
				if err := rx.header(hdr); err != nil {
					t.Fatal(err)
				}
			case i < len(ds):
				rx.data(ds[i])
			default:
				rx.data(proto.Data{Seq: uint32(i), Payload: []byte("x")})
			}
		}
		if tt.end {
			rx.end = &proto.End{Packets: 10, Bytes: size}
		}
		if !rx.done() {
			t.Errorf("%s: not done", tt.name)
		}
		res := rx.result()
		res.Packets.Invalid = 0
		if res.Packets != tt.want || res.Received != tt.delivered || res.OK() != tt.ok {
			t.Errorf("%s: got %+v, %d bytes, ok %v; want %+v, %d, %v", tt.name, res.Packets, res.Received, res.OK(), tt.want, tt.delivered, tt.ok)
		}
		want := make([]byte, tt.delivered)
		proto.FillContent(want, 0)
		if !bytes.Equal(sink.Bytes(), want) {
			t.Errorf("%s: delivered content differs", tt.name)
		}
	}
}

func TestFileReceiverRejects(t *testing.T) {
	rx := newFileReceiver(10, nil)
	if err := rx.header(proto.FileHeader{Size: 11, Chunk: 5}); err == nil {
		t.Error("header for another size accepted")
	}
	if err := rx.header(proto.FileHeader{Size: 10, Chunk: 0}); err == nil {
		t.Error("chunk 0 accepted")
	}
	rx = newFileReceiver(10, nil)
	rx.header(proto.FileHeader{Size: 10, Chunk: 4})
	rx.data(proto.Data{Seq: 0, Payload: []byte("abc")})              // short
	rx.data(proto.Data{Seq: 2, Payload: []byte("ab")})               // last without the flag
	rx.data(proto.Data{Seq: 1, Last: true, Payload: []byte("abcd")}) // flag on a middle one
	if s := rx.result().Packets; s.Invalid != 3 || s.Received != 0 {
		t.Errorf("got %+v, want 3 invalid and none received", s)
	}
}

func TestStreamReceiver(t *testing.T) {
	t0 := time.Unix(100, 0)
	rx := newStreamReceiver(5)
	// Sent every 10ms; transit 1ms except packet 2 (3ms). Packet 3 lost,
	// packet 1 duplicated, one packet of another stream.
	arrive := []struct {
		seq     uint32
		transit time.Duration
	}{{0, time.Millisecond}, {1, time.Millisecond}, {1, time.Millisecond}, {2, 3 * time.Millisecond}, {4, time.Millisecond}}
	for _, a := range arrive {
		sent := t0.Add(time.Duration(a.seq) * 10 * time.Millisecond)
		rx.packet(proto.StreamPacket{Seq: a.seq, Total: 5, SentAt: sent}, sent.Add(a.transit))
	}
	rx.packet(proto.StreamPacket{Seq: 0, Total: 6, SentAt: t0}, t0)
	res := rx.result(t0, 10*time.Millisecond)
	want := SeqStats{Expected: 5, Received: 4, Lost: 1, Duplicates: 1, Invalid: 1}
	if res.Packets != want {
		t.Errorf("stats %+v, want %+v", res.Packets, want)
	}
	if res.MinGap != 10*time.Millisecond || res.MaxGap != 18*time.Millisecond {
		t.Errorf("gaps %v..%v, want 10ms to 18ms", res.MinGap, res.MaxGap)
	}
	// RFC 3550: J += (|D| - J)/16 over D = 0, 2ms, -2ms (the duplicate
	// does not count).
	j := 0.0
	for _, d := range []float64{0, 2e6, 2e6} {
		j += (d - j) / 16
	}
	if res.Jitter != time.Duration(j) {
		t.Errorf("jitter %v, want %v", res.Jitter, time.Duration(j))
	}
	wantSent := []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond, -1, 40 * time.Millisecond}
	for i, w := range wantSent {
		if res.Sent[i] != w {
			t.Errorf("Sent[%d] = %v, want %v", i, res.Sent[i], w)
		}
	}
}

// FuzzFileReceiver feeds a receiver arbitrary server datagrams, whole and
// split in two: it must never fail, deliver more than it was promised, or
// count more packets than announced.
func FuzzFileReceiver(f *testing.F) {
	hdr, ds := udpFile(250, 100)
	var seed []byte
	seed = proto.AppendFileHeader(seed, 1, hdr)
	for _, d := range ds {
		seed = proto.AppendData(seed, 1, d)
	}
	f.Add(seed, uint64(250))
	f.Add(proto.AppendData(nil, 1, proto.Data{Seq: 3, Payload: []byte("x")}), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, size uint64) {
		size %= 1 << 20
		half := len(b) / 2
		for _, in := range [][]byte{b, b[:half], b[half:]} {
			rx := newFileReceiver(size, nil)
			var buf []byte
			r := bytes.NewReader(in)
			for range 1000 {
				var m proto.Message
				var err error
				m, buf, err = proto.ReadMessage(r, buf)
				if err != nil {
					break
				}
				v, err := proto.Decode(m)
				if err != nil {
					continue
				}
				switch v := v.(type) {
				case proto.FileHeader:
					rx.header(v)
				case proto.Data:
					rx.data(v)
				case proto.End:
					rx.end = &v
				}
			}
			res := rx.result()
			if res.Received > size || (rx.hdr != nil && res.Packets.Received > res.Packets.Expected) {
				t.Fatalf("delivered %d of %d bytes, %+v", res.Received, size, res.Packets)
			}
		}
	})
}
