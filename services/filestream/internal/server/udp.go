package server

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/filestream/internal/pace"
	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/netserve"
)

// amplification is how many times the bytes of a request an unvalidated
// address may receive in answer to it.
const amplification = 3

// datagramWriter is the server socket as transfers use it.
type datagramWriter interface {
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// ServePacket answers one datagram. Files and streams run in goroutines of
// the packet server (p.Go), so the read loop never waits for them.
func (h *Handler) ServePacket(p *netserve.Packet) {
	p.Out = h.serveDatagram(p.Conn(), p, p.From, p.Data, p.Out)
}

// serveDatagram answers data from from and returns out (grown) for reuse;
// files and streams run in goroutines of o.
// Until a request carries a valid cookie, what it gets back is at most
// amplification times its own length: enough for an echo, an error or a
// RETRY, never a file or a stream.
func (h *Handler) serveDatagram(w datagramWriter, o owner, from netip.AddrPort, data, out []byte) []byte {
	h.init()
	r := udpReply{h: h, w: w, to: from, budget: amplification * len(data), out: out[:0]}
	m, err := proto.ParseDatagram(data)
	if err != nil {
		code := proto.CodeMalformed
		switch {
		case errors.Is(err, proto.ErrVersion):
			code = proto.CodeVersion
		case errors.Is(err, proto.ErrType):
			code = proto.CodeType
		}
		r.error(m.ID, code, err.Error())
		return r.out
	}
	switch m.Type {
	case proto.TypeEcho:
		h.udp.echo.Inc()
		r.send(proto.AppendEchoReply(r.out, m.ID, m.Body))
	case proto.TypeFile:
		h.udp.file.Inc()
		req, err := proto.ParseFileRequest(m.Body)
		if err != nil {
			r.error(m.ID, proto.CodeMalformed, err.Error())
			break
		}
		if code, text := h.checkFile(req.Size); code != 0 {
			r.error(m.ID, code, text)
			break
		}
		if !r.validate(m.ID, req.Cookie) {
			break
		}
		code, text := h.startTransfer(o, from, func(ctx context.Context) {
			h.sendUDPFile(ctx, w, from, m.ID, int64(req.Size))
		})
		if code != 0 {
			r.error(m.ID, code, text)
		}
	case proto.TypeStream:
		h.udp.stream.Inc()
		req, err := proto.ParseStreamRequest(m.Body)
		if err != nil {
			r.error(m.ID, proto.CodeMalformed, err.Error())
			break
		}
		code, text, pad := h.checkStream(req)
		if code != 0 {
			r.error(m.ID, code, text)
			break
		}
		if !r.validate(m.ID, req.Cookie) {
			break
		}
		code, text = h.startTransfer(o, from, func(ctx context.Context) {
			h.sendUDPStream(ctx, w, from, m.ID, req, pad)
		})
		if code != 0 {
			r.error(m.ID, code, text)
		}
	case proto.TypeQuit:
		h.udp.quit.Inc()
		c, err := proto.ParseQuit(m.Body)
		if err != nil {
			r.error(m.ID, proto.CodeMalformed, err.Error())
			break
		}
		// Only a validated QUIT stops transfers: a spoofed one must not
		// cut someone else's stream.
		if c != nil && h.cookies.Valid(from, c) {
			h.cancelTransfers(from)
		}
		r.send(proto.AppendBye(r.out, m.ID))
	default:
		r.error(m.ID, proto.CodeType, m.Type.String()+" is not a request")
	}
	return r.out
}

// udpReply answers one datagram within its budget.
type udpReply struct {
	h         *Handler
	w         datagramWriter
	to        netip.AddrPort
	budget    int
	validated bool
	out       []byte
}

func (r *udpReply) send(b []byte) {
	r.out = b
	if !r.validated && len(b) > r.budget {
		r.h.m.Withheld.Inc()
		return
	}
	r.w.WriteToUDPAddrPort(b, r.to)
}

// error sends an ERROR, its text cut to fit the budget of an unvalidated
// request (nothing at all when not even the code fits).
func (r *udpReply) error(id uint32, code proto.Code, text string) {
	r.h.udp.error(code)
	if !r.validated {
		room := r.budget - proto.HeaderLen - 2
		if room < 0 {
			r.h.m.Withheld.Inc()
			return
		}
		text = text[:min(len(text), room)]
	}
	r.send(proto.AppendError(r.out[:0], id, code, text))
}

// validate reports whether cookie proves the sender receives at its
// address; if not it answers with a RETRY carrying a fresh cookie.
func (r *udpReply) validate(id uint32, cookie []byte) bool {
	if cookie != nil && r.h.cookies.Valid(r.to, cookie) {
		r.validated = true
		return true
	}
	r.h.m.Retries.Inc()
	var c [proto.CookieLen]byte
	r.send(proto.AppendRetry(r.out[:0], id, r.h.cookies.Mint(c[:0], r.to)))
	return false
}

// sendUDPFile sends FILE_HEADER, the DATA messages paced at UDPRate, and
// END. Each DATA is built from the shared block into one datagram-sized
// buffer: memory does not grow with the file.
func (h *Handler) sendUDPFile(ctx context.Context, w datagramWriter, to netip.AddrPort, id uint32, size int64) {
	chunk := h.Config.chunk()
	hdr := proto.FileHeader{Size: uint64(size), CRC: proto.ContentCRC(size), Chunk: uint16(chunk)}
	buf := make([]byte, 0, h.Config.PacketSize)
	write := func(b []byte) error {
		_, err := w.WriteToUDPAddrPort(b, to)
		return err
	}
	if err := write(proto.AppendFileHeader(buf, id, hdr)); err != nil {
		h.udpAborted(ctx, write, buf, id, to, err)
		return
	}
	packets := int(hdr.Packets())
	var interval time.Duration
	if h.Config.UDPRate > 0 {
		interval = time.Duration(int64(chunk) * int64(time.Second) / h.Config.UDPRate)
	}
	s := pace.Schedule{Start: time.Now(), Interval: interval, Count: packets}
	err := pace.Run(ctx, s, func(i int) error {
		off := int64(i) * int64(chunk)
		n := int(min(int64(chunk), size-off))
		d := proto.Data{Seq: uint32(i), Last: i == packets-1, Payload: contentAt(off, n)}
		if err := write(proto.AppendData(buf[:0], id, d)); err != nil {
			return err
		}
		h.udp.fileBytes.Add(float64(n))
		return nil
	})
	if err != nil {
		h.udpAborted(ctx, write, buf, id, to, err)
		return
	}
	write(proto.AppendEnd(buf[:0], id, proto.End{Packets: uint32(packets), Bytes: uint64(size)}))
}

// sendUDPStream sends the packets of a stream and END.
func (h *Handler) sendUDPStream(ctx context.Context, w datagramWriter, to netip.AddrPort, id uint32, req proto.StreamRequest, pad int) {
	buf := make([]byte, 0, proto.StreamPacketMinLen+pad)
	write := func(b []byte) error {
		_, err := w.WriteToUDPAddrPort(b, to)
		return err
	}
	sent, err := h.stream(ctx, write, buf, id, req, pad, h.udp)
	if err != nil {
		h.udpAborted(ctx, write, buf, id, to, err)
		return
	}
	write(proto.AppendEnd(buf[:0], id, proto.End{Packets: uint32(sent)}))
}

// udpAborted tells a client cut off by shutdown (the packet server gave up
// waiting) why; one that quit needs no answer.
func (h *Handler) udpAborted(ctx context.Context, write func([]byte) error, buf []byte, id uint32, to netip.AddrPort, err error) {
	h.udp.aborted.Inc()
	if errors.Is(context.Cause(ctx), netserve.ErrServerClosed) {
		h.udp.error(proto.CodeShutdown)
		write(proto.AppendError(buf[:0], id, proto.CodeShutdown, "server shutting down"))
	}
	h.log.Debug("transfer aborted", zap.Stringer("remote", to), zap.Error(err))
}
