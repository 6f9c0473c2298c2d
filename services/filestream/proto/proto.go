// Package proto encodes and decodes filestream messages, the same on TCP
// (one after another on the connection) and UDP (one per datagram). Every
// message is a 10-byte header and a body of the length the header states:
//
//	0      2       3      4          6            10
//	+------+-------+------+----------+------------+----------------+
//	| "FS" | ver=1 | type | body len | request id | body ...       |
//	+------+-------+------+----------+------------+----------------+
//
// Integers are big-endian. The one exception to "the header says how long"
// is a file over TCP: a FILE_HEADER message is followed on the connection
// by exactly Size raw bytes of content. The spec, with every body layout, is
// services/filestream/README.md. The load generator uses this package to
// check a server's answers.
package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Wire constants.
const (
	// Version is the protocol version this package speaks.
	Version = 1
	// HeaderLen is the length of every message header.
	HeaderLen = 10
	// MaxBody is the longest body a header can state.
	MaxBody = 0xFFFF
	// MaxDatagram is the largest UDP payload over IPv4.
	MaxDatagram = 65507
	// MaxUDPEcho is the longest echo text that fits one datagram.
	MaxUDPEcho = MaxDatagram - HeaderLen
	// CookieLen is the length of an address-validation cookie.
	CookieLen = 20
	// DataOverhead is a DATA message's length without its content.
	DataOverhead = HeaderLen + 5
	// StreamPacketMinLen is the shortest STREAM_PACKET message (no padding).
	StreamPacketMinLen = HeaderLen + 16
	// MaxInterval is the longest stream interval a request can ask for.
	MaxInterval = 10 * time.Second
	// MaxErrorText bounds the text of an ERROR message.
	MaxErrorText = 200
)

// Magic opens every message.
var Magic = [2]byte{'F', 'S'}

// Type says what a message is. Requests (client to server) have the high
// bit clear, replies have it set.
type Type uint8

// Message types.
const (
	TypeEcho         Type = 0x01 // body: text to echo
	TypeFile         Type = 0x02 // body: size u64 [cookie]
	TypeStream       Type = 0x03 // body: interval_us u32, count u32, size u16 [cookie]
	TypeQuit         Type = 0x04 // body: [cookie]
	TypeEchoReply    Type = 0x81 // body: the text
	TypeFileHeader   Type = 0x82 // body: size u64, crc32c u32, chunk u16
	TypeData         Type = 0x83 // body: seq u32, flags u8, content
	TypeStreamPacket Type = 0x84 // body: seq u32, total u32, sent_ns i64, padding
	TypeEnd          Type = 0x85 // body: packets u32, bytes u64
	TypeRetry        Type = 0x86 // body: cookie
	TypeError        Type = 0x87 // body: code u16, text
	TypeBye          Type = 0x88 // body: empty
)

var typeNames = map[Type]string{
	TypeEcho: "ECHO", TypeFile: "FILE", TypeStream: "STREAM", TypeQuit: "QUIT",
	TypeEchoReply: "ECHO_REPLY", TypeFileHeader: "FILE_HEADER", TypeData: "DATA",
	TypeStreamPacket: "STREAM_PACKET", TypeEnd: "END", TypeRetry: "RETRY",
	TypeError: "ERROR", TypeBye: "BYE",
}

// String returns the type's name in the spec.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type 0x%02x", uint8(t))
}

// Known reports whether t is a type of this version.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

// IsRequest reports whether t is sent by clients.
func (t Type) IsRequest() bool { return t < 0x80 }

// Decoding errors. Every error from a Parse or Read function wraps one.
var (
	ErrShort   = errors.New("message too short")
	ErrMagic   = errors.New("bad magic: not a filestream message")
	ErrVersion = errors.New("unsupported version")
	ErrType    = errors.New("unknown message type")
	ErrLength  = errors.New("length does not match")
	ErrBody    = errors.New("malformed body")
)

// Header is a decoded message header.
type Header struct {
	Type Type
	// Len is the body length.
	Len uint16
	// ID is chosen by the client for each request and repeated in every
	// message answering it.
	ID uint32
}

// AppendHeader appends h to dst.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, Magic[0], Magic[1], Version, byte(h.Type))
	dst = binary.BigEndian.AppendUint16(dst, h.Len)
	return binary.BigEndian.AppendUint32(dst, h.ID)
}

// ParseHeader decodes the header at the start of b. Unknown types are an
// error wrapping ErrType, returned with the header (its length lets a TCP
// reader skip the body).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: %d of %d header bytes", ErrShort, len(b), HeaderLen)
	}
	if b[0] != Magic[0] || b[1] != Magic[1] {
		return Header{}, ErrMagic
	}
	h := Header{
		Type: Type(b[3]),
		Len:  binary.BigEndian.Uint16(b[4:6]),
		ID:   binary.BigEndian.Uint32(b[6:10]),
	}
	if b[2] != Version {
		return h, fmt.Errorf("%w %d (this server speaks %d)", ErrVersion, b[2], Version)
	}
	if !h.Type.Known() {
		return h, fmt.Errorf("%w 0x%02x", ErrType, uint8(h.Type))
	}
	return h, nil
}

// Message is a header and its body.
type Message struct {
	Header
	Body []byte
}

// ParseDatagram decodes one UDP datagram: a header whose length is exactly
// the rest. Body aliases b.
func ParseDatagram(b []byte) (Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Message{Header: h}, err
	}
	if int(h.Len) != len(b)-HeaderLen {
		return Message{Header: h}, fmt.Errorf("%w: header says %d body bytes, datagram has %d", ErrLength, h.Len, len(b)-HeaderLen)
	}
	return Message{Header: h, Body: b[HeaderLen:]}, nil
}

// ReadMessage reads one message from r into buf (grown when too small) and
// returns it; Body aliases the returned buffer. A header with an unknown
// type is returned with its error after its body has been consumed, so the
// caller may answer and carry on. io.EOF means r ended between messages;
// io.ErrUnexpectedEOF that it ended inside one.
//
// The buffer grows with the bytes that arrived, never ahead of them from
// the length the header declares: a header announcing 65535 bytes and
// followed by nothing costs no more than a small message.
func ReadMessage(r io.Reader, buf []byte) (Message, []byte, error) {
	return ReadMessageGrow(r, buf, nil)
}

// minReadBuf is where a message buffer starts, and the first step of its
// growth.
const minReadBuf = 512

// ReadMessageGrow is ReadMessage with grow, when not nil, asked before the
// buffer grows from capacity from to capacity to; an error from grow ends the
// read with that error. A server uses it to keep the bodies of all its
// connections within one budget.
func ReadMessageGrow(r io.Reader, buf []byte, grow func(from, to int) error) (Message, []byte, error) {
	if cap(buf) < HeaderLen {
		buf = make([]byte, 0, minReadBuf)
	}
	buf = buf[:HeaderLen]
	// The magic is checked on its own so that a stray line of text (a
	// person trying nc) is refused at once instead of waiting for a header.
	if _, err := io.ReadFull(r, buf[:len(Magic)]); err != nil {
		return Message{}, buf, err
	}
	if buf[0] != Magic[0] || buf[1] != Magic[1] {
		return Message{}, buf, ErrMagic
	}
	if _, err := io.ReadFull(r, buf[len(Magic):]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, buf, err
	}
	h, herr := ParseHeader(buf)
	if herr != nil && !errors.Is(herr, ErrType) {
		return Message{Header: h}, buf, herr
	}
	n := HeaderLen + int(h.Len)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			// Double, so a large body costs few copies, but only once the
			// bytes so far have filled what was there.
			next := min(n, max(2*cap(buf), minReadBuf))
			if grow != nil {
				if err := grow(cap(buf), next); err != nil {
					return Message{Header: h}, buf, err
				}
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
		}
		k, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+k]
		if err != nil && len(buf) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Message{Header: h}, buf, err
		}
	}
	return Message{Header: h, Body: buf[HeaderLen:]}, buf, herr
}

func appendMsg(dst []byte, t Type, id uint32, bodyLen int) []byte {
	return AppendHeader(dst, Header{Type: t, Len: uint16(bodyLen), ID: id})
}

func errBody(t Type, format string, args ...any) error {
	return fmt.Errorf("%w: %v: %s", ErrBody, t, fmt.Sprintf(format, args...))
}

// AppendEcho appends an ECHO request for text (at most MaxBody bytes).
func AppendEcho(dst []byte, id uint32, text []byte) []byte {
	return append(appendMsg(dst, TypeEcho, id, len(text)), text...)
}

// AppendEchoReply appends the ECHO_REPLY carrying text.
func AppendEchoReply(dst []byte, id uint32, text []byte) []byte {
	return append(appendMsg(dst, TypeEchoReply, id, len(text)), text...)
}

// FileRequest asks for Size bytes of content.
type FileRequest struct {
	Size uint64
	// Cookie is nil or CookieLen bytes from a RETRY (UDP only).
	Cookie []byte
}

// AppendFileRequest appends a FILE request.
func AppendFileRequest(dst []byte, id uint32, r FileRequest) []byte {
	dst = appendMsg(dst, TypeFile, id, 8+len(r.Cookie))
	dst = binary.BigEndian.AppendUint64(dst, r.Size)
	return append(dst, r.Cookie...)
}

// ParseFileRequest decodes a FILE body. Cookie aliases body.
func ParseFileRequest(body []byte) (FileRequest, error) {
	if len(body) != 8 && len(body) != 8+CookieLen {
		return FileRequest{}, errBody(TypeFile, "%d bytes, want 8 or %d", len(body), 8+CookieLen)
	}
	r := FileRequest{Size: binary.BigEndian.Uint64(body)}
	if len(body) > 8 {
		r.Cookie = body[8:]
	}
	return r, nil
}

// StreamRequest asks for Count packets, one every Interval.
type StreamRequest struct {
	// Interval is carried in whole microseconds.
	Interval time.Duration
	Count    uint32
	// Size is the length of each STREAM_PACKET message, padding included;
	// 0 means StreamPacketMinLen.
	Size   uint16
	Cookie []byte
}

// AppendStreamRequest appends a STREAM request. Interval is truncated to
// microseconds.
func AppendStreamRequest(dst []byte, id uint32, r StreamRequest) []byte {
	dst = appendMsg(dst, TypeStream, id, 10+len(r.Cookie))
	dst = binary.BigEndian.AppendUint32(dst, uint32(r.Interval/time.Microsecond))
	dst = binary.BigEndian.AppendUint32(dst, r.Count)
	dst = binary.BigEndian.AppendUint16(dst, r.Size)
	return append(dst, r.Cookie...)
}

// ParseStreamRequest decodes a STREAM body. Cookie aliases body.
func ParseStreamRequest(body []byte) (StreamRequest, error) {
	if len(body) != 10 && len(body) != 10+CookieLen {
		return StreamRequest{}, errBody(TypeStream, "%d bytes, want 10 or %d", len(body), 10+CookieLen)
	}
	r := StreamRequest{
		Interval: time.Duration(binary.BigEndian.Uint32(body)) * time.Microsecond,
		Count:    binary.BigEndian.Uint32(body[4:]),
		Size:     binary.BigEndian.Uint16(body[8:]),
	}
	if len(body) > 10 {
		r.Cookie = body[10:]
	}
	return r, nil
}

// AppendQuit appends a QUIT request; cookie may be nil.
func AppendQuit(dst []byte, id uint32, cookie []byte) []byte {
	return append(appendMsg(dst, TypeQuit, id, len(cookie)), cookie...)
}

// ParseQuit decodes a QUIT body and returns its cookie, nil when absent.
func ParseQuit(body []byte) ([]byte, error) {
	switch len(body) {
	case 0:
		return nil, nil
	case CookieLen:
		return body, nil
	}
	return nil, errBody(TypeQuit, "%d bytes, want 0 or %d", len(body), CookieLen)
}

// AppendBye appends the BYE answering a QUIT.
func AppendBye(dst []byte, id uint32) []byte { return appendMsg(dst, TypeBye, id, 0) }

// ParseBye checks a BYE body.
func ParseBye(body []byte) error {
	if len(body) != 0 {
		return errBody(TypeBye, "%d bytes, want 0", len(body))
	}
	return nil
}

// FileHeader announces a file.
type FileHeader struct {
	Size uint64
	// CRC is the CRC-32C (Castagnoli) of all Size bytes.
	CRC uint32
	// Chunk is the content length of every DATA message but the last (UDP);
	// 0 on TCP, where the content follows the header directly.
	Chunk uint16
}

// Packets is how many DATA messages carry the file over UDP.
func (f FileHeader) Packets() uint64 {
	if f.Chunk == 0 {
		return 0
	}
	return (f.Size + uint64(f.Chunk) - 1) / uint64(f.Chunk)
}

// AppendFileHeader appends a FILE_HEADER.
func AppendFileHeader(dst []byte, id uint32, f FileHeader) []byte {
	dst = appendMsg(dst, TypeFileHeader, id, 14)
	dst = binary.BigEndian.AppendUint64(dst, f.Size)
	dst = binary.BigEndian.AppendUint32(dst, f.CRC)
	return binary.BigEndian.AppendUint16(dst, f.Chunk)
}

// ParseFileHeader decodes a FILE_HEADER body.
func ParseFileHeader(body []byte) (FileHeader, error) {
	if len(body) != 14 {
		return FileHeader{}, errBody(TypeFileHeader, "%d bytes, want 14", len(body))
	}
	return FileHeader{
		Size:  binary.BigEndian.Uint64(body),
		CRC:   binary.BigEndian.Uint32(body[8:]),
		Chunk: binary.BigEndian.Uint16(body[12:]),
	}, nil
}

// FlagLast marks the last DATA message of a file.
const FlagLast = 0x01

// Data is one piece of a file sent over UDP, at offset Seq*Chunk.
type Data struct {
	Seq     uint32
	Last    bool
	Payload []byte
}

// AppendData appends a DATA message.
func AppendData(dst []byte, id uint32, d Data) []byte {
	dst = appendMsg(dst, TypeData, id, 5+len(d.Payload))
	dst = binary.BigEndian.AppendUint32(dst, d.Seq)
	var flags byte
	if d.Last {
		flags |= FlagLast
	}
	return append(append(dst, flags), d.Payload...)
}

// ParseData decodes a DATA body. Payload aliases body.
func ParseData(body []byte) (Data, error) {
	if len(body) < 5 {
		return Data{}, errBody(TypeData, "%d bytes, want at least 5", len(body))
	}
	if body[4]&^FlagLast != 0 {
		return Data{}, errBody(TypeData, "unknown flags 0x%02x", body[4])
	}
	return Data{
		Seq:     binary.BigEndian.Uint32(body),
		Last:    body[4]&FlagLast != 0,
		Payload: body[5:],
	}, nil
}

// StreamPacket is one packet of a stream.
type StreamPacket struct {
	// Seq counts from 0; the last packet has Seq == Total-1.
	Seq, Total uint32
	// SentAt is when the server handed the packet to the socket, carried
	// as Unix nanoseconds.
	SentAt time.Time
	// Pad is how many zero bytes follow, to reach the requested size;
	// non-zero padding is malformed.
	Pad int
}

// AppendStreamPacket appends a STREAM_PACKET.
func AppendStreamPacket(dst []byte, id uint32, p StreamPacket) []byte {
	dst = appendMsg(dst, TypeStreamPacket, id, 16+p.Pad)
	dst = binary.BigEndian.AppendUint32(dst, p.Seq)
	dst = binary.BigEndian.AppendUint32(dst, p.Total)
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.SentAt.UnixNano()))
	return append(dst, make([]byte, p.Pad)...) // no allocation: a clear
}

// ParseStreamPacket decodes a STREAM_PACKET body.
func ParseStreamPacket(body []byte) (StreamPacket, error) {
	if len(body) < 16 {
		return StreamPacket{}, errBody(TypeStreamPacket, "%d bytes, want at least 16", len(body))
	}
	p := StreamPacket{
		Seq:    binary.BigEndian.Uint32(body),
		Total:  binary.BigEndian.Uint32(body[4:]),
		SentAt: time.Unix(0, int64(binary.BigEndian.Uint64(body[8:]))),
		Pad:    len(body) - 16,
	}
	if p.Seq >= p.Total {
		return StreamPacket{}, errBody(TypeStreamPacket, "seq %d not below total %d", p.Seq, p.Total)
	}
	if !allZero(body[16:]) {
		return StreamPacket{}, errBody(TypeStreamPacket, "padding is not zero")
	}
	return p, nil
}

// End closes a stream or a UDP file: how many packets and content bytes
// the server sent.
type End struct {
	Packets uint32
	Bytes   uint64
}

// AppendEnd appends an END.
func AppendEnd(dst []byte, id uint32, e End) []byte {
	dst = appendMsg(dst, TypeEnd, id, 12)
	dst = binary.BigEndian.AppendUint32(dst, e.Packets)
	return binary.BigEndian.AppendUint64(dst, e.Bytes)
}

// ParseEnd decodes an END body.
func ParseEnd(body []byte) (End, error) {
	if len(body) != 12 {
		return End{}, errBody(TypeEnd, "%d bytes, want 12", len(body))
	}
	return End{Packets: binary.BigEndian.Uint32(body), Bytes: binary.BigEndian.Uint64(body[4:])}, nil
}

// AppendRetry appends a RETRY carrying cookie (CookieLen bytes).
func AppendRetry(dst []byte, id uint32, cookie []byte) []byte {
	return append(appendMsg(dst, TypeRetry, id, len(cookie)), cookie...)
}

// ParseRetry decodes a RETRY body and returns its cookie (aliasing body).
func ParseRetry(body []byte) ([]byte, error) {
	if len(body) != CookieLen {
		return nil, errBody(TypeRetry, "%d bytes, want %d", len(body), CookieLen)
	}
	return body, nil
}

// Code classifies an ERROR.
type Code uint16

// Error codes.
const (
	CodeMalformed Code = 1 // the message could not be decoded
	CodeType      Code = 2 // unknown or unexpected message type
	CodeVersion   Code = 3 // unsupported protocol version
	CodeTooLarge  Code = 4 // file larger than the server's limit
	CodeStream    Code = 5 // stream interval, count or size out of range
	CodeBusy      Code = 6 // too many transfers at once
	CodeShutdown  Code = 7 // the server is shutting down
)

var codeNames = map[Code]string{
	CodeMalformed: "malformed", CodeType: "bad type", CodeVersion: "bad version",
	CodeTooLarge: "too large", CodeStream: "bad stream", CodeBusy: "busy",
	CodeShutdown: "shutting down",
}

// String returns the code's short name.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// ErrorReply is a decoded ERROR. It is an error, so clients return it.
type ErrorReply struct {
	Code Code
	Text string
}

// Error describes the reply as "server error (<code>): <text>".
func (e *ErrorReply) Error() string { return "server error (" + e.Code.String() + "): " + e.Text }

// AppendError appends an ERROR; text is cut to MaxErrorText bytes.
func AppendError(dst []byte, id uint32, code Code, text string) []byte {
	text = text[:min(len(text), MaxErrorText)]
	dst = appendMsg(dst, TypeError, id, 2+len(text))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, text...)
}

// ParseError decodes an ERROR body.
func ParseError(body []byte) (*ErrorReply, error) {
	if len(body) < 2 || len(body) > 2+MaxErrorText {
		return nil, errBody(TypeError, "%d bytes, want 2 to %d", len(body), 2+MaxErrorText)
	}
	return &ErrorReply{Code: Code(binary.BigEndian.Uint16(body)), Text: string(body[2:])}, nil
}

// Echo is a decoded ECHO request.
type Echo struct{ Text []byte }

// EchoReply is a decoded ECHO_REPLY.
type EchoReply struct{ Text []byte }

// Quit is a decoded QUIT request.
type Quit struct{ Cookie []byte }

// Retry is a decoded RETRY.
type Retry struct{ Cookie []byte }

// Bye is a decoded BYE.
type Bye struct{}

// Decode decodes m's body according to its type and returns one of Echo,
// EchoReply, FileRequest, StreamRequest, Quit, FileHeader, Data,
// StreamPacket, End, Retry, *ErrorReply or Bye. Slices alias m.Body.
func Decode(m Message) (any, error) {
	b := m.Body
	switch m.Type {
	case TypeEcho:
		return Echo{Text: b}, nil
	case TypeEchoReply:
		return EchoReply{Text: b}, nil
	case TypeFile:
		return ParseFileRequest(b)
	case TypeStream:
		return ParseStreamRequest(b)
	case TypeQuit:
		c, err := ParseQuit(b)
		return Quit{Cookie: c}, err
	case TypeFileHeader:
		return ParseFileHeader(b)
	case TypeData:
		return ParseData(b)
	case TypeStreamPacket:
		return ParseStreamPacket(b)
	case TypeEnd:
		return ParseEnd(b)
	case TypeRetry:
		c, err := ParseRetry(b)
		return Retry{Cookie: c}, err
	case TypeError:
		return ParseError(b)
	case TypeBye:
		return Bye{}, ParseBye(b)
	}
	return nil, fmt.Errorf("%w 0x%02x", ErrType, uint8(m.Type))
}

func allZero(b []byte) bool {
	for ; len(b) >= 8; b = b[8:] {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
