// Package proto builds and parses AutoReplyNet reply lines:
//
//	REPLY id=<16 hex> at=<RFC 3339, ns, UTC> len=<n> snippet="<data>" note="<phrase>"
//
// The spec is services/autoreply/README.md.
package proto

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// TimeLayout is RFC 3339 with exactly nine fractional digits, so every
// reply of a server has the same width there.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Snippet bounds: data of at most SnippetWhole bytes is quoted whole; longer
// data is quoted as its first and last SnippetEdge bytes around "...".
const (
	SnippetWhole = 32
	SnippetEdge  = 16
)

// Notes are the phrases a reply's note is drawn from: the "somewhat random"
// part of AutoReplyNet. None needs escaping.
var Notes = [...]string{
	"got it, loud and clear",
	"received and logged",
	"message in a bottle acknowledged",
	"thanks, that made my day",
	"copy that",
	"roger, over",
	"bits received, bytes counted",
	"another one for the collection",
	"your packet arrived safely",
	"echoes from the server room",
	"noted with interest",
	"handled with care",
	"fresh off the wire",
	"one more for the logbook",
	"acknowledged, carry on",
	"signal received, noise ignored",
}

// MaxLen bounds a reply line (without its "\n") whatever the message: a
// snippet escapes each of at most 35 bytes to at most 4 characters, and the
// other fields have fixed or bounded width. It is the UDP amplification
// bound documented in the README.
const MaxLen = len("REPLY id=") + 16 + len(" at=") + len("2006-01-02T15:04:05.000000000Z") +
	len(" len=") + 20 + len(` snippet="`) + 4*SnippetWhole + len("...") + len(`" note="`) + MaxNoteLen + len(`"`)

// MaxNoteLen bounds the length of every entry of Notes.
const MaxNoteLen = 40

// Generator draws reply IDs and notes. It is not safe for concurrent use:
// give each connection or read loop its own.
type Generator struct {
	rng *rand.ChaCha8
	// The formatted date and time up to the seconds' dot, for sec: replies
	// within one second share it, so only the nanoseconds are formatted
	// per reply (time.AppendFormat costs more than the rest of a reply).
	sec    int64
	prefix []byte
}

// NewGenerator returns a Generator seeded from seed. Seed it from
// crypto/rand in servers so that IDs are unpredictable 64-bit values.
func NewGenerator(seed [32]byte) *Generator {
	return &Generator{rng: rand.NewChaCha8(seed), sec: -1 << 63, prefix: make([]byte, 0, 32)}
}

// appendTime appends t in UTC as TimeLayout does.
func (g *Generator) appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if s := t.Unix(); s != g.sec {
		g.prefix = t.AppendFormat(g.prefix[:0], "2006-01-02T15:04:05.")
		g.sec = s
	}
	dst = append(dst, g.prefix...)
	// Nine digits as one digit and four pairs: five divisions, not nine.
	n := uint32(t.Nanosecond())
	var b [10]byte
	b[0] = byte('0' + n/1e8)
	n %= 1e8
	for i, div := range [4]uint32{1e6, 1e4, 1e2, 1} {
		d := n / div
		n %= div
		b[1+2*i], b[2+2*i] = pairs[2*d], pairs[2*d+1]
	}
	b[9] = 'Z'
	return append(dst, b[:]...)
}

// pairs holds "00" to "99".
const pairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" +
	"30313233343536373839" + "40414243444546474849" + "50515253545556575859" +
	"60616263646566676869" + "70717273747576777879" + "80818283848586878889" +
	"90919293949596979899"

// Append appends the reply to data received at t, without "\n", to dst.
func (g *Generator) Append(dst []byte, t time.Time, data []byte) []byte {
	r := g.rng.Uint64()
	dst = append(dst, "REPLY id="...)
	dst = appendHex16(dst, r)
	dst = append(dst, " at="...)
	dst = g.appendTime(dst, t)
	dst = append(dst, " len="...)
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	dst = append(dst, " snippet="...)
	dst = AppendSnippet(dst, data)
	dst = append(dst, " note=\""...)
	// The low bits went into the id; the high bits of another draw pick
	// the note, so the two are independent.
	dst = append(dst, Notes[g.rng.Uint64()>>60]...)
	return append(dst, '"')
}

const hexdigits = "0123456789abcdef"

func appendHex16(dst []byte, v uint64) []byte {
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hexdigits[v&0xf]
		v >>= 4
	}
	return append(dst, b[:]...)
}

// AppendSnippet appends the quoted snippet of data to dst: data itself when
// at most SnippetWhole bytes, otherwise its first and last SnippetEdge
// bytes around "...", escaped as Go's %q does.
func AppendSnippet(dst, data []byte) []byte {
	if len(data) <= SnippetWhole {
		return appendQuote(dst, data)
	}
	if plain(data[:SnippetEdge]) && plain(data[len(data)-SnippetEdge:]) {
		dst = append(dst, '"')
		dst = append(dst, data[:SnippetEdge]...)
		dst = append(dst, "..."...)
		dst = append(dst, data[len(data)-SnippetEdge:]...)
		return append(dst, '"')
	}
	// AppendQuote of a []byte converted in the call does not allocate.
	dst = strconv.AppendQuote(dst, string(data[:SnippetEdge]))
	dst = append(dst[:len(dst)-1], "..."...)
	n := len(dst)
	dst = strconv.AppendQuote(dst, string(data[len(data)-SnippetEdge:]))
	return append(dst[:n], dst[n+1:]...)
}

// appendQuote is strconv.AppendQuote with a fast path for the common
// case, printable ASCII that needs no escape.
func appendQuote(dst, b []byte) []byte {
	if plain(b) {
		dst = append(dst, '"')
		dst = append(dst, b...)
		return append(dst, '"')
	}
	return strconv.AppendQuote(dst, string(b))
}

// plain reports whether %q would copy b unchanged.
func plain(b []byte) bool {
	for _, c := range b {
		if !plainByte[c] {
			return false
		}
	}
	return true
}

// plainByte marks the bytes %q copies as they are: printable ASCII but for
// the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Reply is a parsed reply line.
type Reply struct {
	ID      uint64
	At      time.Time
	Len     int
	Snippet string // quoted, as on the wire
	Note    string
}

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("malformed reply")

// Parse parses one reply line (without its line end).
func Parse(line []byte) (Reply, error) {
	var r Reply
	rest, ok := bytes.CutPrefix(line, []byte("REPLY id="))
	if !ok {
		return r, fmt.Errorf("%w: does not start with %q", ErrMalformed, "REPLY id=")
	}
	if len(rest) < 16 {
		return r, fmt.Errorf("%w: short id", ErrMalformed)
	}
	for _, c := range rest[:16] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return r, fmt.Errorf("%w: id %q is not 16 lowercase hex digits", ErrMalformed, rest[:16])
		}
	}
	r.ID, _ = strconv.ParseUint(string(rest[:16]), 16, 64)
	rest = rest[16:]

	at, rest, err := field(rest, " at=")
	if err != nil {
		return r, err
	}
	if len(at) != len("2006-01-02T15:04:05.000000000Z") || at[len(at)-1] != 'Z' {
		return r, fmt.Errorf("%w: at=%q is not UTC with nanoseconds", ErrMalformed, at)
	}
	if r.At, err = time.Parse(time.RFC3339Nano, string(at)); err != nil {
		return r, fmt.Errorf("%w: at=%q: %v", ErrMalformed, at, err)
	}
	n, rest, err := field(rest, " len=")
	if err != nil {
		return r, err
	}
	if r.Len, err = strconv.Atoi(string(n)); err != nil || r.Len < 0 || (len(n) > 1 && n[0] == '0') {
		return r, fmt.Errorf("%w: len=%q", ErrMalformed, n)
	}
	rest, ok = bytes.CutPrefix(rest, []byte(" snippet="))
	if !ok {
		return r, fmt.Errorf("%w: no snippet", ErrMalformed)
	}
	q, err := strconv.QuotedPrefix(string(rest))
	if err != nil {
		return r, fmt.Errorf("%w: snippet is not a quoted string", ErrMalformed)
	}
	r.Snippet = q
	rest = rest[len(q):]
	rest, ok = bytes.CutPrefix(rest, []byte(` note="`))
	if !ok || len(rest) == 0 || rest[len(rest)-1] != '"' {
		return r, fmt.Errorf("%w: no note", ErrMalformed)
	}
	r.Note = string(rest[:len(rest)-1])
	if bytes.IndexByte([]byte(r.Note), '"') >= 0 {
		return r, fmt.Errorf("%w: note holds a quote", ErrMalformed)
	}
	return r, nil
}

// field cuts prefix from b and returns the text up to the next space.
func field(b []byte, prefix string) (val, rest []byte, err error) {
	b, ok := bytes.CutPrefix(b, []byte(prefix))
	if !ok {
		return nil, nil, fmt.Errorf("%w: no %q", ErrMalformed, prefix)
	}
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return nil, nil, fmt.Errorf("%w: nothing after %q", ErrMalformed, prefix)
	}
	return b[:i], b[i:], nil
}

// Matches reports whether r answers message data: same length and snippet.
func (r Reply) Matches(data []byte) bool {
	if r.Len != len(data) {
		return false
	}
	var buf [4*SnippetWhole + 8]byte
	return string(AppendSnippet(buf[:0], data)) == r.Snippet
}
