package server

import (
	"context"
	"errors"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/filestream/internal/pace"
	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/netserve"
)

// ServeConn serves the requests of one TCP connection in order until QUIT,
// the client leaves, or a framing error (answered, then the connection is
// closed). A file or stream is sent in this goroutine; a client that stops
// reading is dropped after WriteTimeout, one that disconnects at the next
// write.
func (h *Handler) ServeConn(ctx context.Context, c *netserve.Conn) {
	h.init()
	if h.connDone != nil {
		defer h.connDone()
	}
	var in []byte
	held := 0 // bytes of in charged to the body budget
	defer func() { h.bodies.release(held) }()
	grow := func(from, to int) error {
		if !h.bodies.reserve(to - from) {
			return errBodyBudget
		}
		held += to - from
		return nil
	}
	out := make([]byte, 0, 512)
	for {
		if held > 0 {
			// A large body's buffer goes back once it is served: an idle
			// connection holds only the small one it started with.
			h.bodies.release(held)
			held, in = 0, nil
		}
		// The whole message, header and body, must arrive within the idle
		// timeout from here, however its bytes are spread.
		c.StartMessage()
		m, buf, err := proto.ReadMessageGrow(c, in, grow)
		in = buf
		switch {
		case errors.Is(err, proto.ErrType):
			// The body was consumed: the stream is still in step.
			out = h.tcpError(out, c, m.ID, proto.CodeType, err.Error())
			if c.FlushIfDrained() != nil {
				return
			}
			continue
		case errors.Is(err, proto.ErrMagic), errors.Is(err, proto.ErrVersion):
			code := proto.CodeMalformed
			if errors.Is(err, proto.ErrVersion) {
				code = proto.CodeVersion
			}
			h.tcpError(out, c, m.ID, code, err.Error()+"; closing")
			return
		case errors.Is(err, errBodyBudget):
			h.tcpError(out, c, m.ID, proto.CodeBusy, "server busy: message buffers full; closing")
			c.CloseAbruptly()
			return
		case err != nil:
			h.connEnded(c, err)
			return
		}
		if !h.serveTCP(ctx, c, m, &out) {
			return
		}

		if err := c.FlushIfDrained(); err != nil {
			return
		}
	}
}

// serveTCP answers one request; false ends the connection.
func (h *Handler) serveTCP(ctx context.Context, c *netserve.Conn, m proto.Message, out *[]byte) bool {
	switch m.Type {
	case proto.TypeEcho:
		h.tcp.echo.Inc()
		// The header and the body go out separately: copying the body into
		// out would grow out to the largest echo the connection ever saw.
		*out = proto.AppendHeader((*out)[:0], proto.Header{Type: proto.TypeEchoReply, Len: uint16(len(m.Body)), ID: m.ID})
		if _, err := c.Write(*out); err != nil {
			return false
		}
		_, err := c.Write(m.Body)
		return err == nil
	case proto.TypeFile:
		h.tcp.file.Inc()
		req, err := proto.ParseFileRequest(m.Body)
		if err != nil {
			*out = h.tcpError(*out, c, m.ID, proto.CodeMalformed, err.Error())
			return true
		}
		if code, text := h.checkFile(req.Size); code != 0 {
			*out = h.tcpError(*out, c, m.ID, code, text)
			return true
		}
		tctx, end, ok := h.beginTCP(ctx, c)
		if !ok {
			*out = h.tcpError(*out, c, m.ID, proto.CodeShutdown, "server shutting down")
			return true
		}
		defer end()
		return h.sendTCPFile(tctx, c, m.ID, int64(req.Size)) == nil
	case proto.TypeStream:
		h.tcp.stream.Inc()
		req, err := proto.ParseStreamRequest(m.Body)
		if err != nil {
			*out = h.tcpError(*out, c, m.ID, proto.CodeMalformed, err.Error())
			return true
		}
		code, text, pad := h.checkStream(req)
		if code != 0 {
			*out = h.tcpError(*out, c, m.ID, code, text)
			return true
		}
		tctx, end, ok := h.beginTCP(ctx, c)
		if !ok {
			*out = h.tcpError(*out, c, m.ID, proto.CodeShutdown, "server shutting down")
			return true
		}
		defer end()
		return h.sendTCPStream(tctx, c, m.ID, req, pad) == nil
	case proto.TypeQuit:
		h.tcp.quit.Inc()
		c.Write(proto.AppendBye((*out)[:0], m.ID))
		return false
	}
	*out = h.tcpError(*out, c, m.ID, proto.CodeType, m.Type.String()+" is not a request")
	return true
}

func (h *Handler) tcpError(out []byte, c *netserve.Conn, id uint32, code proto.Code, text string) []byte {
	h.tcp.error(code)
	out = proto.AppendError(out[:0], id, code, text)
	c.Write(out)
	return out
}

func (h *Handler) connEnded(c *netserve.Conn, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, netserve.ErrServerClosed), errors.Is(err, netserve.ErrIdleTimeout):
	default:
		h.log.Debug("connection ended", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
	}
}

// sendTCPFile writes the FILE_HEADER, with the checksum known before the
// first byte, and then size bytes of content straight from the shared
// block: nothing is generated or held per transfer.
func (h *Handler) sendTCPFile(ctx context.Context, c *netserve.Conn, id uint32, size int64) error {
	h.tcp.active.Inc()
	defer h.tcp.active.Dec()
	hdr := proto.FileHeader{Size: uint64(size), CRC: proto.ContentCRC(size)}
	var hb [proto.HeaderLen + 14]byte
	if _, err := c.Write(proto.AppendFileHeader(hb[:0], id, hdr)); err != nil {
		return h.tcpAborted(c, err)
	}
	for off := int64(0); off < size; {
		// block starts at offset 0 and is a whole number of patterns, so
		// every chunk but the last is the whole block.
		n := int(min(int64(blockLen), size-off))
		if _, err := c.Write(block[:n]); err != nil {
			return h.tcpAborted(c, err)
		}
		off += int64(n)
		h.tcp.fileBytes.Add(float64(n))
		if err := ctx.Err(); err != nil {
			return h.tcpAborted(c, err)
		}
	}
	return c.Flush()
}

func (h *Handler) tcpAborted(c *netserve.Conn, err error) error {
	h.tcp.aborted.Inc()
	h.log.Debug("transfer aborted", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
	// The connection cannot carry another message after a cut file.
	c.CloseAbruptly()
	return err
}

// sendTCPStream sends the packets of a stream, each flushed at its due time,
// then END. A shutdown that gives up waiting ends it with ERROR.
func (h *Handler) sendTCPStream(ctx context.Context, c *netserve.Conn, id uint32, req proto.StreamRequest, pad int) error {
	h.tcp.active.Inc()
	defer h.tcp.active.Dec()
	buf := make([]byte, 0, proto.StreamPacketMinLen+pad)
	write := func(b []byte) error {
		if _, err := c.Write(b); err != nil {
			return err
		}
		return c.Flush()
	}
	sent, err := h.stream(ctx, write, buf, id, req, pad, h.tcp)
	if err != nil {
		if errors.Is(context.Cause(ctx), errShutdown) {
			// The README's promise: a stream cut by shutdown ends with
			// ERROR, not a bare close.
			h.tcp.error(proto.CodeShutdown)
			write(proto.AppendError(buf[:0], id, proto.CodeShutdown, "server shutting down"))
		}
		return h.tcpAborted(c, err)
	}
	return write(proto.AppendEnd(buf[:0], id, proto.End{Packets: uint32(sent)}))
}

// stream sends the packets of req through write on a drift-free schedule
// and reports how many it sent.
func (h *Handler) stream(ctx context.Context, write func([]byte) error, buf []byte, id uint32, req proto.StreamRequest, pad int, pm *protoMetrics) (int, error) {
	s := pace.Schedule{Start: time.Now(), Interval: req.Interval, Count: int(req.Count)}
	sent := 0
	err := pace.Run(ctx, s, func(i int) error {
		p := proto.StreamPacket{Seq: uint32(i), Total: req.Count, SentAt: time.Now(), Pad: pad}
		if err := write(proto.AppendStreamPacket(buf[:0], id, p)); err != nil {
			return err
		}
		sent++
		pm.packets.Inc()
		return nil
	})
	return sent, err
}
