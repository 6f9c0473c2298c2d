// Package store keeps a moviedb server's movies in a go-memdb database,
// made durable by a write-ahead log (package wal) in a data directory.
//
// Reads run in memdb read transactions, concurrently and without locks.
// Writes go to one writer goroutine, which takes every write waiting,
// applies them in one memdb write transaction, appends their records to the
// log with one fsync (group commit), and only then commits the transaction
// and answers each caller. A write that returned nil is on disk, and no
// reader ever saw a change that is not.
//
// The store speaks its own language: Movie and Changes are its types, and
// its failures are the sentinel errors below (wrapped with detail), which
// the server maps to the wire protocol's codes. The log's records are the
// store's own too (see record), independent of the wire format.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	memdb "github.com/hashicorp/go-memdb"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/moviedb/internal/wal"
)

// LogFile is the name of the write-ahead log in the data directory.
const LogFile = "moviedb.wal"

// DefaultMaxBatch bounds the writes one fsync covers.
const DefaultMaxBatch = 256

// Movie is one stored film. The title is its key: unique case-insensitively,
// never edited. The json names are the log record's (see record), which
// must keep reading logs written before.
type Movie struct {
	Title    string   `json:"title"`
	Year     int      `json:"year"`
	Director string   `json:"director"`
	Genres   []string `json:"genres"` // never nil in a stored movie
	Runtime  int      `json:"runtime"`
	Rating   string   `json:"rating"`
}

// Changes are the fields an edit sets; nil fields stay as they are.
type Changes struct {
	Year     *int
	Director *string
	Genres   *[]string
	Runtime  *int
	Rating   *string
}

// Empty reports whether c changes nothing.
func (c Changes) Empty() bool {
	return c.Year == nil && c.Director == nil && c.Genres == nil && c.Runtime == nil && c.Rating == nil
}

// apply returns m with c applied. m is not modified: the result has its own
// Genres when c sets them and shares m's otherwise.
func (c Changes) apply(m Movie) Movie {
	if c.Year != nil {
		m.Year = *c.Year
	}
	if c.Director != nil {
		m.Director = *c.Director
	}
	if c.Genres != nil {
		m.Genres = append([]string{}, (*c.Genres)...)
	}
	if c.Runtime != nil {
		m.Runtime = *c.Runtime
	}
	if c.Rating != nil {
		m.Rating = *c.Rating
	}
	return m
}

// The store's failures. Writes return them wrapped with detail; test them
// with errors.Is, and get the title of ErrNotFound and ErrExists with
// errors.As and a *TitleError.
var (
	// ErrNotFound: no movie has the title (Edit).
	ErrNotFound = errors.New("no such movie")
	// ErrExists: a movie has the title already (Add); nothing changed.
	ErrExists = errors.New("title already stored")
	// ErrInvalid: a movie or a change the store cannot hold (no title,
	// invalid UTF-8, an edit that changes nothing). Callers validate their
	// own rules before; the store checks only what its index needs.
	ErrInvalid = errors.New("invalid movie")
	// ErrClosed: the store was closed before it took the write.
	ErrClosed = errors.New("store closed")
	// ErrLogFailed: the log could not be written; the write's outcome is
	// unknown, and every later write fails the same way.
	ErrLogFailed = errors.New("cannot write the log")
	// ErrCanceled: the caller's context ended. Before the writer took the
	// write it is not stored; after, its outcome is unknown. The message
	// says which.
	ErrCanceled = errors.New("write canceled")
)

// TitleError is ErrNotFound or ErrExists with the title concerned: the one
// asked for (not found) or the one stored (exists).
type TitleError struct {
	Err   error // ErrNotFound or ErrExists
	Title string
}

func (e *TitleError) Error() string { return fmt.Sprintf("%v: %q", e.Err, e.Title) }

// Unwrap returns Err.
func (e *TitleError) Unwrap() error { return e.Err }

// check reports whether m can be stored: a title for the index, valid
// UTF-8 (the log is JSON, which would replace bad bytes).
func check(m *Movie) error {
	if m.Title == "" {
		return fmt.Errorf("%w: no title", ErrInvalid)
	}
	for _, s := range append([]string{m.Title, m.Director, m.Rating}, m.Genres...) {
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalid, s)
		}
	}
	return nil
}

// Options configure Open.
type Options struct {
	// Dir is the data directory, created if missing. Empty means memory
	// only: nothing survives the process.
	Dir string
	// Seed is loaded into a new database: when Dir holds no log yet, or
	// always when Dir is empty.
	Seed []Movie
	// Repair cuts a bad log tail off (saving it aside) instead of refusing
	// to open.
	Repair bool
	// MaxBatch bounds the writes one fsync covers; 0 means
	// DefaultMaxBatch.
	MaxBatch int
	// Log receives the writer's failures; nil means none.
	Log *zap.Logger
}

// Info says what Open found and did.
type Info struct {
	Created  bool  // the data directory had no log: Seed was written to a new one
	Seeded   int   // movies loaded from Seed
	Replayed int   // log records replayed
	LogBytes int64 // size of the log
	// Repaired is set when Open cut a bad log tail off; SavedTo holds it.
	Repaired *wal.CorruptError
	SavedTo  string
	// UpgradedFrom is the log version Open rewrote the log from (0: none);
	// the original is in BackupPath.
	UpgradedFrom int
	BackupPath   string
}

// Store is the movie database. Its methods are safe for concurrent use.
type Store struct {
	db       *memdb.MemDB
	wal      *wal.Log // nil in memory
	lock     *os.File
	log      *zap.Logger
	maxBatch int

	ops       chan *writeOp
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	count   atomic.Int64
	syncs   atomic.Uint64
	records atomic.Uint64
}

type writeOp struct {
	add   *Movie      // add this movie, or
	title string      // edit the movie with this title
	set   *Changes    // by these changes
	done  chan result // buffered: the writer never blocks on it
}

type result struct {
	movie Movie
	err   error
}

// record is one log record, the payload of a wal record: the whole movie as
// stored after an add or an edit, as JSON {"op":"put","movie":{...}} with
// Movie's json names. Replaying puts it, replacing any movie of the same
// title, so the log needs no other kind of record. Logs of wal version 1
// (written when this was the wire format's movie) have the same payload;
// a new payload shape would need a new wal version.
type record struct {
	Op    string `json:"op"` // "put"
	Movie *Movie `json:"movie"`
}

// Open opens the database in opts.Dir, creating it with opts.Seed when it
// has no log, and replays the log. A bad log tail is an error (a
// *wal.CorruptError) unless opts.Repair is set.
func Open(opts Options) (*Store, Info, error) {
	var info Info
	db, err := memdb.NewMemDB(Schema())
	if err != nil {
		return nil, info, err
	}
	s := &Store{
		db:       db,
		log:      opts.Log,
		maxBatch: opts.MaxBatch,
		ops:      make(chan *writeOp),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.maxBatch <= 0 {
		s.maxBatch = DefaultMaxBatch
	}
	if opts.Dir == "" {
		if err := s.load(opts.Seed); err != nil {
			return nil, info, err
		}
		info.Seeded = len(opts.Seed)
	} else if info, err = s.openDir(opts); err != nil {
		if s.lock != nil {
			s.lock.Close()
		}
		return nil, info, err
	}
	go s.writer()
	return s, info, nil
}

func (s *Store) load(seed []Movie) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	n := 0
	for i := range seed {
		if err := check(&seed[i]); err != nil {
			return fmt.Errorf("seed movie %d: %w", i+1, err)
		}
		added, err := put(txn, seed[i])
		if err != nil {
			return err
		}
		if added {
			n++
		}
	}
	txn.Commit()
	s.count.Add(int64(n))
	return nil
}

// put inserts a copy of m, replacing a movie of the same title, and
// reports whether the title was new.
func put(txn *memdb.Txn, m Movie) (added bool, err error) {
	old, err := txn.First(TableMovies, IndexID, m.Title)
	if err != nil {
		return false, err
	}
	m.Genres = slices.Clone(m.Genres)
	if m.Genres == nil {
		m.Genres = []string{}
	}
	if err := txn.Insert(TableMovies, &m); err != nil {
		return false, err
	}
	return old == nil, nil
}

func (s *Store) openDir(opts Options) (Info, error) {
	var info Info
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return info, err
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return info, err
	}
	s.lock = lock
	path := filepath.Join(opts.Dir, LogFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		recs := make([][]byte, 0, len(opts.Seed))
		for i := range opts.Seed {
			if err := check(&opts.Seed[i]); err != nil {
				return info, fmt.Errorf("seed movie %d: %w", i+1, err)
			}
			recs = append(recs, encodeRecord(opts.Seed[i]))
		}
		if err := wal.Create(path, recs); err != nil {
			return info, err
		}
		info.Created, info.Seeded = true, len(opts.Seed)
	} else if err != nil {
		return info, err
	}

	txn := s.db.Txn(true)
	defer txn.Abort()
	n := 0
	l, rep, err := wal.Open(path, opts.Repair, func(b []byte) error {
		m, err := decodeRecord(b)
		if err != nil {
			return err
		}
		added, err := put(txn, m)
		if added {
			n++
		}
		return err
	})
	info.Replayed, info.LogBytes = rep.Records, rep.Size
	info.Repaired, info.SavedTo = rep.Repaired, rep.SavedTo
	info.UpgradedFrom, info.BackupPath = rep.UpgradedFrom, rep.BackupPath
	if err != nil {
		return info, err
	}
	if rep.UpgradedFrom != 0 {
		s.log.Info("write-ahead log rewritten in the current format",
			zap.String("path", path), zap.Int("from_version", rep.UpgradedFrom), zap.String("original", rep.BackupPath))
	}
	txn.Commit()
	s.count.Store(int64(n))
	s.wal = l
	return info, nil
}

func encodeRecord(m Movie) []byte {
	b, err := json.Marshal(record{Op: "put", Movie: &m})
	if err != nil {
		panic("store: encode record: " + err.Error()) // a Movie always encodes
	}
	return b
}

func decodeRecord(b []byte) (Movie, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Movie{}, err
	}
	if r.Op != "put" || r.Movie == nil {
		return Movie{}, fmt.Errorf("unknown record op %q", r.Op)
	}
	if err := check(r.Movie); err != nil {
		return Movie{}, err
	}
	return *r.Movie, nil
}

// Get returns the movie titled title, case-insensitively.
func (s *Store) Get(title string) (Movie, bool) {
	txn := s.db.Txn(false)
	raw, err := txn.First(TableMovies, IndexID, title)
	if err != nil || raw == nil {
		return Movie{}, false
	}
	return clone(raw.(*Movie)), true
}

// clone copies a stored movie, so that no caller can modify what the
// database holds.
func clone(m *Movie) Movie {
	c := *m
	c.Genres = slices.Clone(m.Genres)
	return c
}

// Page returns up to limit movies in title order (lowercased), starting
// after cursor ("" for the first page), and the cursor of the next page, ""
// when there is none. A page read is one consistent snapshot; successive
// pages see later writes.
func (s *Store) Page(cursor string, limit int) ([]Movie, string) {
	ms := make([]Movie, 0, min(limit, 64))
	next := s.Range(cursor, limit, func(m *Movie) { ms = append(ms, clone(m)) })
	return ms, next
}

// Range calls fn with each movie of the page Page would return, in order,
// and returns the cursor of the next page. fn sees the stored movie
// itself, without a copy: it must not modify it or keep it after the call.
func (s *Store) Range(cursor string, limit int, fn func(m *Movie)) (next string) {
	cursor = strings.ToLower(cursor)
	txn := s.db.Txn(false)
	it, err := txn.LowerBound(TableMovies, IndexID, cursor)
	if err != nil {
		return ""
	}
	n := 0
	var last *Movie
	for raw := it.Next(); raw != nil; raw = it.Next() {
		m := raw.(*Movie)
		if cursor != "" && strings.ToLower(m.Title) == cursor {
			continue // the last movie of the previous page
		}
		if n == limit {
			return strings.ToLower(last.Title)
		}
		fn(m)
		last = m
		n++
	}
	return ""
}

// Len reports how many movies are stored.
func (s *Store) Len() int { return int(s.count.Load()) }

// Syncs reports how many batches of writes were made durable, one fsync
// each.
func (s *Store) Syncs() uint64 { return s.syncs.Load() }

// Records reports how many writes were committed (made durable, or applied
// in memory without a data directory).
func (s *Store) Records() uint64 { return s.records.Load() }

// Add stores a new movie and returns it as stored (Genres never nil). It
// fails with ErrExists (in a *TitleError) when a movie has the title,
// ErrInvalid, ErrLogFailed when the change cannot be made durable (then
// whether it was is unknown), ErrClosed after Close, or ErrCanceled.
func (s *Store) Add(ctx context.Context, m Movie) (Movie, error) {
	if err := check(&m); err != nil {
		return Movie{}, err
	}
	m.Genres = slices.Clone(m.Genres) // the caller may reuse its slice
	if m.Genres == nil {
		m.Genres = []string{}
	}
	return s.submit(ctx, &writeOp{add: &m})
}

// Edit changes the fields of the movie titled title (case-insensitively)
// that c sets, and returns the movie as stored. It fails with ErrNotFound
// (in a *TitleError) when no movie has the title, and otherwise as Add.
func (s *Store) Edit(ctx context.Context, title string, c Changes) (Movie, error) {
	if c.Empty() {
		return Movie{}, fmt.Errorf("%w: edit changes nothing", ErrInvalid)
	}
	if c.Genres != nil {
		g := slices.Clone(*c.Genres)
		c.Genres = &g
	}
	return s.submit(ctx, &writeOp{title: title, set: &c})
}

func (s *Store) submit(ctx context.Context, op *writeOp) (Movie, error) {
	op.done = make(chan result, 1)
	select {
	case s.ops <- op:
	case <-s.quit:
		return Movie{}, ErrClosed
	case <-ctx.Done():
		return Movie{}, fmt.Errorf("%w: not stored: %v", ErrCanceled, context.Cause(ctx))
	}
	select {
	case r := <-op.done:
		return r.movie, r.err
	case <-ctx.Done():
		// The writer has it and will finish it; the caller just stops waiting.
		return Movie{}, fmt.Errorf("%w: outcome unknown: %v", ErrCanceled, context.Cause(ctx))
	}
}

// writer is the one goroutine that writes to the database.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*writeOp, 0, s.maxBatch)
	for {
		select {
		case op := <-s.ops:
			batch = append(batch[:0], op)
		drain:
			for len(batch) < s.maxBatch {
				select {
				case op := <-s.ops:
					batch = append(batch, op)
				default:
					break drain
				}
			}
			s.commit(batch)
			clear(batch) // drop references for the collector
		case <-s.quit:
			return
		}
	}
}

// commit applies batch in one transaction, makes it durable with one
// append, then commits and answers every op.
func (s *Store) commit(batch []*writeOp) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	results := make([]result, len(batch))
	recs := make([][]byte, 0, len(batch))
	added := 0
	for i, op := range batch {
		m, err := apply(txn, op)
		results[i] = result{movie: m, err: err}
		if err == nil {
			recs = append(recs, encodeRecord(m))
			if op.add != nil {
				added++
			}
		}
	}
	if len(recs) > 0 && s.wal != nil {
		if err := s.wal.Append(recs...); err != nil {
			if !errors.Is(err, wal.ErrBroken) {
				s.log.Error("cannot write the log; refusing every write from now on",
					zap.String("path", s.wal.Path()), zap.Error(err))
			}
			fail := fmt.Errorf("%w: %w", ErrLogFailed, err)
			for i := range results {
				if results[i].err == nil {
					results[i] = result{err: fail}
				}
			}
			s.reply(batch, results)
			return
		}
		s.syncs.Add(1)
	}
	txn.Commit()
	s.count.Add(int64(added))
	s.records.Add(uint64(len(recs)))
	s.reply(batch, results)
}

func (s *Store) reply(batch []*writeOp, results []result) {
	for i, op := range batch {
		op.done <- results[i]
	}
}

// apply makes one write in txn and returns the movie as stored.
func apply(txn *memdb.Txn, op *writeOp) (Movie, error) {
	if op.add != nil {
		old, err := txn.First(TableMovies, IndexID, op.add.Title)
		if err != nil {
			return Movie{}, fmt.Errorf("memdb: %w", err)
		}
		if old != nil {
			return Movie{}, &TitleError{Err: ErrExists, Title: old.(*Movie).Title}
		}
		if _, err := put(txn, *op.add); err != nil {
			return Movie{}, fmt.Errorf("memdb: %w", err)
		}
		return *op.add, nil
	}
	old, err := txn.First(TableMovies, IndexID, op.title)
	if err != nil {
		return Movie{}, fmt.Errorf("memdb: %w", err)
	}
	if old == nil {
		return Movie{}, &TitleError{Err: ErrNotFound, Title: op.title}
	}
	// apply returns a new Movie; the stored one is never modified.
	m := op.set.apply(*old.(*Movie))
	if err := check(&m); err != nil {
		return Movie{}, err
	}
	if _, err := put(txn, m); err != nil {
		return Movie{}, fmt.Errorf("memdb: %w", err)
	}
	return m, nil
}

// Close stops the writer after the batch it is committing, fails writes
// still waiting with ErrClosed, and closes the log. Safe to call twice.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		if s.wal != nil {
			err = s.wal.Close()
		}
		if s.lock != nil {
			s.lock.Close()
		}
	})
	return err
}
