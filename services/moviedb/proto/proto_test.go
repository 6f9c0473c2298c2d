package proto

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func ptr[T any](v T) *T { return &v }

func TestDecodeRequest(t *testing.T) {
	alien := Movie{Title: "Alien", Year: 1979, Director: "Ridley Scott", Genres: []string{"Horror", "Sci-Fi"}, Runtime: 117, Rating: "R"}
	tests := []struct {
		give string
		want Request
	}{
		{`{"op":"get","title":"Alien"}`, Request{Op: OpGet, Title: "Alien"}},
		{` {"op":"get","title":"alien"} `, Request{Op: OpGet, Title: "alien"}},
		{`{"op":"all"}`, Request{Op: OpAll, Limit: DefaultPageSize}},
		{`{"op":"all","cursor":"alien","limit":1000}`, Request{Op: OpAll, Cursor: "alien", Limit: 1000}},
		{`{"op":"add","movie":{"title":"Alien","year":1979,"director":"Ridley Scott","genres":["Horror","Sci-Fi"],"runtime":117,"rating":"R"}}`,
			Request{Op: OpAdd, Movie: &alien}},
		{`{"op":"add","movie":{"title":"X","year":2000,"director":"Y"}}`,
			Request{Op: OpAdd, Movie: &Movie{Title: "X", Year: 2000, Director: "Y", Genres: []string{}}}},
		{`{"op":"edit","title":"Alien","set":{"year":1980,"genres":[]}}`,
			Request{Op: OpEdit, Title: "Alien", Set: &Changes{Year: ptr(1980), Genres: &[]string{}}}},
		{`{"op":"edit","title":"Amélie","set":{"rating":""}}`,
			Request{Op: OpEdit, Title: "Amélie", Set: &Changes{Rating: ptr("")}}},
	}
	for _, tt := range tests {
		got, err := DecodeRequest([]byte(tt.give))
		if err != nil {
			t.Errorf("DecodeRequest(%q) error %v", tt.give, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodeRequest(%q) = %+v, want %+v", tt.give, got, tt.want)
		}
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	long := `{"op":"get","title":"` + strings.Repeat("a", MaxRequestBytes) + `"}`
	tests := []struct {
		give     string
		wantCode Code
		wantMsg  string // a part of the message
	}{
		{``, CodeBadRequest, "empty request"},
		{`get Alien`, CodeBadRequest, "not a JSON object"},
		{`{"op":"get"`, CodeBadRequest, "unexpected end of JSON"},
		{`{"op":"get","title":"Alien"} {}`, CodeBadRequest, "data after"},
		{`{"op":"get","title":"Alien","extra":1}`, CodeBadRequest, `unknown field "extra"`},
		{`{"op":"get","title":42}`, CodeBadRequest, `field "title": number is the wrong type`},
		{`{"title":"Alien"}`, CodeBadRequest, "missing op"},
		{`{"op":"delete","title":"Alien"}`, CodeBadRequest, `unknown op "delete"`},
		{`{"op":"get"}`, CodeBadRequest, "missing title"},
		{`{"op":"get","title":"Alien","limit":3}`, CodeBadRequest, `get does not take "limit"`},
		{`{"op":"get","title":" Alien"}`, CodeBadRequest, "leading or trailing space"},
		{`{"op":"get","title":"Al\u0000ien"}`, CodeBadRequest, "control"},
		{`{"op":"get","title":"` + strings.Repeat("x", MaxTitleBytes+1) + `"}`, CodeBadRequest, "title longer than 200"},
		{"{\"op\":\"get\",\"title\":\"\xff\"}", CodeBadRequest, "UTF-8"},
		{`{"op":"all","limit":1001}`, CodeBadRequest, "limit 1001"},
		{`{"op":"all","limit":-1}`, CodeBadRequest, "limit -1"},
		{`{"op":"all","title":"x"}`, CodeBadRequest, `all does not take "title"`},
		{`{"op":"add"}`, CodeBadRequest, "add needs a movie"},
		{`{"op":"add","movie":{"title":"X","director":"Y"}}`, CodeBadRequest, "year 0"},
		{`{"op":"add","movie":{"title":"X","year":2000}}`, CodeBadRequest, "missing director"},
		{`{"op":"add","movie":{"title":"X","year":2000,"director":"Y","runtime":-5}}`, CodeBadRequest, "runtime -5"},
		{`{"op":"add","movie":{"title":"X","year":2000,"director":"Y","genres":["a","b","c","d","e","f","g","h","i","j","k"]}}`, CodeBadRequest, "11 genres"},
		{`{"op":"add","movie":{"title":"X","year":2000,"director":"Y","genres":[""]}}`, CodeBadRequest, "missing genre"},
		{`{"op":"add","movie":{"title":"X","year":2000,"director":"Y","rating":"PG-13 and then some"}}`, CodeBadRequest, "rating longer"},
		{`{"op":"edit","title":"Alien"}`, CodeBadRequest, "edit needs set"},
		{`{"op":"edit","title":"Alien","set":{}}`, CodeBadRequest, "edit needs set"},
		{`{"op":"edit","title":"Alien","set":{"title":"Aliens"}}`, CodeBadRequest, `unknown field "title"`},
		{`{"op":"edit","title":"Alien","set":{"year":3000}}`, CodeBadRequest, "year 3000"},
		{long, CodeTooLong, "longer than"},
	}
	for _, tt := range tests {
		_, err := DecodeRequest([]byte(tt.give))
		if ErrorCode(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("DecodeRequest(%.60q) error = %v, want code %s with %q", tt.give, err, tt.wantCode, tt.wantMsg)
		}
	}
}

func TestAppendRequestRoundTrip(t *testing.T) {
	reqs := []Request{
		{Op: OpGet, Title: "Tom & Jerry <3>"},
		{Op: OpAll, Cursor: "alien", Limit: 10},
		{Op: OpAdd, Movie: &Movie{Title: "Léon", Year: 1994, Director: "Luc Besson", Genres: []string{"Crime"}, Runtime: 110, Rating: "R"}},
		{Op: OpEdit, Title: "Léon", Set: &Changes{Director: ptr("Luc Besson"), Runtime: ptr(133)}},
	}
	for _, r := range reqs {
		line := AppendRequest(nil, r)
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("AppendRequest(%+v) = %q, want one line", r, line)
		}
		got, err := DecodeRequest(line[:len(line)-1])
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("DecodeRequest(AppendRequest(%+v)) = %+v, %v", r, got, err)
		}
	}
	if got := string(AppendRequest(nil, reqs[0])); !strings.Contains(got, "Tom & Jerry <3>") {
		t.Errorf("AppendRequest escaped HTML: %s", got)
	}
}

func TestAppendResponse(t *testing.T) {
	tests := []struct {
		give Response
		want string
	}{
		{Response{OK: true, Movie: &Movie{Title: "X", Year: 2000, Director: "Y", Genres: []string{}}},
			`{"ok":true,"movie":{"title":"X","year":2000,"director":"Y","genres":[],"runtime":0,"rating":""}}`},
		{Response{OK: true, Movies: []Movie{}}, `{"ok":true,"movies":[]}`},
		{Response{OK: true, Movies: []Movie{{Title: "A", Year: 1990, Director: "B", Genres: []string{"Drama"}}}, Next: "a"},
			`{"ok":true,"movies":[{"title":"A","year":1990,"director":"B","genres":["Drama"],"runtime":0,"rating":""}],"next":"a"}`},
		{Response{Error: Errorf(CodeNotFound, "no movie titled %q", "Z")}, `{"ok":false,"error":{"code":"not_found","message":"no movie titled \"Z\""}}`},
	}
	for _, tt := range tests {
		got := string(AppendResponse(nil, tt.give))
		if got != tt.want+"\n" {
			t.Errorf("AppendResponse(%+v) = %s, want %s", tt.give, got, tt.want)
		}
		back, err := DecodeResponse([]byte(tt.want))
		if err != nil || !reflect.DeepEqual(back, tt.give) {
			t.Errorf("DecodeResponse(%s) = %+v, %v; want %+v", tt.want, back, err, tt.give)
		}
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	tests := []struct{ give, want string }{
		{``, "not a JSON object"},
		{`[1]`, "not a JSON object"},
		{`{"ok":true,"error":{"code":"x","message":""}}`, "ok with an error"},
		{`{"ok":false}`, "not ok and no error"},
		{`{"ok":false,"error":{"message":"m"}}`, "without a code"},
		{`{"ok":true} x`, "data after"},
		{`{"ok":"yes"}`, "wrong type"},
	}
	for _, tt := range tests {
		_, err := DecodeResponse([]byte(tt.give))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeResponse(%q) error = %v, want %q", tt.give, err, tt.want)
		}
	}
}

func TestReadResponse(t *testing.T) {
	ok := `{"ok":true,"movies":[]}`
	tests := []struct {
		give    io.Reader
		wantErr string
	}{
		{strings.NewReader(ok + "\n"), ""},
		{strings.NewReader(ok + "\r\n"), ""},
		{iotest.OneByteReader(strings.NewReader(ok + "\n")), ""},
		{strings.NewReader(ok), "not ended by a newline"},
		{strings.NewReader(""), "unexpected EOF"},
		{strings.NewReader(strings.Repeat(" ", MaxResponseBytes+2) + ok + "\n"), "longer than"},
		{iotest.ErrReader(errors.New("boom")), "boom"},
	}
	for i, tt := range tests {
		r, err := ReadResponse(tt.give)
		switch {
		case tt.wantErr == "" && (err != nil || !r.OK):
			t.Errorf("%d: ReadResponse = %+v, %v; want ok", i, r, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%d: ReadResponse error = %v, want %q", i, err, tt.wantErr)
		}
	}
}

func TestChangesApplyDoesNotModify(t *testing.T) {
	orig := Movie{Title: "A", Year: 1990, Director: "B", Genres: []string{"Drama"}}
	genres := []string{"Comedy"}
	c := Changes{Genres: &genres, Year: ptr(1991)}
	got := c.Apply(orig)
	genres[0] = "changed later"
	if orig.Year != 1990 || orig.Genres[0] != "Drama" {
		t.Errorf("Apply modified its input: %+v", orig)
	}
	if got.Year != 1991 || got.Genres[0] != "Comedy" {
		t.Errorf("Apply = %+v, want year 1991, genres [Comedy]", got)
	}
}

// TestStrictJSON is issue 16 finding 7: JSON that the spec calls invalid
// was accepted. Field names matched without regard to case ("Title" after
// "title" stored a film titled "Other"), the last of duplicate keys won,
// a lone surrogate escape became U+FFFD, and limit 0 passed for the
// default.
func TestStrictJSON(t *testing.T) {
	movie := `"movie":{"title":"Y8","year":2000,"director":"D"`
	tests := []struct {
		give    string
		wantMsg string
	}{
		{`{"op":"add",` + movie + `,"Title":"Other"}}`, `unknown field "movie.Title" (field names are lowercase: "movie.title")`},
		{`{"op":"get","TITLE":"Alien"}`, `unknown field "TITLE" (field names are lowercase: "title")`},
		{`{"OP":"get","title":"Alien"}`, `unknown field "OP"`},
		{`{"op":"edit","title":"Alien","set":{"Year":1980}}`, `unknown field "Year"`},
		{`{"op":"get","title":"Alien","title":"Aliens"}`, `duplicate field "title"`},
		{`{"op":"get","op":"all","title":"Alien"}`, `duplicate field "op"`},
		{`{"op":"add",` + movie + `,"title":"Other"}}`, `duplicate field "movie.title"`},
		{`{"op":"edit","title":"Alien","set":{"year":1980,"year":1981}}`, `duplicate field "set.year"`},
		{`{"op":"all","limit":5,"limit":6}`, `duplicate field "limit"`},
		{`{"op":"get","title":"\ud800"}`, `invalid escape "\\ud800": a UTF-16 surrogate without its pair`},
		{`{"op":"get","title":"a\udc00b"}`, `invalid escape "\\udc00"`},
		{`{"op":"get","title":"\ud800\u0041"}`, `invalid escape "\\ud800"`},
		{`{"op":"get","title":"\ud800x"}`, `invalid escape "\\ud800"`},
		{`{"op":"all","limit":0}`, "limit 0: want 1 to 1000"},
		{`{"op":"all","limit":-0}`, "limit 0: want 1 to 1000"},
		{`{"op":"all","limit":1e3}`, `field "limit": number 1e3 is the wrong type`},
		{`{"op":"all","limit":5.0}`, `field "limit": number 5.0 is the wrong type`},
		{`{"op":"get","title":"Alien","limit":0}`, `get does not take "limit"`},
		{`{"op":"get","title":"Alien","cursor":""}`, `get does not take "cursor"`},
		{`{"op":"all","title":""}`, `all does not take "title"`},
		{`{"op":"get","title":null}`, `field "title": null is the wrong type`},
		{`{"op":"add","movie":null}`, `field "movie": null is the wrong type`},
		{`{"op":"edit","title":"Alien","set":{"genres":null}}`, `field "set.genres": null is the wrong type`},
		{`{"op":"get","title":"Alien",}`, "invalid JSON"},
		{`{"op":"get","title":"Alien"`, "unexpected end of JSON"},
		{`{"op":"get","title":"Al` + "\t" + `ien"}`, "in string literal"},
		{`{"op":"get","title":"\x"}`, "in string escape code"},
		{`{"op":"all","limit":01}`, "invalid JSON"},
	}
	for _, tt := range tests {
		req, err := DecodeRequest([]byte(tt.give))
		if ErrorCode(err) != CodeBadRequest || !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("DecodeRequest(%s) = %+v, %v; want bad_request with %q", tt.give, req, err, tt.wantMsg)
		}
	}

	// What strictness still takes: escapes in keys and values, a surrogate
	// pair, whitespace, null genres.
	accepted := []struct {
		give string
		want Request
	}{
		{`{"\u006fp":"get","t\u0069tle":"\u0041lien"}`, Request{Op: OpGet, Title: "Alien"}},
		{`{"op":"get","title":"smile \ud83d\ude00"}`, Request{Op: OpGet, Title: "smile 😀"}},
		{"\t{ \"op\" : \"all\" ,\"limit\" : 1 }\r", Request{Op: OpAll, Limit: 1}},
		{`{"op":"all","cursor":""}`, Request{Op: OpAll, Limit: DefaultPageSize}},
		{`{"op":"add",` + movie + `,"genres":null}}`, Request{Op: OpAdd, Movie: &Movie{Title: "Y8", Year: 2000, Director: "D", Genres: []string{}}}},
	}
	for _, tt := range accepted {
		got, err := DecodeRequest([]byte(tt.give))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodeRequest(%s) = %+v, %v; want %+v", tt.give, got, err, tt.want)
		}
	}
}
