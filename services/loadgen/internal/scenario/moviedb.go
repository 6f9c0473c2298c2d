package scenario

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/moviedb/proto"
)

// Catalog limits: how much of a server's database a generator learns.
const (
	catalogPage  = proto.MaxPageSize
	catalogPages = 100
	// pageSize is the page an "all" request of moviedb-mix asks for.
	pageSize = 20
	// keepAdded bounds the titles a generator remembers adding to a
	// server, to edit them later.
	keepAdded = 1024
)

// moviedb spreads requests over the servers of Target, one request per
// connection as the protocol has it.
type moviedb struct {
	o       Options
	servers []*movieServer
	mix     bool
	// seq numbers requests over all workers: it picks the server, the
	// title and (moviedb-mix) the operation.
	seq *atomic.Uint64
}

// movieServer is what a generator knows of one server.
type movieServer struct {
	addr string

	mu     sync.Mutex
	titles []string // learnt with "all" before the first request
	added  []string // added by this generator, to edit
	nadded int
}

func newMovieDB(mix bool) func(o Options) (engine.Scenario, error) {
	return func(o Options) (engine.Scenario, error) {
		s := &moviedb{o: o, mix: mix, seq: new(atomic.Uint64)}
		for addr := range strings.SplitSeq(o.Target, ",") {
			if addr = strings.TrimSpace(addr); addr != "" {
				s.servers = append(s.servers, &movieServer{addr: addr})
			}
		}
		if len(s.servers) == 0 {
			return nil, errors.New("no moviedb server in the target")
		}
		return s, nil
	}
}

// NewWorker learns the titles of every server it does not know yet, so
// that the requests of the run ask for movies that exist. A server that
// cannot tell is asked again by the first request that goes to it, so that
// one server down fails only its share of the requests.
func (s *moviedb) NewWorker(ctx context.Context) (engine.Worker, error) {
	for _, srv := range s.servers {
		s.learn(ctx, srv)
	}
	return &moviedbWorker{s: s}, nil
}

func (s *moviedb) learn(ctx context.Context, srv *movieServer) error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.titles != nil {
		return nil
	}
	titles := []string{}
	cursor := ""
	for range catalogPages {
		resp, err := s.exchange(ctx, srv.addr, proto.Request{Op: proto.OpAll, Cursor: cursor, Limit: catalogPage})
		if err != nil {
			return fmt.Errorf("learn the titles of %s: %w", srv.addr, err)
		}
		for _, m := range resp.Movies {
			titles = append(titles, m.Title)
		}
		if cursor = resp.Next; cursor == "" {
			break
		}
	}
	srv.titles = titles
	return nil
}

// exchange connects, sends req and returns an OK response; a response
// with an error is KindServerError.
func (s *moviedb) exchange(ctx context.Context, addr string, req proto.Request) (proto.Response, error) {
	c, err := dial(ctx, "tcp", addr, s.o.Timeout)
	if err != nil {
		return proto.Response{}, err
	}
	defer c.Close()
	if err := c.arm(); err != nil {
		return proto.Response{}, err
	}
	if _, err := c.Write(proto.AppendRequest(nil, req)); err != nil {
		return proto.Response{}, engine.Wrap(err)
	}
	resp, err := proto.ReadResponse(c)
	if err != nil {
		// What is no socket error is a response that did not decode.
		if engine.KindOf(err) == engine.KindIO {
			return resp, &engine.Error{Kind: engine.KindWrongReply, Err: err}
		}
		return resp, engine.Wrap(err)
	}
	if !resp.OK {
		return resp, &engine.Error{Kind: engine.KindServerError, Err: resp.Error}
	}
	return resp, nil
}

type moviedbWorker struct{ s *moviedb }

func (w *moviedbWorker) Close() error { return nil }

// Do sends one request to the next server: get of a title it holds, or for
// moviedb-mix, in every 20: 14 get, 2 all (a page), 2 add (a new title) and
// 2 edit (of a movie this generator added).
func (w *moviedbWorker) Do(ctx context.Context) error {
	s := w.s
	seq := s.seq.Add(1)
	srv := s.servers[seq%uint64(len(s.servers))]
	op := proto.OpGet
	if s.mix {
		switch (seq / uint64(len(s.servers))) % 20 {
		case 3, 13:
			op = proto.OpAll
		case 6, 16:
			op = proto.OpAdd
		case 9, 19:
			op = proto.OpEdit
		}
	}
	switch op {
	case proto.OpAll:
		return w.page(ctx, srv, seq)
	case proto.OpAdd:
		return w.add(ctx, srv, seq)
	case proto.OpEdit:
		if title, ok := srv.toEdit(seq); ok {
			return w.edit(ctx, srv, title, seq)
		}
		return w.add(ctx, srv, seq)
	}
	return w.get(ctx, srv, seq)
}

func (w *moviedbWorker) get(ctx context.Context, srv *movieServer, seq uint64) error {
	if err := w.s.learn(ctx, srv); err != nil {
		return err
	}
	srv.mu.Lock()
	n := len(srv.titles)
	var title string
	if n > 0 {
		title = srv.titles[(seq/uint64(len(w.s.servers)))%uint64(n)]
	}
	srv.mu.Unlock()
	if n == 0 {
		return engine.Errorf(engine.KindServerError, "%s holds no movie to get", srv.addr)
	}
	resp, err := w.s.exchange(ctx, srv.addr, proto.Request{Op: proto.OpGet, Title: title})
	if proto.ErrorCode(err) == proto.CodeNotFound {
		return engine.Errorf(engine.KindWrongReply, "%q listed by the server but not found", title)
	}
	if err != nil {
		return err
	}
	if resp.Movie == nil || !strings.EqualFold(resp.Movie.Title, title) {
		return engine.Errorf(engine.KindWrongReply, "get %q answered with another movie", title)
	}
	return nil
}

func (w *moviedbWorker) page(ctx context.Context, srv *movieServer, seq uint64) error {
	if err := w.s.learn(ctx, srv); err != nil {
		return err
	}
	srv.mu.Lock()
	var cursor string
	if n := len(srv.titles); n > 0 {
		cursor = srv.titles[seq%uint64(n)]
	}
	srv.mu.Unlock()
	resp, err := w.s.exchange(ctx, srv.addr, proto.Request{Op: proto.OpAll, Cursor: cursor, Limit: pageSize})
	if err != nil {
		return err
	}
	if len(resp.Movies) > pageSize {
		return engine.Errorf(engine.KindWrongReply, "page of %d movies, asked for %d", len(resp.Movies), pageSize)
	}
	prev := strings.ToLower(cursor)
	for _, m := range resp.Movies {
		t := strings.ToLower(m.Title)
		if t <= prev {
			return engine.Errorf(engine.KindWrongReply, "page out of title order at %q", m.Title)
		}
		prev = t
	}
	return nil
}

func (w *moviedbWorker) add(ctx context.Context, srv *movieServer, seq uint64) error {
	m := proto.Movie{
		Title:    "loadgen " + w.s.o.Tag + " " + strconv.FormatUint(seq, 36),
		Year:     proto.MinYear + int(seq%200),
		Director: "Load Generator",
		Genres:   []string{"Test"},
		Runtime:  int(seq % 200),
		Rating:   "NR",
	}
	resp, err := w.s.exchange(ctx, srv.addr, proto.Request{Op: proto.OpAdd, Movie: &m})
	if err != nil {
		return err
	}
	if resp.Movie == nil || resp.Movie.Title != m.Title || resp.Movie.Year != m.Year || resp.Movie.Runtime != m.Runtime {
		return engine.Errorf(engine.KindWrongReply, "add %q answered with another movie", m.Title)
	}
	srv.remember(m.Title)
	return nil
}

func (w *moviedbWorker) edit(ctx context.Context, srv *movieServer, title string, seq uint64) error {
	runtime := int(seq%proto.MaxRuntime) + 1
	resp, err := w.s.exchange(ctx, srv.addr, proto.Request{Op: proto.OpEdit, Title: title, Set: &proto.Changes{Runtime: &runtime}})
	if err != nil {
		return err
	}
	if resp.Movie == nil || resp.Movie.Title != title || resp.Movie.Runtime != runtime {
		return engine.Errorf(engine.KindWrongReply, "edit of %q not applied in the answer", title)
	}
	return nil
}

func (srv *movieServer) remember(title string) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.added) < keepAdded {
		srv.added = append(srv.added, title)
	} else {
		srv.added[srv.nadded%keepAdded] = title
	}
	srv.nadded++
}

func (srv *movieServer) toEdit(seq uint64) (string, bool) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.added) == 0 {
		return "", false
	}
	return srv.added[seq%uint64(len(srv.added))], true
}
