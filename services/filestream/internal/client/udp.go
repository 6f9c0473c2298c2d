package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
)

// udpSession is a Session over a connected UDP socket. It keeps the
// address-validation cookie of the last RETRY and presents it with every
// file and stream request until the server asks again.
type udpSession struct {
	c       *net.UDPConn
	timeout time.Duration
	id      uint32
	cookie  []byte
	in, out []byte
	// Stale counts datagrams of earlier requests, Garbled those that did
	// not decode; both are ignored.
	Stale, Garbled uint64
}

// maxRetries bounds the RETRYs answered for one request.
const maxRetries = 2

// NewUDP returns a Session over a UDP socket connected to the server.
func NewUDP(c *net.UDPConn, opt Options) Session {
	// A large receive buffer absorbs bursts of a file or a fast stream.
	c.SetReadBuffer(4 << 20)
	return &udpSession{c: c, timeout: opt.timeout(), in: make([]byte, proto.MaxDatagram+1)}
}

func (s *udpSession) Protocol() string { return "udp" }
func (s *udpSession) Close() error     { return s.c.Close() }

// exchange sends the request that build makes (with the current cookie)
// and hands every reply to it to handle until handle says done. A RETRY
// stores its cookie and resends; an ERROR is returned as *proto.ErrorReply.
// wait bounds the silence between datagrams.
func (s *udpSession) exchange(ctx context.Context, wait time.Duration, build func(cookie []byte) []byte,
	handle func(m proto.Message, at time.Time) (done bool, err error)) error {
	w := watch(ctx, s.c)
	defer w.close()
	s.id++
	retries := 0
	if _, err := s.c.Write(build(s.cookie)); err != nil {
		return err
	}
	// The deadline is moved at most every wait/8: arming a timer for each
	// of 100000 packets a second would cost more than reading them.
	var armed time.Time
	for {
		if now := time.Now(); now.Sub(armed) > wait/8 {
			w.deadline(now.Add(wait))
			armed = now
		}
		n, err := s.c.Read(s.in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return readErr(ctx, err)
			}
			// ECONNREFUSED: an ICMP error from an earlier datagram; the
			// server may not be up. Say so rather than wait.
			return err
		}
		at := time.Now()
		m, err := proto.ParseDatagram(s.in[:n])
		if err != nil {
			s.Garbled++
			continue
		}
		if m.ID != s.id {
			s.Stale++
			continue
		}
		switch m.Type {
		case proto.TypeRetry:
			c, err := proto.ParseRetry(m.Body)
			if err != nil {
				return err
			}
			if retries++; retries > maxRetries {
				return errors.New("server keeps refusing the address-validation cookie")
			}
			s.cookie = append(s.cookie[:0], c...)
			if _, err := s.c.Write(build(s.cookie)); err != nil {
				return err
			}
			continue
		case proto.TypeError:
			e, err := proto.ParseError(m.Body)
			if err != nil {
				return err
			}
			return e
		}
		done, err := handle(m, at)
		if err != nil || done {
			return err
		}
	}
}

func (s *udpSession) Echo(ctx context.Context, text []byte) ([]byte, error) {
	if len(text) > proto.MaxUDPEcho {
		return nil, fmt.Errorf("text of %d bytes: at most %d fit a datagram", len(text), proto.MaxUDPEcho)
	}
	var reply []byte
	err := s.exchange(ctx, s.timeout, func([]byte) []byte {
		s.out = proto.AppendEcho(s.out[:0], s.id, text)
		return s.out
	}, func(m proto.Message, _ time.Time) (bool, error) {
		if m.Type != proto.TypeEchoReply {
			return false, unexpected(m, "ECHO_REPLY")
		}
		reply = append([]byte(nil), m.Body...)
		return true, nil
	})
	return reply, err
}

func (s *udpSession) File(ctx context.Context, size uint64, sink io.Writer) (FileResult, error) {
	start := time.Now()
	rx := newFileReceiver(size, sink)
	err := s.exchange(ctx, s.timeout, func(cookie []byte) []byte {
		s.out = proto.AppendFileRequest(s.out[:0], s.id, proto.FileRequest{Size: size, Cookie: cookie})
		return s.out
	}, func(m proto.Message, _ time.Time) (bool, error) {
		switch m.Type {
		case proto.TypeFileHeader:
			h, err := proto.ParseFileHeader(m.Body)
			if err != nil {
				return false, err
			}
			if err := rx.header(h); err != nil {
				return false, err
			}
		case proto.TypeData:
			d, err := proto.ParseData(m.Body)
			if err != nil {
				return false, err
			}
			rx.data(d)
		case proto.TypeEnd:
			e, err := proto.ParseEnd(m.Body)
			if err != nil {
				return false, err
			}
			rx.end = &e
		default:
			return false, unexpected(m, "FILE_HEADER, DATA or END")
		}
		return rx.done(), rx.err
	})
	res := rx.result()
	res.Elapsed = time.Since(start)
	if errors.Is(err, ErrTimeout) && rx.hdr != nil {
		// The fallback end: the server went quiet and END never came.
		res.TimedOut = true
		res.Elapsed -= s.timeout
		return res, nil
	}
	return res, err
}

func (s *udpSession) Stream(ctx context.Context, p StreamParams) (StreamResult, error) {
	if err := p.check(); err != nil {
		return StreamResult{}, err
	}
	start := time.Now()
	rx := newStreamReceiver(p.Count)
	err := s.exchange(ctx, s.timeout+p.Interval, func(cookie []byte) []byte {
		req := proto.StreamRequest{Interval: p.Interval, Count: p.Count, Size: p.Size, Cookie: cookie}
		s.out = proto.AppendStreamRequest(s.out[:0], s.id, req)
		return s.out
	}, func(m proto.Message, at time.Time) (bool, error) {
		switch m.Type {
		case proto.TypeStreamPacket:
			sp, err := proto.ParseStreamPacket(m.Body)
			if err != nil {
				return false, err
			}
			rx.packet(sp, at)
		case proto.TypeEnd:
			rx.end = true
		default:
			return false, unexpected(m, "STREAM_PACKET or END")
		}
		return rx.done(), nil
	})
	res := rx.result(start, p.Interval)
	if errors.Is(err, ErrTimeout) && res.Packets.Received > 0 {
		res.TimedOut = true
		return res, nil
	}
	return res, err
}

func (s *udpSession) Quit(ctx context.Context) error {
	return s.exchange(ctx, s.timeout, func(cookie []byte) []byte {
		s.out = proto.AppendQuit(s.out[:0], s.id, cookie)
		return s.out
	}, func(m proto.Message, _ time.Time) (bool, error) {
		if m.Type != proto.TypeBye {
			return false, unexpected(m, "BYE")
		}
		return true, nil
	})
}
