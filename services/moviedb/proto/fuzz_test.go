package proto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"
	"unicode/utf8"
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
		`{"op":"get","Title":"Alien"}`,
		`{"op":"get","title":"Alien","title":"Aliens"}`,
		`{"op":"get","title":"\ud800"}`,
		`{"op":"get","title":"\ud83d\ude00"}`,
		`{"op":"all","limit":0}`,
		`{"op":"add","movie":{"title":"X","year":2000,"director":"Y","genres":null}}`,
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

// FuzzStrictAgrees checks the strict request decoder against
// encoding/json: whatever it accepts, encoding/json (with unknown fields
// disallowed) accepts too and decodes to the same request. The reverse
// does not hold, by design: encoding/json also takes other spellings of
// the field names, duplicate keys and lone surrogates.
func FuzzStrictAgrees(f *testing.F) {
	for _, s := range []string{
		`{"op":"get","title":"Alien"}`,
		` { "op" : "all" , "cursor" : "a\u00e9" , "limit" : 20 } `,
		`{"op":"add","movie":{"title":"X","year":2000,"director":"Y","genres":["Drama","\ud83d\ude00"],"runtime":90,"rating":"PG"}}`,
		`{"op":"add","movie":{"title":"X","year":-0,"director":"\/\b\f\n\r\t\"\\","genres":null}}`,
		`{"op":"edit","title":"X","set":{"year":2001,"director":"Z","genres":[],"runtime":0,"rating":""}}`,
		`{"\u006fp":"get","title":"Alien"}`,
		`{"op":"all","limit":1.0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return // DecodeRequest refuses such a line before decodeJSON
		}
		strict, err := decodeJSON(b)
		if err != nil {
			return
		}
		var loose Request
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&loose); err != nil {
			t.Fatalf("strict decoder took %q, encoding/json refused it: %v", b, err)
		}
		if dec.More() {
			t.Fatalf("strict decoder took %q, encoding/json sees data after it", b)
		}
		// The one null the strict decoder gives a meaning: movie genres.
		if loose.Movie != nil && loose.Movie.Genres == nil && strict.Movie != nil && len(strict.Movie.Genres) == 0 {
			loose.Movie.Genres = strict.Movie.Genres
		}
		if !reflect.DeepEqual(strict, loose) {
			t.Fatalf("%q: strict %+v, encoding/json %+v", b, strict, loose)
		}
	})
}
