package proto

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
	"testing"
)

// halves returns a reader that delivers b in two reads split at i, as TCP
// may.
func halves(b []byte, i int) io.Reader {
	return io.MultiReader(bytes.NewReader(b[:i]), bytes.NewReader(b[i:]))
}

// readLineBufio is how a server reads a request: up to "\n" from a buffered
// reader, whatever the reads' sizes.
func readLineBufio(r io.Reader) ([]byte, error) {
	line, err := bufio.NewReaderSize(r, 16).ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

// FuzzDecodeRequest checks that the request decoder never panics, fails
// only with a bad_request or too_long *Error, gives the same result for a
// line read whole or in two halves, and that a request it accepts encodes
// back to a line it decodes to the same request.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"get","title":"Alien"}`,
		`{"op":"all","cursor":"alien","limit":2}`,
		`{"op":"add","movie":{"title":"X","year":2000,"director":"Y","genres":["Drama"],"runtime":90,"rating":"PG"}}`,
		`{"op":"edit","title":"X","set":{"year":2001,"genres":[]}}`,
		`{"op":"get","title":"\u00e9"}`,
		`{"op":"get","title":"Alien"} {}`,
		`{"op":"all","limit":1e3}`,
		`[]`,
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, line []byte, split uint16) {
		req, err := DecodeRequest(line)
		if err != nil {
			if c := ErrorCode(err); c != CodeBadRequest && c != CodeTooLong {
				t.Fatalf("DecodeRequest(%q) error %v has code %q", line, err, c)
			}
		}
		if bytes.IndexByte(line, '\n') < 0 {
			whole := append(append([]byte{}, line...), '\n')
			i := int(split) % len(whole)
			got, rerr := readLineBufio(halves(whole, i))
			if rerr != nil {
				t.Fatalf("read %q split at %d: %v", whole, i, rerr)
			}
			req2, err2 := DecodeRequest(got)
			if !reflect.DeepEqual(req, req2) || (err == nil) != (err2 == nil) {
				t.Fatalf("DecodeRequest whole = %+v, %v; in halves at %d = %+v, %v", req, err, i, req2, err2)
			}
		}
		if err != nil {
			return
		}
		enc := AppendRequest(nil, req)
		back, err := DecodeRequest(enc[:len(enc)-1])
		if err != nil || !reflect.DeepEqual(back, req) {
			t.Fatalf("round trip of %q: %s -> %+v, %v; want %+v", line, enc, back, err, req)
		}
	})
}

// FuzzReadResponse checks that the client's response reader never panics
// and reads the same response whole or in two halves.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		`{"ok":true,"movie":{"title":"Alien","year":1979,"director":"Ridley Scott","genres":["Horror"],"runtime":117,"rating":"R"}}` + "\n",
		`{"ok":true,"movies":[],"next":"x"}` + "\n",
		`{"ok":false,"error":{"code":"not_found","message":"no"}}` + "\r\n",
		`{"ok":false}` + "\n",
		`{"ok":true}`,
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		r1, err1 := ReadResponse(bytes.NewReader(data))
		i := 0
		if len(data) > 0 {
			i = int(split) % len(data)
		}
		r2, err2 := ReadResponse(halves(data, i))
		if !reflect.DeepEqual(r1, r2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("ReadResponse(%q) whole = %+v, %v; in halves at %d = %+v, %v", data, r1, err1, i, r2, err2)
		}
		if err1 == nil && r1.OK == (r1.Error != nil) {
			t.Fatalf("ReadResponse(%q) = %+v: ok and error disagree", data, r1)
		}
	})
}
