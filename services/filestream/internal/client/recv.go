package client

import (
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
)

// SeqStats counts what arrived of a numbered sequence of packets.
type SeqStats struct {
	// Expected is how many packets the server announced.
	Expected uint64
	// Received counts distinct packets.
	Received uint64
	// Lost is Expected - Received at the end.
	Lost uint64
	// Duplicates counts packets that arrived again.
	Duplicates uint64
	// Reordered counts packets that arrived after one with a higher number.
	Reordered uint64
	// Invalid counts packets of this transfer that made no sense (a number
	// out of range, a wrong length); they are dropped.
	Invalid uint64
}

// String is the summary the client prints.
func (s SeqStats) String() string {
	return fmt.Sprintf("packets %d/%d, lost %d, duplicates %d, reordered %d",
		s.Received, s.Expected, s.Lost, s.Duplicates, s.Reordered)
}

// seqTracker keeps the per-packet bookkeeping behind SeqStats.
type seqTracker struct {
	seen    []uint64 // bitset
	highest int64
	stats   SeqStats
}

func newSeqTracker(n uint64) *seqTracker {
	return &seqTracker{seen: make([]uint64, (n+63)/64), highest: -1, stats: SeqStats{Expected: n}}
}

// add records packet seq and reports whether it is new.
func (t *seqTracker) add(seq uint32) bool {
	if uint64(seq) >= t.stats.Expected {
		t.stats.Invalid++
		return false
	}
	w, b := seq/64, uint64(1)<<(seq%64)
	if t.seen[w]&b != 0 {
		t.stats.Duplicates++
		return false
	}
	t.seen[w] |= b
	t.stats.Received++
	if int64(seq) < t.highest {
		t.stats.Reordered++
	} else {
		t.highest = int64(seq)
	}
	return true
}

func (t *seqTracker) final() SeqStats {
	s := t.stats
	s.Lost = s.Expected - s.Received
	return s
}

// FileResult describes a received file.
type FileResult struct {
	// Size and CRC are what the FILE_HEADER announced.
	Size uint64
	CRC  uint32
	// Received is how many content bytes were delivered, in order, to the
	// sink; GotCRC is their CRC-32C.
	Received uint64
	GotCRC   uint32
	// Elapsed runs from the request to the last byte.
	Elapsed time.Duration
	// UDP only: the DATA packets, whether END arrived, and whether the
	// client gave up waiting (the receive timeout).
	UDP      bool
	Packets  SeqStats
	EndSeen  bool
	TimedOut bool
}

// OK reports whether every byte arrived and the checksum matches.
func (r FileResult) OK() bool { return r.Received == r.Size && r.GotCRC == r.CRC }

// Throughput is the content rate in bytes per second.
func (r FileResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Received) / r.Elapsed.Seconds()
}

// crcWriter feeds a running CRC-32C and the user's sink.
type crcWriter struct {
	crc  uint32
	n    uint64
	sink io.Writer
}

func (w *crcWriter) Write(p []byte) (int, error) {
	w.crc = crc32.Update(w.crc, proto.CRCTable, p)
	w.n += uint64(len(p))
	if w.sink != nil {
		return w.sink.Write(p)
	}
	return len(p), nil
}

// maxPending bounds the out-of-order content a UDP file receiver holds
// while it waits for a missing packet.
const maxPending = 8 << 20

// maxPackets bounds the packets of a UDP file the client tracks.
const maxPackets = 1 << 28

// fileReceiver reassembles a UDP file: content goes to the sink in order;
// packets after a gap wait (bounded) for it to fill. The CRC can only be
// verified when nothing is missing.
type fileReceiver struct {
	want    uint64 // the size asked for
	hdr     *proto.FileHeader
	seq     *seqTracker
	next    uint32                // next packet to deliver
	pending map[uint32][]byte     // arrived ahead of next
	held    int                   // bytes in pending
	early   map[uint32]proto.Data // arrived before the header
	gaveUp  bool                  // pending overflowed: stop delivering
	end     *proto.End
	out     crcWriter
	err     error // a write to the sink failed
}

func newFileReceiver(want uint64, sink io.Writer) *fileReceiver {
	return &fileReceiver{want: want, pending: map[uint32][]byte{}, out: crcWriter{sink: sink}}
}

// header takes the FILE_HEADER; an answer for another size is an error.
func (f *fileReceiver) header(h proto.FileHeader) error {
	if f.hdr != nil {
		return nil // a duplicate
	}
	if h.Size != f.want {
		return fmt.Errorf("server announced %d bytes, asked for %d", h.Size, f.want)
	}
	if h.Chunk == 0 && h.Size > 0 {
		return fmt.Errorf("server announced a chunk size of 0")
	}
	if h.Packets() > maxPackets {
		return fmt.Errorf("server announced %d packets, more than %d", h.Packets(), maxPackets)
	}
	f.hdr = &h
	f.seq = newSeqTracker(h.Packets())
	early := f.early
	f.early = nil
	for _, seq := range slices.Sorted(maps.Keys(early)) {
		f.data(early[seq])
	}
	return nil
}

// data takes a DATA message; Payload is copied if it must wait.
func (f *fileReceiver) data(d proto.Data) {
	if f.hdr == nil {
		if f.early == nil {
			f.early = map[uint32]proto.Data{}
		}
		if len(f.early) < 1024 {
			d.Payload = append([]byte(nil), d.Payload...)
			f.early[d.Seq] = d
		}
		return
	}
	if !f.validLen(d) {
		f.seq.stats.Invalid++
		return
	}
	if !f.seq.add(d.Seq) {
		return
	}
	if f.gaveUp {
		return
	}
	if d.Seq != f.next {
		if f.held+len(d.Payload) > maxPending {
			f.gaveUp = true
			clear(f.pending)
			return
		}
		f.pending[d.Seq] = append([]byte(nil), d.Payload...)
		f.held += len(d.Payload)
		return
	}
	f.deliver(d.Payload)
	for {
		p, ok := f.pending[f.next]
		if !ok {
			break
		}
		delete(f.pending, f.next)
		f.held -= len(p)
		f.deliver(p)
	}
}

func (f *fileReceiver) deliver(p []byte) {
	f.next++
	if f.err == nil {
		_, f.err = f.out.Write(p)
	}
}

// validLen checks a DATA content length against the header.
func (f *fileReceiver) validLen(d proto.Data) bool {
	n := f.hdr.Packets()
	if uint64(d.Seq) >= n {
		return true // counted as invalid by the tracker
	}
	want := uint64(f.hdr.Chunk)
	if uint64(d.Seq) == n-1 {
		want = f.hdr.Size - (n-1)*uint64(f.hdr.Chunk)
	}
	return uint64(len(d.Payload)) == want && d.Last == (uint64(d.Seq) == n-1)
}

// done reports whether nothing more is to come.
func (f *fileReceiver) done() bool {
	return f.end != nil || (f.hdr != nil && f.seq.stats.Received == f.seq.stats.Expected)
}

func (f *fileReceiver) result() FileResult {
	r := FileResult{UDP: true, Received: f.out.n, GotCRC: f.out.crc, EndSeen: f.end != nil}
	if f.hdr != nil {
		r.Size, r.CRC = f.hdr.Size, f.hdr.CRC
		r.Packets = f.seq.final()
	} else {
		r.Size = f.want
		r.Packets.Received = uint64(len(f.early))
		if f.end != nil {
			r.Packets.Expected = uint64(f.end.Packets)
			r.Packets.Lost = r.Packets.Expected - min(r.Packets.Expected, r.Packets.Received)
		}
	}
	return r
}

// StreamResult describes a received stream.
type StreamResult struct {
	// Interval is the spacing asked for.
	Interval time.Duration
	Packets  SeqStats
	// Elapsed runs from the request to the last packet.
	Elapsed time.Duration
	// Gap statistics of the arrival times of consecutive received packets.
	MeanGap, MinGap, MaxGap time.Duration
	// Jitter is the RFC 3550 interarrival jitter: the smoothed variation of
	// (arrival time - send time) from one packet to the next.
	Jitter time.Duration
	// Sent holds each received packet's send time, relative to the send
	// time of packet 0 when it arrived, by sequence number (-1: missing).
	Sent     []time.Duration
	EndSeen  bool
	TimedOut bool
}

// streamReceiver keeps the statistics of a stream as packets arrive.
type streamReceiver struct {
	total       uint32
	seq         *seqTracker
	first, last time.Time
	gaps        int
	gapSum      time.Duration
	minGap      time.Duration
	maxGap      time.Duration
	prevTransit time.Duration
	jitter      float64
	sentAt      []time.Time
	end         bool
}

func newStreamReceiver(total uint32) *streamReceiver {
	return &streamReceiver{total: total, seq: newSeqTracker(uint64(total)), minGap: math.MaxInt64, sentAt: make([]time.Time, total)}
}

func (s *streamReceiver) packet(p proto.StreamPacket, at time.Time) {
	if p.Total != s.total {
		s.seq.stats.Invalid++
		return
	}
	if !s.seq.add(p.Seq) {
		return
	}
	s.sentAt[p.Seq] = p.SentAt
	transit := at.Sub(p.SentAt)
	if !s.last.IsZero() {
		gap := at.Sub(s.last)
		s.gaps++
		s.gapSum += gap
		s.minGap = min(s.minGap, gap)
		s.maxGap = max(s.maxGap, gap)
		d := float64(transit - s.prevTransit)
		s.jitter += (math.Abs(d) - s.jitter) / 16
	} else {
		s.first = at
	}
	s.last = at
	s.prevTransit = transit
}

func (s *streamReceiver) done() bool {
	return s.end || s.seq.stats.Received == uint64(s.total)
}

func (s *streamReceiver) result(start time.Time, interval time.Duration) StreamResult {
	r := StreamResult{Interval: interval, Packets: s.seq.final(), EndSeen: s.end, Jitter: time.Duration(s.jitter)}
	if !s.last.IsZero() {
		r.Elapsed = s.last.Sub(start)
	}
	if s.gaps > 0 {
		r.MeanGap = s.gapSum / time.Duration(s.gaps)
		r.MinGap, r.MaxGap = s.minGap, s.maxGap
	}
	r.Sent = make([]time.Duration, s.total)
	var base time.Time
	if len(s.sentAt) > 0 {
		base = s.sentAt[0]
	}
	for i, t := range s.sentAt {
		if t.IsZero() || base.IsZero() {
			r.Sent[i] = -1
			continue
		}
		r.Sent[i] = t.Sub(base)
	}
	return r
}
