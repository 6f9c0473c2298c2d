package proto

import (
	"bytes"
	"reflect"
	"testing"
)

var fastMovies = []Movie{
	{Title: "Alien", Year: 1979, Director: "Ridley Scott", Genres: []string{"Horror", "Sci-Fi"}, Runtime: 117, Rating: "R"},
	{Title: "Amélie", Year: 2001, Director: "Jean-Pierre Jeunet", Genres: []string{}, Runtime: 0, Rating: ""},
	{Title: "<b> & 日本語 😀", Year: -5, Director: "x", Genres: nil, Runtime: 999999999999999999},
	{Title: "0", Year: 0, Director: "'", Genres: []string{"a"}, Runtime: -1},
}

// fastLines are lines the fast paths must take: what clients and servers
// write on the hot path.
func fastLines() (reqs, resps [][]byte) {
	for _, m := range fastMovies {
		reqs = append(reqs, AppendRequest(nil, Request{Op: OpGet, Title: m.Title}))
		resps = append(resps, AppendResponse(nil, Response{OK: true, Movie: &m}))
	}
	resps = append(resps,
		AppendResponse(nil, Response{OK: true, Movies: []Movie{}}),
		AppendResponse(nil, Response{OK: true, Movies: fastMovies[:1]}),
		AppendResponse(nil, Response{OK: true, Movies: fastMovies, Next: "zodiac"}),
		AppendResponse(nil, Response{Error: &Error{Code: CodeNotFound, Message: "no movie titled 'Alien 3'"}}),
	)
	return reqs, resps
}

func TestFastPathsTaken(t *testing.T) {
	reqs, resps := fastLines()
	for _, l := range reqs {
		l = bytes.TrimSpace(l)
		if _, ok := fastGet(l); !ok {
			t.Errorf("fastGet refused %s", l)
		}
		checkFastGet(t, l)
	}
	for _, l := range resps {
		l = bytes.TrimSpace(l)
		if _, ok := fastResponse(l); !ok {
			t.Errorf("fastResponse refused %s", l)
		}
		checkFastResponse(t, l)
	}
	// Lines that only encoding/json may decode.
	for _, l := range []string{
		`{"op":"get","title":"a\"b"}`, `{"op":"get","title":"\u00e9"}`, `{"op":"get", "title":"x"}`,
		`{"title":"x","op":"get"}`, `{"op":"get","title":"x","limit":1}`, `{"op":"get","title":"x"}}`,
		"{\"op\":\"get\",\"title\":\"\xff\"}", "{\"op\":\"get\",\"title\":\"a\tb\"}", `{"op":"get","title":null}`,
		`{"ok":true,"movie":{"title":"A","year":1979.0,"director":"B","genres":null,"runtime":1,"rating":""}}`,
		`{"ok":true,"movie":{"title":"A","year":01979,"director":"B","genres":null,"runtime":1,"rating":""}}`,
		`{"ok":true,"movie":{"title":"A","year":1,"director":"B","genres":[],"runtime":1,"rating":"","x":1}}`,
		`{"ok":true,"movie":{"title":"A","year":1,"director":"B","genres":[ ],"runtime":1,"rating":""}}`,
		`{"ok":true,"movie":{"title":"A","year":1,"director":"B","genres":["a",],"runtime":1,"rating":""}}`,
		`{"ok":true,"movie":{"title":"A","year":1234567890123456789,"director":"B","genres":[],"runtime":1,"rating":""}}`,
		`{"ok":true,"movies":[],"next":"a\nb"}`, `{"ok":true,"movies":[],}`, `{"ok":false,"error":{"code":"x"}}`,
		`{"ok":true,"movie":null}`, `{"ok":true}`, `{"ok":true,"movies":[]} `,
	} {
		if _, ok := fastGet([]byte(l)); ok {
			t.Errorf("fastGet took %s", l)
		}
		if _, ok := fastResponse([]byte(l)); ok {
			t.Errorf("fastResponse took %s", l)
		}
	}
}

func checkFastGet(t *testing.T, b []byte) {
	t.Helper()
	fast, ok := fastGet(b)
	if !ok {
		return
	}
	slow, err := decodeJSON(b)
	if err != nil {
		t.Fatalf("fastGet took %q, the strict decoder refused it: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fastGet %+v, the strict decoder %+v", b, fast, slow)
	}
}

func checkFastResponse(t *testing.T, b []byte) {
	t.Helper()
	fast, ok := fastResponse(b)
	if !ok {
		return
	}
	var slow Response
	if err := decodeJSONResponse(b, &slow); err != nil {
		t.Fatalf("fastResponse took %q, encoding/json refused it: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fastResponse %+v, encoding/json %+v", b, fast, slow)
	}
}

// FuzzFastPaths checks that whatever line the fast paths accept, the
// strict request decoder (for a get) or encoding/json (for a response)
// decodes to the same value.
func FuzzFastPaths(f *testing.F) {
	reqs, resps := fastLines()
	for _, l := range append(reqs, resps...) {
		f.Add(bytes.TrimSpace(l))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFastGet(t, b)
		checkFastResponse(t, b)
	})
}
