package proto

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"reflect"
	"testing"
	"time"
)

var cookie = bytes.Repeat([]byte{0xC0}, CookieLen)

// encode is the inverse of Decode, for round trips.
func encode(t testing.TB, id uint32, v any) []byte {
	switch v := v.(type) {
	case Echo:
		return AppendEcho(nil, id, v.Text)
	case EchoReply:
		return AppendEchoReply(nil, id, v.Text)
	case FileRequest:
		return AppendFileRequest(nil, id, v)
	case StreamRequest:
		return AppendStreamRequest(nil, id, v)
	case Quit:
		return AppendQuit(nil, id, v.Cookie)
	case FileHeader:
		return AppendFileHeader(nil, id, v)
	case Data:
		return AppendData(nil, id, v)
	case StreamPacket:
		return AppendStreamPacket(nil, id, v)
	case End:
		return AppendEnd(nil, id, v)
	case Retry:
		return AppendRetry(nil, id, v.Cookie)
	case *ErrorReply:
		return AppendError(nil, id, v.Code, v.Text)
	case Bye:
		return AppendBye(nil, id)
	}
	t.Fatalf("encode: unexpected %T", v)
	return nil
}

func TestRoundTrip(t *testing.T) {
	sent := time.Unix(1700000000, 123456789)
	tests := []struct {
		name string
		give any
		want []byte // the wire form, when given
	}{
		{"echo", Echo{Text: []byte("hi")}, []byte("FS\x01\x01\x00\x02\x00\x00\x00\x07hi")},
		{"echo empty", Echo{Text: []byte{}}, []byte("FS\x01\x01\x00\x00\x00\x00\x00\x07")},
		{"echo reply", EchoReply{Text: []byte("hi")}, []byte("FS\x01\x81\x00\x02\x00\x00\x00\x07hi")},
		{"file", FileRequest{Size: 1000}, []byte("FS\x01\x02\x00\x08\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x03\xe8")},
		{"file cookie", FileRequest{Size: 123456789, Cookie: cookie}, nil},
		{"stream", StreamRequest{Interval: 10 * time.Millisecond, Count: 100, Size: 64},
			[]byte("FS\x01\x03\x00\x0a\x00\x00\x00\x07\x00\x00\x27\x10\x00\x00\x00\x64\x00\x40")},
		{"stream cookie", StreamRequest{Interval: time.Millisecond, Count: 1, Cookie: cookie}, nil},
		{"quit", Quit{}, []byte("FS\x01\x04\x00\x00\x00\x00\x00\x07")},
		{"quit cookie", Quit{Cookie: cookie}, nil},
		{"file header", FileHeader{Size: 1, CRC: 0xdeadbeef, Chunk: 1185},
			[]byte("FS\x01\x82\x00\x0e\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x01\xde\xad\xbe\xef\x04\xa1")},
		{"data", Data{Seq: 3, Last: true, Payload: []byte("xyz")}, []byte("FS\x01\x83\x00\x08\x00\x00\x00\x07\x00\x00\x00\x03\x01xyz")},
		{"data empty", Data{Seq: 0, Payload: []byte{}}, nil},
		{"stream packet", StreamPacket{Seq: 4, Total: 5, SentAt: sent, Pad: 3}, nil},
		{"end", End{Packets: 2, Bytes: 3}, []byte("FS\x01\x85\x00\x0c\x00\x00\x00\x07\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x03")},
		{"retry", Retry{Cookie: cookie}, nil},
		{"error", &ErrorReply{Code: CodeTooLarge, Text: "file too large"}, []byte("FS\x01\x87\x00\x10\x00\x00\x00\x07\x00\x04file too large")},
		{"bye", Bye{}, []byte("FS\x01\x88\x00\x00\x00\x00\x00\x07")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encode(t, 7, tt.give)
			if tt.want != nil && !bytes.Equal(b, tt.want) {
				t.Fatalf("encode(%#v) = %q, want %q", tt.give, b, tt.want)
			}
			m, err := ParseDatagram(b)
			if err != nil {
				t.Fatalf("ParseDatagram(%q): %v", b, err)
			}
			if m.ID != 7 {
				t.Errorf("ID = %d, want 7", m.ID)
			}
			got, err := Decode(m)
			if err != nil {
				t.Fatalf("Decode(%q): %v", b, err)
			}
			if sp, ok := got.(StreamPacket); ok {
				if !sp.SentAt.Equal(sent) {
					t.Errorf("SentAt = %v, want %v", sp.SentAt, sent)
				}
				sp.SentAt = sent
				got = sp
			}
			if !reflect.DeepEqual(got, tt.give) {
				t.Errorf("Decode(%q) = %#v, want %#v", b, got, tt.give)
			}
		})
	}
}

func TestParseDatagramErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want error
	}{
		{"empty", "", ErrShort},
		{"short", "FS\x01\x01\x00", ErrShort},
		{"text", "hello world\n", ErrMagic},
		{"version", "FS\x02\x01\x00\x00\x00\x00\x00\x01", ErrVersion},
		{"type", "FS\x01\x7f\x00\x00\x00\x00\x00\x01", ErrType},
		{"long header", "FS\x01\x01\x00\x05\x00\x00\x00\x01abc", ErrLength},
		{"short header", "FS\x01\x01\x00\x01\x00\x00\x00\x01abc", ErrLength},
	}
	for _, tt := range tests {
		if _, err := ParseDatagram([]byte(tt.give)); !errors.Is(err, tt.want) {
			t.Errorf("ParseDatagram(%q) = %v, want %v", tt.give, err, tt.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  Type
		body string
	}{
		{"file short", TypeFile, "\x00\x00\x00"},
		{"file odd cookie", TypeFile, "\x00\x00\x00\x00\x00\x00\x00\x01abc"},
		{"stream short", TypeStream, "\x00\x00"},
		{"quit junk", TypeQuit, "x"},
		{"file header short", TypeFileHeader, "\x00"},
		{"data short", TypeData, "\x00\x00\x00"},
		{"data flags", TypeData, "\x00\x00\x00\x00\x02"},
		{"stream packet short", TypeStreamPacket, "\x00"},
		{"stream packet seq", TypeStreamPacket, "\x00\x00\x00\x05\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"stream packet padding", TypeStreamPacket, "\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00x"},
		{"end", TypeEnd, "\x00"},
		{"retry", TypeRetry, "short"},
		{"error", TypeError, "\x00"},
		{"bye", TypeBye, "x"},
	}
	for _, tt := range tests {
		m := Message{Header: Header{Type: tt.typ}, Body: []byte(tt.body)}
		if v, err := Decode(m); !errors.Is(err, ErrBody) {
			t.Errorf("%s: Decode(%v %q) = %#v, %v, want ErrBody", tt.name, tt.typ, tt.body, v, err)
		}
	}
	if _, err := Decode(Message{Header: Header{Type: 0x55}}); !errors.Is(err, ErrType) {
		t.Errorf("Decode(type 0x55) = %v, want ErrType", err)
	}
}

func TestReadMessage(t *testing.T) {
	var stream []byte
	stream = AppendEcho(stream, 1, []byte("one"))
	stream = append(stream, "FS\x01\x70\x00\x02\x00\x00\x00\x02zz"...) // unknown type: skipped
	stream = AppendFileRequest(stream, 3, FileRequest{Size: 5})
	stream = append(stream, "FS\x01\x01\x00\x09\x00\x00\x00\x04abc"...) // cut short

	r := bytes.NewReader(stream)
	var buf []byte
	var m Message
	var err error
	m, buf, err = ReadMessage(r, buf)
	if err != nil || m.Type != TypeEcho || string(m.Body) != "one" {
		t.Fatalf("first = %v %q, %v", m.Header, m.Body, err)
	}
	m, buf, err = ReadMessage(r, buf)
	if !errors.Is(err, ErrType) || m.ID != 2 {
		t.Fatalf("second = %v, %v; want ErrType with id 2", m.Header, err)
	}
	m, buf, err = ReadMessage(r, buf)
	if err != nil || m.Type != TypeFile || m.ID != 3 {
		t.Fatalf("third = %v, %v", m.Header, err)
	}
	_, buf, err = ReadMessage(r, buf)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("fourth: %v, want ErrUnexpectedEOF", err)
	}
	if _, _, err = ReadMessage(r, buf); err != io.EOF {
		t.Fatalf("at end: %v, want EOF", err)
	}
	if _, _, err := ReadMessage(bytes.NewReader([]byte("GET / HTTP/1.1\r\n")), nil); !errors.Is(err, ErrMagic) {
		t.Fatalf("http: %v, want ErrMagic", err)
	}
}

func TestContentCRC(t *testing.T) {
	var content []byte
	for n := range int64(1000) {
		if got, want := ContentCRC(n), crc32.Checksum(content, CRCTable); got != want {
			t.Fatalf("ContentCRC(%d) = %#x, want %#x", n, got, want)
		}
		content = append(content, Pattern[n%PatternLen])
	}
	for _, n := range []int64{1 << 20, 1<<20 + 1, 123456789} {
		if got, want := ContentCRC(n), streamCRC(n); got != want {
			t.Errorf("ContentCRC(%d) = %#x, want %#x", n, got, want)
		}
	}
}

func streamCRC(n int64) uint32 {
	buf := make([]byte, 1<<16)
	var crc uint32
	for off := int64(0); off < n; {
		b := buf[:min(int64(len(buf)), n-off)]
		FillContent(b, off)
		crc = crc32.Update(crc, CRCTable, b)
		off += int64(len(b))
	}
	return crc
}

func TestFillContent(t *testing.T) {
	tests := []struct {
		off  int64
		n    int
		want string
	}{
		{0, 3, "012"},
		{62, 4, ".\n01"},
		{64*1000 + 10, 2, "ab"},
		{5, 0, ""},
	}
	for _, tt := range tests {
		b := make([]byte, tt.n)
		FillContent(b, tt.off)
		if string(b) != tt.want {
			t.Errorf("FillContent(%d, %d) = %q, want %q", tt.off, tt.n, b, tt.want)
		}
	}
}

func BenchmarkContentCRC(b *testing.B) {
	for b.Loop() {
		ContentCRC(123456789)
	}
}
