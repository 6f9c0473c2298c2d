package proto

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"testing"
)

func addSeeds(f *testing.F, seeds ...string) {
	for i, s := range seeds {
		f.Add([]byte(s), uint(i*3))
	}
}

// chunks returns a reader that hands out a and then b in separate reads, as
// a TCP connection may.
func chunks(a, b []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(a), bytes.NewReader(b))
}

// lines splits a stream into lines the way the server's TCP reader does.
func lines(r io.Reader) [][]byte {
	br := bufio.NewReaderSize(r, 16)
	var out [][]byte
	for range 1 << 16 {
		l, err := br.ReadBytes('\n')
		if len(l) > 0 {
			out = append(out, l)
		}
		if err != nil {
			break
		}
	}
	return out
}

type parsed struct {
	kind Kind
	id   string
	ok   bool
}

func parseAll(ls [][]byte) []parsed {
	var out []parsed
	for _, l := range ls {
		k, id, err := ParseRequest(l)
		out = append(out, parsed{k, string(id), err == nil})
	}
	return out
}

// FuzzParseRequest feeds the request parser arbitrary input, whole and
// split in two at cut, the halves as one TCP stream and each as a datagram
// of its own.
func FuzzParseRequest(f *testing.F) {
	addSeeds(f, "HELLO 9876", "HELLO 9876\r\n", "PING\n", "HELLO", "HELLO ", "HELLO a b",
		"HELLO 1\nHELLO 2\nPING\n", "\xff\x00HELLO", "HELLO 0123456789012345678901234567890123456789012345678901234567890123")
	f.Fuzz(func(t *testing.T, data []byte, cut uint) {
		checkRequest(t, data)
		i := int(cut % uint(len(data)+1))
		a, b := data[:i], data[i:]
		checkRequest(t, a)
		checkRequest(t, b)
		whole := parseAll(lines(bytes.NewReader(data)))
		split := parseAll(lines(chunks(a, b)))
		if len(whole) != len(split) {
			t.Fatalf("%q: %d messages whole, %d split at %d", data, len(whole), len(split), i)
		}
		for j := range whole {
			if whole[j] != split[j] {
				t.Fatalf("%q: message %d is %+v whole, %+v split at %d", data, j, whole[j], split[j], i)
			}
		}
	})
}

func checkRequest(t *testing.T, msg []byte) {
	t.Helper()
	kind, id, err := ParseRequest(msg)
	if err != nil {
		if kind != KindInvalid || id != nil {
			t.Fatalf("ParseRequest(%q) = %v, %q with error %v", msg, kind, id, err)
		}
		return
	}
	switch kind {
	case KindPing:
		if string(TrimEOL(msg)) != Ping {
			t.Fatalf("ParseRequest(%q) = PING", msg)
		}
	case KindHello:
		if err := ValidID(id); err != nil {
			t.Fatalf("ParseRequest(%q) accepted ID %q: %v", msg, id, err)
		}
		if got := AppendHello(nil, string(id)); !bytes.Equal(got, TrimEOL(msg)) {
			t.Fatalf("ParseRequest(%q): ID %q re-encodes as %q", msg, id, got)
		}
		// Every reply to an accepted ID must parse back to it.
		from := netip.MustParseAddrPort("[2001:db8::1]:40000")
		ok := AppendOK(nil, id, from)
		if r, err := ParseReply(ok); err != nil || r.ID != string(id) || r.Client != from || len(ok) > MaxReplyLen {
			t.Fatalf("OK for %q = %q parses as %+v, %v", id, ok, r, err)
		}
		if r, err := ParseReply(AppendReset(nil, id)); err != nil || r.ID != string(id) {
			t.Fatalf("RESET for %q parses as %+v, %v", id, r, err)
		}
	default:
		t.Fatalf("ParseRequest(%q) = kind %v", msg, kind)
	}
}

// FuzzParseReply feeds the client's reply parser arbitrary input, whole and
// in two halves.
func FuzzParseReply(f *testing.F) {
	addSeeds(f, "OK 9876 10.0.0.7 12345", "OK 1 ::1 1\n", "RESET 9876", "ERROR BAD_REQUEST\r\n", "PONG",
		"OK 1 1.2.3.4 012", "OK a b c d", "RESET")
	f.Fuzz(func(t *testing.T, data []byte, cut uint) {
		i := int(cut % uint(len(data)+1))
		for _, msg := range [][]byte{data, data[:i], data[i:]} {
			r, err := ParseReply(msg)
			if err != nil {
				if r != (Reply{}) {
					t.Fatalf("ParseReply(%q) = %+v with error %v", msg, r, err)
				}
				continue
			}
			// A reply that parses is canonical: it re-encodes to itself.
			if s := r.String(); s != string(TrimEOL(msg)) {
				t.Fatalf("ParseReply(%q) = %+v, which re-encodes as %q", msg, r, s)
			}
		}
	})
}
