// Package proto encodes and parses the connid wire protocol: a client sends
//
//	HELLO <ConnectionID>
//
// and the server answers
//
//	OK <ConnectionID> <Client_IP> <Client_Port>    the ID was free and is now the client's
//	RESET <ConnectionID>                           the ID is in use
//	ERROR BAD_REQUEST                              the request was malformed
//
// over UDP (one message per datagram, no line end needed) or TCP (one message
// per line). PING, answered by PONG, lets health probes check a server without
// claiming an ID. The spec is services/connid/README.md.
//
// Both parsers take untrusted input and are fuzzed; ParseRequest allocates
// nothing, whatever its input.
package proto

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Message keywords.
const (
	Hello      = "HELLO"
	OK         = "OK"
	Reset      = "RESET"
	Error      = "ERROR"
	Ping       = "PING"
	Pong       = "PONG"
	BadRequest = "BAD_REQUEST"
)

// MaxIDLen is the longest connection ID in bytes. An ID is 1 to MaxIDLen
// printable ASCII characters other than space (0x21 to 0x7E).
const MaxIDLen = 64

// MaxRequestLen is the longest well-formed request: HELLO, a space, the
// longest ID and a "\r\n".
const MaxRequestLen = len(Hello) + 1 + MaxIDLen + 2

// MaxReplyLen bounds every reply without its line end: OK, the longest ID,
// the longest IPv6 address with a zone-less text form, and a port.
const MaxReplyLen = len(OK) + 1 + MaxIDLen + 1 + len("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") + 1 + len("65535")

// ErrorBadRequest is the reply to a malformed request, without line end.
const ErrorBadRequest = Error + " " + BadRequest

// Busy is the code of the ERROR answering a claim when the table of IDs is
// full, or the client's address holds its share of it.
const Busy = "BUSY"

// ErrorBusy is the reply to a claim the table has no room for, without
// line end: shorter than any HELLO, so it amplifies nothing.
const ErrorBusy = Error + " " + Busy

// ErrMalformed is wrapped by every parse error. The request parser's errors
// are fixed values, so a flood of garbage costs no allocation.
var ErrMalformed = errors.New("malformed message")

var (
	errNotRequest = fmt.Errorf("%w: not HELLO <ConnectionID> or PING", ErrMalformed)
	errNoID       = fmt.Errorf("%w: no connection ID", ErrMalformed)
	errIDTooLong  = fmt.Errorf("%w: connection ID longer than %d bytes", ErrMalformed, MaxIDLen)
	errIDByte     = fmt.Errorf("%w: connection ID holds a space, a control or a non-ASCII byte", ErrMalformed)
)

// Kind tells requests and replies apart.
type Kind uint8

// The kinds of message.
const (
	KindInvalid Kind = iota
	KindHello
	KindPing
	KindOK
	KindReset
	KindError
	KindPong
)

var kindNames = [...]string{"INVALID", Hello, Ping, OK, Reset, Error, Pong}

// String returns the keyword of k.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// TrimEOL removes one trailing "\n" or "\r\n", so a datagram typed into nc
// reads the same as one sent by a program.
func TrimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// ValidID reports whether id is a well-formed connection ID, and why not.
func ValidID[T ~string | ~[]byte](id T) error {
	if len(id) == 0 {
		return errNoID
	}
	if len(id) > MaxIDLen {
		return errIDTooLong
	}
	for i := range len(id) {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return errIDByte
		}
	}
	return nil
}

// ParseRequest parses one request, a datagram or a line, with or without its
// line end. For HELLO it returns the connection ID, a slice of msg.
func ParseRequest(msg []byte) (Kind, []byte, error) {
	msg = TrimEOL(msg)
	if string(msg) == Ping {
		return KindPing, nil, nil
	}
	id, ok := bytes.CutPrefix(msg, []byte(Hello+" "))
	if !ok {
		if string(msg) == Hello {
			return KindInvalid, nil, errNoID
		}
		return KindInvalid, nil, errNotRequest
	}
	if err := ValidID(id); err != nil {
		return KindInvalid, nil, err
	}
	return KindHello, id, nil
}

// AppendHello appends the request for id, without line end.
func AppendHello(dst []byte, id string) []byte {
	dst = append(dst, Hello+" "...)
	return append(dst, id...)
}

// AppendOK appends the reply granting id to the client at from, without
// line end. An IPv4 address mapped into IPv6 is written as IPv4.
func AppendOK[T ~string | ~[]byte](dst []byte, id T, from netip.AddrPort) []byte {
	dst = append(dst, OK+" "...)
	dst = append(dst, id...)
	dst = append(dst, ' ')
	dst = from.Addr().Unmap().WithZone("").AppendTo(dst)
	dst = append(dst, ' ')
	return strconv.AppendUint(dst, uint64(from.Port()), 10)
}

// AppendReset appends the reply refusing id, without line end.
func AppendReset[T ~string | ~[]byte](dst []byte, id T) []byte {
	dst = append(dst, Reset+" "...)
	return append(dst, id...)
}

// Reply is a parsed server reply.
type Reply struct {
	Kind Kind
	// ID is the connection ID of OK and RESET.
	ID string
	// Client is the client's address as the server saw it, for OK.
	Client netip.AddrPort
	// Code is the error code of ERROR.
	Code string
}

// String formats r as on the wire.
func (r Reply) String() string {
	switch r.Kind {
	case KindOK:
		return string(AppendOK(nil, r.ID, r.Client))
	case KindReset:
		return string(AppendReset(nil, r.ID))
	case KindError:
		return Error + " " + r.Code
	case KindPong:
		return Pong
	}
	return r.Kind.String()
}

// ParseReply parses one reply, a datagram or a line, with or without its
// line end.
func ParseReply(msg []byte) (Reply, error) {
	msg = TrimEOL(msg)
	word, rest, _ := bytes.Cut(msg, []byte(" "))
	switch string(word) {
	case OK:
		id, rest, _ := bytes.Cut(rest, []byte(" "))
		ip, port, _ := bytes.Cut(rest, []byte(" "))
		if err := ValidID(id); err != nil {
			return Reply{}, err
		}
		addr, err := netip.ParseAddr(string(ip))
		// Servers write addresses in canonical form; anything else is
		// not a connid server talking.
		if err != nil || addr.String() != string(ip) || addr.Zone() != "" || addr.Is4In6() {
			return Reply{}, fmt.Errorf("%w: OK with client IP %q", ErrMalformed, ip)
		}
		p, err := strconv.ParseUint(string(port), 10, 16)
		if err != nil || (len(port) > 1 && port[0] == '0') {
			return Reply{}, fmt.Errorf("%w: OK with client port %q", ErrMalformed, port)
		}
		return Reply{Kind: KindOK, ID: string(id), Client: netip.AddrPortFrom(addr, uint16(p))}, nil
	case Reset:
		if err := ValidID(rest); err != nil {
			return Reply{}, err
		}
		return Reply{Kind: KindReset, ID: string(rest)}, nil
	case Error:
		if err := ValidID(rest); err != nil {
			return Reply{}, fmt.Errorf("%w: ERROR without code", ErrMalformed)
		}
		return Reply{Kind: KindError, Code: string(rest)}, nil
	case Pong:
		if len(msg) != len(Pong) {
			break
		}
		return Reply{Kind: KindPong}, nil
	}
	return Reply{}, fmt.Errorf("%w: not a reply: %.40q", ErrMalformed, msg)
}
