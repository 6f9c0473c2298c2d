package data

import (
	"strings"
	"testing"
)

func TestBuiltin(t *testing.T) {
	ms := Builtin()
	if len(ms) < 200 {
		t.Fatalf("Builtin() has %d movies, want at least 200", len(ms))
	}
	found := false
	for _, m := range ms {
		if m.Title == "Alien" {
			found = m.Year == 1979 && m.Director == "Ridley Scott"
		}
	}
	if !found {
		t.Errorf("Builtin() lacks Alien (1979) by Ridley Scott")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ give, want string }{
		{`{}`, "cannot unmarshal"},
		{`[{"title":"A","year":1990}]`, `movie 1 ("A"): bad_request: missing director`},
		{`[{"title":"A","year":1990,"director":"D"},{"title":"a","year":1991,"director":"E"}]`, `movie 2 ("a") has the title of movie 1`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.give))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%s) error = %v, want %q", tt.give, err, tt.want)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(t.TempDir() + "/none.json"); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}
