package proto

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"
)

func seeds(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("hello\n"))
	f.Add(AppendEcho(nil, 1, []byte("hello")))
	f.Add(AppendFileRequest(nil, 2, FileRequest{Size: 123456789}))
	f.Add(AppendFileRequest(nil, 2, FileRequest{Size: 1, Cookie: bytes.Repeat([]byte{1}, CookieLen)}))
	f.Add(AppendStreamRequest(nil, 3, StreamRequest{Interval: time.Millisecond, Count: 10, Size: 100}))
	f.Add(AppendQuit(nil, 4, nil))
	f.Add(AppendFileHeader(nil, 5, FileHeader{Size: 10, CRC: 1, Chunk: 1185}))
	f.Add(AppendData(nil, 5, Data{Seq: 1, Last: true, Payload: []byte("abc")}))
	f.Add(AppendStreamPacket(nil, 6, StreamPacket{Seq: 1, Total: 2, SentAt: time.Unix(1, 2), Pad: 4}))
	f.Add(AppendEnd(nil, 6, End{Packets: 2, Bytes: 3}))
	f.Add(AppendRetry(nil, 7, bytes.Repeat([]byte{2}, CookieLen)))
	f.Add(AppendError(nil, 8, CodeBusy, "busy"))
	f.Add(AppendBye(nil, 9))
	f.Add(append(AppendEcho(nil, 1, []byte("a")), AppendQuit(nil, 2, nil)...))
}

// FuzzParseDatagram decodes a datagram and its body; whatever decodes must
// encode back to the same bytes (the encoding is canonical).
func FuzzParseDatagram(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseDatagram(b)
		if err != nil {
			return
		}
		v, err := Decode(m)
		if err != nil {
			if !errors.Is(err, ErrBody) {
				t.Fatalf("Decode(%q) = %v, want an ErrBody", b, err)
			}
			return
		}
		if got := encode(t, m.ID, v); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %q as %q", b, got)
		}
	})
}

// FuzzParseHeader checks that a header decodes the same from any longer
// input and that a valid one encodes back.
func FuzzParseHeader(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if len(b) >= HeaderLen && errors.Is(err, ErrShort) {
				t.Fatalf("ParseHeader(%q): ErrShort with %d bytes", b, len(b))
			}
			return
		}
		if got := AppendHeader(nil, h); !bytes.Equal(got, b[:HeaderLen]) {
			t.Fatalf("ParseHeader(%q) = %v, encodes as %q", b, h, got)
		}
	})
}

// FuzzReadMessage reads a TCP byte stream as a sequence of messages: whole,
// in two halves, and a byte at a time. The messages read must be the same
// however the bytes arrive.
func FuzzReadMessage(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		whole := readAll(bytes.NewReader(b))
		half := len(b) / 2
		split := readAll(io.MultiReader(bytes.NewReader(b[:half]), bytes.NewReader(b[half:])))
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("split read of %q = %v, whole = %v", b, split, whole)
		}
		bytewise := readAll(&oneByteReader{b: b})
		if !reflect.DeepEqual(whole, bytewise) {
			t.Fatalf("bytewise read of %q = %v, whole = %v", b, bytewise, whole)
		}
	})
}

type readResult struct {
	H    Header
	Body string
	Err  string
}

func readAll(r io.Reader) []readResult {
	var out []readResult
	var buf []byte
	for range 1000 {
		var m Message
		var err error
		m, buf, err = ReadMessage(r, buf)
		res := readResult{H: m.Header, Body: string(m.Body)}
		if err != nil {
			res.Err = err.Error()
		}
		out = append(out, res)
		if err != nil && !errors.Is(err, ErrType) {
			break
		}
	}
	return out
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

// FuzzDecodeBody feeds every body decoder directly: the first byte picks
// the type. A body that decodes must re-encode to the same bytes.
func FuzzDecodeBody(f *testing.F) {
	for _, b := range [][]byte{
		AppendFileRequest(nil, 0, FileRequest{Size: 9}),
		AppendStreamRequest(nil, 0, StreamRequest{Count: 9}),
		AppendData(nil, 0, Data{Seq: 9, Payload: []byte("x")}),
		AppendError(nil, 0, CodeMalformed, "x"),
	} {
		f.Add(append([]byte{b[3]}, b[HeaderLen:]...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || len(b)-1 > MaxBody {
			return
		}
		m := Message{Header: Header{Type: Type(b[0]), Len: uint16(len(b) - 1), ID: 1}, Body: b[1:]}
		v, err := Decode(m)
		if err != nil {
			if !errors.Is(err, ErrBody) && !errors.Is(err, ErrType) {
				t.Fatalf("Decode(%q): unexpected error %v", b, err)
			}
			return
		}
		want := AppendHeader(nil, m.Header)
		want = append(want, m.Body...)
		if got := encode(t, 1, v); !bytes.Equal(got, want) {
			t.Fatalf("Decode(%v %q) re-encodes as %q", m.Type, m.Body, got)
		}
	})
}
