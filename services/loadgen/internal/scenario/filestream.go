package scenario

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// Bounds of filestream requests, as the server's defaults allow.
const (
	maxFilestreamFile   = 1 << 30
	maxFilestreamCount  = 100  // the server's default stream limit
	maxFilestreamPacket = 1200 // the server's default packet size
	minFilestreamGap    = time.Millisecond
	// maxRetries bounds the RETRYs answered for one UDP request.
	maxRetries = 2
)

// fsConn exchanges filestream messages over TCP.
type fsConn struct {
	*conn
	r   *bufio.Reader
	id  uint32
	out []byte
	in  []byte
}

func dialFilestream(ctx context.Context, o Options) (*fsConn, error) {
	c, err := dial(ctx, "tcp", o.Target, o.Timeout)
	if err != nil {
		return nil, err
	}
	return &fsConn{conn: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// begin numbers a new request and arms its deadline.
func (f *fsConn) begin() error {
	f.id++
	return f.arm()
}

func (f *fsConn) send(b []byte) error {
	if _, err := f.Write(b); err != nil {
		return engine.Wrap(err)
	}
	return nil
}

// read returns the next message answering the current request: an ERROR
// is KindServerError, a message of another request or a malformed one
// KindWrongReply.
func (f *fsConn) read() (proto.Message, error) {
	m, buf, err := proto.ReadMessage(f.r, f.in)
	f.in = buf
	switch {
	case errors.Is(err, proto.ErrMagic), errors.Is(err, proto.ErrVersion), errors.Is(err, proto.ErrType):
		return m, &engine.Error{Kind: engine.KindWrongReply, Err: err}
	case err != nil:
		return m, engine.Wrap(err)
	}
	return m, fsCheck(m, f.id)
}

// fsCheck classifies a message that does not answer request id.
func fsCheck(m proto.Message, id uint32) error {
	if m.Type == proto.TypeError && (m.ID == id || m.ID == 0) {
		e, err := proto.ParseError(m.Body)
		if err != nil {
			return &engine.Error{Kind: engine.KindWrongReply, Err: err}
		}
		return &engine.Error{Kind: engine.KindServerError, Err: e}
	}
	if m.ID != id {
		return engine.Errorf(engine.KindWrongReply, "%v for request %d, want %d", m.Type, m.ID, id)
	}
	return nil
}

func fsUnexpected(m proto.Message, want string) error {
	return engine.Errorf(engine.KindWrongReply, "got %v, want %s", m.Type, want)
}

// filestream-echo

type fsEcho struct{ o Options }

func newFilestreamEcho(o Options) (engine.Scenario, error) {
	if err := checkSize(o, proto.MaxBody); err != nil {
		return nil, err
	}
	return fsEcho{o}, nil
}

func (s fsEcho) NewWorker(ctx context.Context) (engine.Worker, error) {
	c, err := dialFilestream(ctx, s.o)
	if err != nil {
		return nil, err
	}
	return &fsEchoWorker{fsConn: c, size: s.o.Size}, nil
}

type fsEchoWorker struct {
	*fsConn
	size int
	text []byte
}

func (w *fsEchoWorker) Do(context.Context) error {
	if err := w.begin(); err != nil {
		return err
	}
	w.text = appendPayload(w.text[:0], uint64(w.id), w.size)
	w.out = proto.AppendEcho(w.out[:0], w.id, w.text)
	if err := w.send(w.out); err != nil {
		return err
	}
	m, err := w.read()
	if err != nil {
		return err
	}
	if m.Type != proto.TypeEchoReply {
		return fsUnexpected(m, "ECHO_REPLY")
	}
	if !bytes.Equal(m.Body, w.text) {
		return wrong("echo differs from the %d bytes sent", m.Body, len(w.text))
	}
	return nil
}

// filestream-file

type fsFile struct{ o Options }

func newFilestreamFile(o Options) (engine.Scenario, error) {
	if o.FileSize < 0 || o.FileSize > maxFilestreamFile {
		return nil, fmt.Errorf("file size must be from 0 to %d bytes", maxFilestreamFile)
	}
	return fsFile{o}, nil
}

func (s fsFile) NewWorker(ctx context.Context) (engine.Worker, error) {
	c, err := dialFilestream(ctx, s.o)
	if err != nil {
		return nil, err
	}
	return &fsFileWorker{fsConn: c, size: uint64(s.o.FileSize), crc: proto.ContentCRC(s.o.FileSize)}, nil
}

type fsFileWorker struct {
	*fsConn
	size    uint64
	crc     uint32 // of the content every file must have
	content []byte
}

// Do asks for a file and receives all of it, checking its announced size
// and checksum against what the content must be and what arrived.
func (w *fsFileWorker) Do(context.Context) error {
	if err := w.begin(); err != nil {
		return err
	}
	w.out = proto.AppendFileRequest(w.out[:0], w.id, proto.FileRequest{Size: w.size})
	if err := w.send(w.out); err != nil {
		return err
	}
	m, err := w.read()
	if err != nil {
		return err
	}
	if m.Type != proto.TypeFileHeader {
		return fsUnexpected(m, "FILE_HEADER")
	}
	h, err := proto.ParseFileHeader(m.Body)
	if err != nil {
		return &engine.Error{Kind: engine.KindWrongReply, Err: err}
	}
	if h.Size != w.size || h.CRC != w.crc {
		return engine.Errorf(engine.KindWrongReply, "FILE_HEADER announces %d bytes with CRC %08x, want %d with %08x", h.Size, h.CRC, w.size, w.crc)
	}
	if w.content == nil {
		w.content = make([]byte, 64<<10)
	}
	var got uint32
	for left := w.size; left > 0; {
		n, err := w.r.Read(w.content[:min(uint64(len(w.content)), left)])
		got = crc32.Update(got, proto.CRCTable, w.content[:n])
		left -= uint64(n)
		if err != nil && left > 0 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return engine.Wrap(fmt.Errorf("file cut short with %d bytes to go: %w", left, err))
		}
	}
	if got != w.crc {
		return engine.Errorf(engine.KindWrongReply, "file content has CRC %08x, want %08x", got, w.crc)
	}
	return nil
}

// filestream-stream, over UDP

type fsStream struct {
	o   Options
	req proto.StreamRequest
}

func newFilestreamStream(o Options) (engine.Scenario, error) {
	switch {
	case o.StreamCount < 1 || o.StreamCount > maxFilestreamCount:
		return nil, fmt.Errorf("stream count must be from 1 to %d", maxFilestreamCount)
	case o.StreamInterval < minFilestreamGap || o.StreamInterval > proto.MaxInterval:
		return nil, fmt.Errorf("stream interval must be from %v to %v", minFilestreamGap, proto.MaxInterval)
	case o.StreamSize < proto.StreamPacketMinLen || o.StreamSize > maxFilestreamPacket:
		return nil, fmt.Errorf("stream size must be from %d to %d bytes", proto.StreamPacketMinLen, maxFilestreamPacket)
	}
	return fsStream{o: o, req: proto.StreamRequest{
		Interval: o.StreamInterval, Count: uint32(o.StreamCount), Size: uint16(o.StreamSize),
	}}, nil
}

func (s fsStream) NewWorker(ctx context.Context) (engine.Worker, error) {
	// The deadline covers the stream's own length too.
	o := s.o
	o.Timeout += time.Duration(s.o.StreamCount) * s.o.StreamInterval
	c, err := dialUDP(ctx, o.Target, o.Timeout)
	if err != nil {
		return nil, err
	}
	return &fsStreamWorker{udpConn: c, req: s.req, seen: make([]bool, s.o.StreamCount)}, nil
}

type fsStreamWorker struct {
	*udpConn
	req    proto.StreamRequest
	id     uint32
	cookie []byte // from the server's last RETRY, presented until it asks again
	out    []byte
	seen   []bool
}

// Do asks for a stream, answers the server's RETRY with its cookie, and
// receives packets until END. Every packet must come, once, with the size
// asked for; a missing one (or a missing END) is a loss.
func (w *fsStreamWorker) Do(context.Context) error {
	w.id++
	clear(w.seen)
	req := w.req
	req.Cookie = w.cookie
	w.out = proto.AppendStreamRequest(w.out[:0], w.id, req)
	if err := w.arm(); err != nil {
		return err
	}
	if _, err := w.Write(w.out); err != nil {
		return udpErr(err)
	}
	retries, received := 0, 0
	for {
		b, err := w.receive()
		if err != nil {
			if received > 0 && engine.KindOf(err) == engine.KindLoss {
				return engine.Errorf(engine.KindLoss, "END missing after %d of %d packets", received, req.Count)
			}
			return err
		}
		m, err := proto.ParseDatagram(b)
		if err != nil {
			return wrong("%v", b, err)
		}
		if err := fsCheck(m, w.id); err != nil {
			return err
		}
		switch m.Type {
		case proto.TypeRetry:
			c, err := proto.ParseRetry(m.Body)
			if err != nil {
				return &engine.Error{Kind: engine.KindWrongReply, Err: err}
			}
			if retries++; retries > maxRetries {
				return engine.Errorf(engine.KindServerError, "server keeps refusing the address-validation cookie")
			}
			w.cookie = append(w.cookie[:0], c...)
			req.Cookie = w.cookie
			w.out = proto.AppendStreamRequest(w.out[:0], w.id, req)
			if _, err := w.Write(w.out); err != nil {
				return udpErr(err)
			}
		case proto.TypeStreamPacket:
			p, err := proto.ParseStreamPacket(m.Body)
			switch {
			case err != nil:
				return &engine.Error{Kind: engine.KindWrongReply, Err: err}
			case p.Total != req.Count || len(b) != int(req.Size):
				return wrong("packet %d of %d, %d bytes; want %d packets of %d", b, p.Seq, p.Total, len(b), req.Count, req.Size)
			case w.seen[p.Seq]:
				return wrong("packet %d twice", b, p.Seq)
			}
			w.seen[p.Seq] = true
			received++
		case proto.TypeEnd:
			e, err := proto.ParseEnd(m.Body)
			if err != nil {
				return &engine.Error{Kind: engine.KindWrongReply, Err: err}
			}
			if e.Packets != req.Count {
				return engine.Errorf(engine.KindWrongReply, "END says %d packets, want %d", e.Packets, req.Count)
			}
			if received < int(req.Count) {
				return engine.Errorf(engine.KindLoss, "%d of %d packets lost", int(req.Count)-received, req.Count)
			}
			return nil
		default:
			return fsUnexpected(m, "STREAM_PACKET or END")
		}
	}
}
