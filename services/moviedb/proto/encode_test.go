package proto

import (
	"bytes"
	"encoding/json"
	"testing"
)

// jsonLine is the reference for AppendRequest and AppendResponse:
// encoding/json's Encoder without HTML escaping.
func jsonLine(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tricky are strings every escape rule of encoding/json applies to.
var tricky = []string{
	"", "Alien", "Amélie", `say "hi"`, `back\slash`, "<b>&amp;</b>",
	"tab\there", "nl\nx", "cr\rx", "\b\f", "\x00\x01\x1f\x7f", "line\u2028para\u2029",
	"bad \xff utf8", "\xe2\x80", "cut \xe2\x80\xa8", "日本語", "emoji 😀", "\ufffd",
}

func checkAppend(t *testing.T, v any) {
	t.Helper()
	var got []byte
	switch v := v.(type) {
	case Request:
		got = AppendRequest([]byte("x"), v)
	case Response:
		got = AppendResponse([]byte("x"), v)
	}
	if want := append([]byte("x"), jsonLine(t, v)...); !bytes.Equal(got, want) {
		t.Errorf("%+v:\n got %q\nwant %q", v, got, want)
	}
}

func TestAppendMatchesJSON(t *testing.T) {
	for _, s := range tricky {
		m := Movie{Title: s, Year: -3, Director: s, Genres: []string{s, "x"}, Runtime: 1 << 40, Rating: s}
		checkAppend(t, Request{Op: Op(s), Title: s, Cursor: s, Limit: -1})
		checkAppend(t, Request{Op: OpAdd, Movie: &m})
		checkAppend(t, Request{Op: OpEdit, Title: s, Set: &Changes{Director: &s}})
		checkAppend(t, Request{Op: OpEdit, Set: &Changes{Rating: &s, Genres: &[]string{s}}})
		checkAppend(t, Response{OK: true, Movie: &m})
		checkAppend(t, Response{OK: true, Movies: []Movie{m, m}, Next: s})
		checkAppend(t, Response{Error: &Error{Code: Code(s), Message: s}})
	}
	year, runtime, empty := 1979, 0, ""
	var nilGenres []string
	for _, v := range []any{
		Request{},
		Request{Op: OpAll},
		Request{Op: OpAdd, Movie: &Movie{}},
		Request{Op: OpAdd, Movie: &Movie{Genres: []string{}}},
		Request{Op: OpEdit, Set: &Changes{}},
		Request{Op: OpEdit, Set: &Changes{Year: &year}},
		Request{Op: OpEdit, Set: &Changes{Runtime: &runtime, Rating: &empty}},
		Request{Op: OpEdit, Set: &Changes{Genres: &nilGenres}},
		Request{Op: OpEdit, Set: &Changes{Genres: &[]string{}, Runtime: &runtime}},
		Request{Op: OpEdit, Set: &Changes{Year: &year, Director: &empty, Genres: &[]string{"a", "b"}, Runtime: &runtime, Rating: &empty}},
		Response{},
		Response{OK: true},
		Response{OK: true, Movies: []Movie{}},
		Response{OK: true, Movies: []Movie{{}}},
		Response{OK: true, Movie: &Movie{}, Error: &Error{}},
	} {
		checkAppend(t, v)
	}
}

// FuzzAppend checks that AppendRequest and AppendResponse write what
// encoding/json writes, for any strings and numbers.
func FuzzAppend(f *testing.F) {
	for _, s := range tricky {
		f.Add(s, s, 1979, 117, true)
	}
	f.Fuzz(func(t *testing.T, s1, s2 string, n1, n2 int, ok bool) {
		m := Movie{Title: s1, Year: n1, Director: s2, Genres: []string{s2, s1}, Runtime: n2, Rating: s2}
		if !ok {
			m.Genres = nil
		}
		checkAppend(t, Request{Op: Op(s1), Title: s2, Cursor: s1, Limit: n1})
		checkAppend(t, Request{Op: OpAdd, Movie: &m})
		checkAppend(t, Request{Op: OpEdit, Title: s1, Set: &Changes{Year: &n1, Director: &s2, Genres: &m.Genres, Runtime: &n2, Rating: &s1}})
		checkAppend(t, Request{Op: OpEdit, Set: &Changes{Runtime: &n2, Rating: &s1}})
		checkAppend(t, Response{OK: ok, Movie: &m, Next: s1})
		checkAppend(t, Response{OK: ok, Movies: []Movie{m, {Title: s2}}, Next: s2})
		checkAppend(t, Response{Error: &Error{Code: Code(s1), Message: s2}})
	})
}

func TestAppendPage(t *testing.T) {
	for _, tt := range []struct {
		movies []Movie
		next   string
	}{
		{[]Movie{}, ""},
		{fastMovies[:1], "alien"},
		{fastMovies, ""},
		{fastMovies, "zodiac \"<&>\""},
	} {
		got := AppendPageStart([]byte("x"))
		for i := range tt.movies {
			got = AppendPageMovie(got, i, &tt.movies[i])
		}
		got = AppendPageEnd(got, tt.next)
		want := AppendResponse([]byte("x"), Response{OK: true, Movies: tt.movies, Next: tt.next})
		if string(got) != string(want) {
			t.Errorf("AppendPage* = %s, want %s", got, want)
		}
	}
}

func TestPageMovieBound(t *testing.T) {
	ms := append([]Movie{
		{Title: "\u2028\u2029\u2028", Director: "\x01\x02\x03\"\\", Genres: nil, Year: -1 << 62, Runtime: 1<<63 - 1},
		{Title: "\xff\xfe", Genres: []string{"", "\x1f", "\u2028"}, Rating: "\x00"},
	}, fastMovies...)
	for i := range ms {
		got := len(AppendPageMovie(nil, 1, &ms[i]))
		if bound := PageMovieBound(&ms[i]); got > bound {
			t.Errorf("AppendPageMovie(%+v) wrote %d bytes, over PageMovieBound %d", ms[i], got, bound)
		}
	}
}
