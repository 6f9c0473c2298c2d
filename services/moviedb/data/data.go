// Package data holds the movie data file moviedb servers ship with,
// movies.json (facts only: title, year, director, genres, runtime in
// minutes, MPAA rating), embedded so that every binary carries it, and the
// loader of such files.
package data

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/socklab/socklab/services/moviedb/proto"
)

//go:embed movies.json
var moviesJSON []byte

// Builtin returns the embedded movies, in file order.
func Builtin() []proto.Movie {
	ms, err := Parse(moviesJSON)
	if err != nil {
		// A test checks the embedded file; this cannot happen in a build.
		panic("data: embedded movies.json: " + err.Error())
	}
	return ms
}

// Load reads a movie data file: a JSON array of movies as on the wire.
func Load(path string) ([]proto.Movie, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ms, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ms, nil
}

// Parse decodes a JSON array of movies and checks that each is valid and
// that no two titles are equal case-insensitively.
func Parse(b []byte) ([]proto.Movie, error) {
	var ms []proto.Movie
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("movie data: %w", err)
	}
	seen := make(map[string]int, len(ms))
	for i := range ms {
		m := &ms[i]
		if m.Genres == nil {
			m.Genres = []string{}
		}
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("movie data: movie %d (%q): %w", i+1, m.Title, err)
		}
		key := strings.ToLower(m.Title)
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("movie data: movie %d (%q) has the title of movie %d", i+1, m.Title, j+1)
		}
		seen[key] = i
	}
	return ms, nil
}
