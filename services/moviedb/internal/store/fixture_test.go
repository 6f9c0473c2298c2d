package store

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// v1Movies are the movies of testdata/v1.wal, a log written by the store of
// commit 92b2083 (magic MDBWAL1, records without sequence numbers, payloads
// that are encoding/json's HTML-escaped proto.Movie): four seeded films,
// two adds and two edits.
var v1Movies = map[string]struct {
	Title, Director, Rating string
	Year, Runtime           int
	Genres                  []string
}{
	"alien":            {"Alien", "Ridley Scott", "R", 1979, 117, []string{"Horror", "Sci-Fi"}},
	"aliens":           {"Aliens", "James Cameron", "R", 1986, 137, []string{"Action"}},
	"amélie":           {"Amélie", "Jean-Pierre Jeunet", "R", 2001, 122, []string{"Comedy", "Romance"}},
	"zodiac":           {"Zodiac", "David Fincher", "R", 2007, 157, []string{}},
	"heat":             {"Heat", "Michael Mann", "R", 1995, 171, []string{"Crime"}},
	"<tokyo> & 東京物語 😀": {"<Tokyo> & 東京物語 😀", "Yasujirō Ozu \"O\"", "Not Rated", 1953, 136, []string{"Drama"}},
}

// TestOpenV1Log checks that a log written before the store had its own
// record format still loads, whole and unchanged.
func TestOpenV1Log(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "v1.wal"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, LogFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, info, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open of the v1 fixture: %v", err)
	}
	defer s.Close()
	if info.Created || info.Replayed != 8 || info.UpgradedFrom != 1 {
		t.Errorf("Open info = %+v, want 8 records replayed, upgraded from version 1, nothing created", info)
	}
	if backup, _ := os.ReadFile(info.BackupPath); string(backup) != string(b) {
		t.Errorf("backup %s differs from the original log", info.BackupPath)
	}
	if s.Len() != len(v1Movies) {
		t.Errorf("Len() = %d, want %d", s.Len(), len(v1Movies))
	}
	for key, want := range v1Movies {
		m, ok := s.Get(key)
		if !ok {
			t.Errorf("Get(%q): missing", key)
			continue
		}
		if m.Title != want.Title || m.Director != want.Director || m.Rating != want.Rating ||
			m.Year != want.Year || m.Runtime != want.Runtime || !reflect.DeepEqual(m.Genres, want.Genres) {
			t.Errorf("Get(%q) = %+v, want %+v", key, m, want)
		}
	}

	// The upgraded log takes writes and reopens with all of them.
	if _, err := s.Add(context.Background(), Movie{Title: "Léon", Year: 1994, Director: "Luc Besson"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, info, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("reopen after the upgrade: %v", err)
	}
	defer s2.Close()
	if info.Replayed != 9 || info.UpgradedFrom != 0 || s2.Len() != len(v1Movies)+1 {
		t.Errorf("reopen info = %+v, Len() = %d; want 9 records replayed, no upgrade", info, s2.Len())
	}
}
