package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
)

// tcpSession is a Session over one TCP connection.
type tcpSession struct {
	c       net.Conn
	w       *watcher // of the request in progress
	r       *bufio.Reader
	timeout time.Duration
	id      uint32
	in, out []byte
	content []byte // read buffer for file content
}

// NewTCP returns a Session over an established stream connection (a TCP
// connection, or net.Pipe in tests).
func NewTCP(c net.Conn, opt Options) Session {
	s := &tcpSession{c: c, timeout: opt.timeout()}
	s.r = bufio.NewReaderSize(deadlineReader{s}, 64<<10)
	return s
}

// deadlineReader gives every read of the connection its own deadline: the
// timeout bounds silence, not the length of a transfer.
type deadlineReader struct{ s *tcpSession }

func (d deadlineReader) Read(p []byte) (int, error) {
	d.s.w.deadline(time.Now().Add(d.s.timeout))
	return d.s.c.Read(p)
}

// begin starts a request: reads fail once ctx ends. Call the result when
// the request is over.
func (s *tcpSession) begin(ctx context.Context) func() {
	s.w = watch(ctx, s.c)
	s.id++
	return s.w.close
}

func (s *tcpSession) Protocol() string { return "tcp" }
func (s *tcpSession) Close() error     { return s.c.Close() }

func (s *tcpSession) send(b []byte) error {
	s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	_, err := s.c.Write(b)
	return err
}

// read returns the next message, an ERROR as *proto.ErrorReply.
func (s *tcpSession) read(ctx context.Context) (proto.Message, error) {
	m, buf, err := proto.ReadMessage(s.r, s.in)
	s.in = buf
	if err != nil {
		return m, readErr(ctx, err)
	}
	if m.Type == proto.TypeError && (m.ID == s.id || m.ID == 0) {
		// ID 0: about the connection (server busy), not a request.
		e, err := proto.ParseError(m.Body)
		if err != nil {
			return m, err
		}
		return m, e
	}
	if m.ID != s.id {
		return m, errors.New("reply for another request: the connection is out of step")
	}
	return m, nil
}

func (s *tcpSession) Echo(ctx context.Context, text []byte) ([]byte, error) {
	if len(text) > proto.MaxBody {
		return nil, fmt.Errorf("text of %d bytes: at most %d fit a message", len(text), proto.MaxBody)
	}
	defer s.begin(ctx)()
	s.out = proto.AppendEcho(s.out[:0], s.id, text)
	if err := s.send(s.out); err != nil {
		return nil, err
	}
	m, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	if m.Type != proto.TypeEchoReply {
		return nil, unexpected(m, "ECHO_REPLY")
	}
	return m.Body, nil
}

func (s *tcpSession) File(ctx context.Context, size uint64, sink io.Writer) (FileResult, error) {
	defer s.begin(ctx)()
	start := time.Now()
	s.out = proto.AppendFileRequest(s.out[:0], s.id, proto.FileRequest{Size: size})
	if err := s.send(s.out); err != nil {
		return FileResult{}, err
	}
	m, err := s.read(ctx)
	if err != nil {
		return FileResult{}, err
	}
	if m.Type != proto.TypeFileHeader {
		return FileResult{}, unexpected(m, "FILE_HEADER")
	}
	h, err := proto.ParseFileHeader(m.Body)
	if err != nil {
		return FileResult{}, err
	}
	if h.Size != size {
		return FileResult{}, errors.New("server announced another size than asked for")
	}
	res := FileResult{Size: h.Size, CRC: h.CRC}
	out := crcWriter{sink: sink}
	if s.content == nil {
		s.content = make([]byte, 256<<10)
	}
	for out.n < h.Size {
		// Reads as large as the buffer bypass bufio's copy.
		n, err := s.r.Read(s.content[:min(uint64(len(s.content)), h.Size-out.n)])
		if n > 0 {
			if _, werr := out.Write(s.content[:n]); werr != nil {
				return res, werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			res.Received, res.GotCRC, res.Elapsed = out.n, out.crc, time.Since(start)
			return res, readErr(ctx, err)
		}
	}
	res.Received, res.GotCRC, res.Elapsed = out.n, out.crc, time.Since(start)
	return res, nil
}

func (s *tcpSession) Stream(ctx context.Context, p StreamParams) (StreamResult, error) {
	if err := p.check(); err != nil {
		return StreamResult{}, err
	}
	defer s.begin(ctx)()
	start := time.Now()
	s.out = proto.AppendStreamRequest(s.out[:0], s.id, proto.StreamRequest{Interval: p.Interval, Count: p.Count, Size: p.Size})
	if err := s.send(s.out); err != nil {
		return StreamResult{}, err
	}
	// The server may be silent for a whole interval between packets.
	saved := s.timeout
	s.timeout += p.Interval
	defer func() { s.timeout = saved }()
	rx := newStreamReceiver(p.Count)
	for !rx.end {
		m, err := s.read(ctx)
		if err != nil {
			return rx.result(start, p.Interval), err
		}
		switch m.Type {
		case proto.TypeStreamPacket:
			sp, err := proto.ParseStreamPacket(m.Body)
			if err != nil {
				return rx.result(start, p.Interval), err
			}
			rx.packet(sp, time.Now())
		case proto.TypeEnd:
			rx.end = true
		default:
			return rx.result(start, p.Interval), unexpected(m, "STREAM_PACKET or END")
		}
	}
	return rx.result(start, p.Interval), nil
}

func (s *tcpSession) Quit(ctx context.Context) error {
	defer s.begin(ctx)()
	if err := s.send(proto.AppendQuit(s.out[:0], s.id, nil)); err != nil {
		return err
	}
	m, err := s.read(ctx)
	if err != nil {
		return err
	}
	if m.Type != proto.TypeBye {
		return unexpected(m, "BYE")
	}
	return nil
}
