package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/moviedb/internal/wal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSchema(t *testing.T) {
	s := Schema()
	if err := s.Validate(); err != nil {
		t.Fatalf("Schema().Validate() = %v", err)
	}
	if _, err := memdb.NewMemDB(s); err != nil {
		t.Fatalf("NewMemDB(Schema()) = %v", err)
	}
	idx := s.Tables[TableMovies].Indexes[IndexID]
	if idx == nil || !idx.Unique {
		t.Fatalf("table %q lacks the unique index %q", TableMovies, IndexID)
	}
}

var seed = []Movie{
	{Title: "Alien", Year: 1979, Director: "Ridley Scott", Genres: []string{"Horror", "Sci-Fi"}, Runtime: 117, Rating: "R"},
	{Title: "Aliens", Year: 1986, Director: "James Cameron", Genres: []string{"Action"}, Runtime: 137, Rating: "R"},
	{Title: "Zodiac", Year: 2007, Director: "David Fincher", Genres: []string{"Crime"}, Runtime: 157, Rating: "R"},
	{Title: "amélie", Year: 2001, Director: "Jean-Pierre Jeunet", Genres: []string{}, Runtime: 122, Rating: "R"},
}

func open(t *testing.T, opts Options) *Store {
	t.Helper()
	s, _, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%+v): %v", opts, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ptr[T any](v T) *T { return &v }

func TestGet(t *testing.T) {
	s := open(t, Options{Seed: seed})
	tests := []struct {
		give string
		want string // title found, "" for none
	}{
		{"Alien", "Alien"},
		{"ALIEN", "Alien"},
		{"aliens", "Aliens"},
		{"AMÉLIE", "amélie"},
		{"Alie", ""},
		{"", ""},
	}
	for _, tt := range tests {
		m, ok := s.Get(tt.give)
		if m.Title != tt.want || ok != (tt.want != "") {
			t.Errorf("Get(%q) = %q, %v; want %q", tt.give, m.Title, ok, tt.want)
		}
	}
	if s.Len() != len(seed) {
		t.Errorf("Len() = %d, want %d", s.Len(), len(seed))
	}
}

func TestPage(t *testing.T) {
	var many []Movie
	for i := range 250 {
		many = append(many, Movie{Title: fmt.Sprintf("Movie %03d", 249-i), Year: 2000, Director: "D"})
	}
	s := open(t, Options{Seed: many})
	var got []string
	cursor := ""
	pages := 0
	for range 100 {
		ms, next := s.Page(cursor, 100)
		pages++
		for _, m := range ms {
			got = append(got, m.Title)
		}
		if next == "" {
			break
		}
		if next != strings.ToLower(ms[len(ms)-1].Title) {
			t.Fatalf("next = %q, want the last title lowercased", next)
		}
		cursor = next
	}
	if pages != 3 || len(got) != 250 || got[0] != "Movie 000" || got[249] != "Movie 249" {
		t.Fatalf("paged %d times, got %d titles from %q to %q; want 3 pages, 250 in order", pages, len(got), got[0], got[len(got)-1])
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("titles out of order: %q before %q", got[i-1], got[i])
		}
	}
	// A page that ends exactly at the end says so.
	if ms, next := s.Page("movie 149", 100); len(ms) != 100 || next != "" {
		t.Errorf("Page(movie 149, 100) = %d movies, next %q; want 100 and none", len(ms), next)
	}
	// A cursor need not be a stored title, nor lowercase.
	if ms, _ := s.Page("MOVIE 100x", 1); len(ms) != 1 || ms[0].Title != "Movie 101" {
		t.Errorf("Page(MOVIE 100x, 1) = %v, want Movie 101", ms)
	}
	if ms, next := open(t, Options{}).Page("", 10); ms == nil || len(ms) != 0 || next != "" {
		t.Errorf("Page of an empty store = %#v, %q; want an empty non-nil page", ms, next)
	}
}

func TestAddEdit(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{Seed: seed})
	newM := Movie{Title: "Heat", Year: 1995, Director: "Michael Mann", Genres: []string{"Crime"}, Runtime: 170, Rating: "R"}
	tests := []struct {
		name      string
		do        func() (Movie, error)
		wantErr   error
		wantTitle string // of a *TitleError
		want      Movie
	}{
		{"add new", func() (Movie, error) { return s.Add(ctx, newM) }, nil, "", newM},
		{"add again, other case", func() (Movie, error) {
			m := newM
			m.Title = "HEAT"
			return s.Add(ctx, m)
		}, ErrExists, "Heat", Movie{}},
		{"add without title", func() (Movie, error) { return s.Add(ctx, Movie{Year: 2000}) }, ErrInvalid, "", Movie{}},
		{"add bad UTF-8", func() (Movie, error) { return s.Add(ctx, Movie{Title: "X", Director: "\xff"}) }, ErrInvalid, "", Movie{}},
		{"edit", func() (Movie, error) {
			return s.Edit(ctx, "alien", Changes{Year: ptr(1980), Genres: &[]string{"Horror"}})
		}, nil, "", Movie{Title: "Alien", Year: 1980, Director: "Ridley Scott", Genres: []string{"Horror"}, Runtime: 117, Rating: "R"}},
		{"edit missing", func() (Movie, error) { return s.Edit(ctx, "Alien 5", Changes{Year: ptr(2030)}) }, ErrNotFound, "Alien 5", Movie{}},
		{"edit nothing", func() (Movie, error) { return s.Edit(ctx, "Alien", Changes{}) }, ErrInvalid, "", Movie{}},
		{"edit bad UTF-8", func() (Movie, error) { return s.Edit(ctx, "Alien", Changes{Rating: ptr("\xfe")}) }, ErrInvalid, "", Movie{}},
	}
	for _, tt := range tests {
		got, err := tt.do()
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
		}
		var te *TitleError
		if errors.As(err, &te) != (tt.wantTitle != "") || (te != nil && te.Title != tt.wantTitle) {
			t.Errorf("%s: error %#v, want a *TitleError for %q", tt.name, err, tt.wantTitle)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if m, _ := s.Get("heat"); !reflect.DeepEqual(m, newM) {
		t.Errorf("Get(heat) = %+v, want %+v", m, newM)
	}
	if s.Len() != len(seed)+1 {
		t.Errorf("Len() = %d, want %d", s.Len(), len(seed)+1)
	}
}

// TestStoredObjectsNeverChange checks that neither a caller's later changes
// to what it passed or got, nor an edit, alter an object already handed
// out or stored.
func TestStoredObjectsNeverChange(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{Seed: seed})
	genres := []string{"Drama"}
	if _, err := s.Add(ctx, Movie{Title: "Heat", Year: 1995, Director: "Michael Mann", Genres: genres}); err != nil {
		t.Fatal(err)
	}
	genres[0] = "changed by the caller"
	before, _ := s.Get("Heat")
	before.Genres[0] = "changed by a reader"
	snapshot, _ := s.Get("Heat")
	if _, err := s.Edit(ctx, "Heat", Changes{Director: ptr("Somebody Else")}); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Get("Heat")
	if snapshot.Director != "Michael Mann" || snapshot.Genres[0] != "Drama" {
		t.Errorf("movie read before the edit changed: %+v", snapshot)
	}
	if after.Director != "Somebody Else" || after.Genres[0] != "Drama" {
		t.Errorf("Get after edit = %+v, want the new director and the old genres", after)
	}
}

func TestDurableReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, info, err := Open(Options{Dir: dir, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Created || info.Seeded != len(seed) || info.Replayed != len(seed) {
		t.Errorf("first Open info = %+v, want created with %d seeded", info, len(seed))
	}
	if _, err := s.Add(ctx, Movie{Title: "Heat", Year: 1995, Director: "Michael Mann"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Edit(ctx, "ALIEN", Changes{Rating: ptr("NC-17")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Open of a directory in use: %v, want an error", err)
	}
	s.Close()
	if _, err := s.Add(ctx, Movie{Title: "Late", Year: 2000, Director: "D"}); err != ErrClosed {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}

	// A different seed is ignored: the directory is not new.
	s2, info, err := Open(Options{Dir: dir, Seed: []Movie{{Title: "Other", Year: 2000, Director: "D"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if info.Created || info.Seeded != 0 || info.Replayed != len(seed)+2 {
		t.Errorf("reopen info = %+v, want %d replayed, nothing seeded", info, len(seed)+2)
	}
	if m, ok := s2.Get("alien"); !ok || m.Rating != "NC-17" {
		t.Errorf("Get(alien) after reopen = %+v, want the edited rating", m)
	}
	if _, ok := s2.Get("heat"); !ok {
		t.Error("added movie lost on reopen")
	}
	if _, ok := s2.Get("other"); ok || s2.Len() != len(seed)+1 {
		t.Errorf("reopen loaded the seed again: Len() = %d", s2.Len())
	}
}

func TestConcurrentWriters(t *testing.T) {
	const writers, each = 32, 10
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, Options{Dir: dir, Seed: seed})
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				title := fmt.Sprintf("W%02d-%02d", w, i)
				if _, err := s.Add(ctx, Movie{Title: title, Year: 2000 + i, Director: "D"}); err != nil {
					errs <- fmt.Errorf("add %s: %w", title, err)
				}
				// Every writer also edits the same movie, and adds a title
				// every other writer adds too: exactly one add of it wins.
				if _, err := s.Edit(ctx, "Alien", Changes{Runtime: ptr(100 + w)}); err != nil {
					errs <- fmt.Errorf("edit: %w", err)
				}
				if _, err := s.Add(ctx, Movie{Title: fmt.Sprintf("Shared %d", i), Year: 2000, Director: "D"}); err != nil && !errors.Is(err, ErrExists) {
					errs <- fmt.Errorf("add shared: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := len(seed) + writers*each + each
	if s.Len() != want {
		t.Errorf("Len() = %d, want %d", s.Len(), want)
	}
	t.Logf("%d writes in %d fsyncs", s.Records(), s.Syncs())
	if s.Syncs() == 0 || s.Syncs() > s.Records() {
		t.Errorf("%d syncs for %d records", s.Syncs(), s.Records())
	}
	s.Close()

	s2 := open(t, Options{Dir: dir})
	if s2.Len() != want {
		t.Errorf("after reopen Len() = %d, want %d", s2.Len(), want)
	}
	for w := range writers {
		for i := range each {
			if _, ok := s2.Get(fmt.Sprintf("w%02d-%02d", w, i)); !ok {
				t.Fatalf("W%02d-%02d lost on reopen", w, i)
			}
		}
	}
}

func TestCorruptLogTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, Options{Dir: dir, Seed: seed})
	for _, title := range []string{"One", "Two", "Three"} {
		if _, err := s.Add(ctx, Movie{Title: title, Year: 2000, Director: "D"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(dir, LogFile)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-5], 0o600) // a torn last write

	_, _, err := Open(Options{Dir: dir})
	var ce *wal.CorruptError
	if !errors.As(err, &ce) || ce.Records != len(seed)+2 || ce.Size != int64(len(b)-5) {
		t.Fatalf("Open of a torn log = %v, want a CorruptError after %d records", err, len(seed)+2)
	}

	s2, info, err := Open(Options{Dir: dir, Repair: true})
	if err != nil {
		t.Fatalf("Open with repair: %v", err)
	}
	defer s2.Close()
	if info.Repaired == nil || info.Repaired.Offset != ce.Offset || info.SavedTo == "" {
		t.Errorf("repair info = %+v, want the tail at %d cut and saved", info, ce.Offset)
	}
	if _, ok := s2.Get("Two"); !ok {
		t.Error("good record before the torn one lost")
	}
	if _, ok := s2.Get("Three"); ok {
		t.Error("torn record half-loaded")
	}
}
