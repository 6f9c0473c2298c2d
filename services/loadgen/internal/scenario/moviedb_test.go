package scenario

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/loadgen/internal/labtest"
	"github.com/socklab/socklab/services/moviedb/proto"
)

func TestMovieDBAgainstServers(t *testing.T) {
	bin := labtest.Build(t, "moviedb", "moviedb-server")
	var addrs []string
	for range 3 {
		// Port 0: any free port; in-memory database seeded with the
		// builtin films.
		addrs = append(addrs, labtest.Start(t, bin, nil, "-host", "127.0.0.1", "-ports", "0").Addr)
	}
	target := strings.Join(addrs, ",")
	for _, name := range []string{"moviedb-get", "moviedb-mix"} {
		st := run(t, name, opts(target), engine.Config{Workers: 4, Requests: 600})
		wantAllGood(t, st, 600)
	}
	st := run(t, "moviedb-mix", opts(target), engine.Config{Workers: 4, Rate: 1000, Requests: 200})
	wantAllGood(t, st, 200)
}

// fakeMovieDB serves one request per connection with answer.
func fakeMovieDB(t *testing.T, answer func(req proto.Request) proto.Response) string {
	return fakeTCP(t, func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadSlice('\n')
		if err != nil {
			return
		}
		req, err := proto.DecodeRequest(line[:len(line)-1])
		var resp proto.Response
		if err != nil {
			resp = proto.Response{Error: proto.Errorf(proto.CodeBadRequest, "%v", err)}
		} else {
			resp = answer(req)
		}
		c.Write(proto.AppendResponse(nil, resp))
	})
}

// fakeDB is a right moviedb server holding titles, for fakes to differ from.
type fakeDB struct {
	mu     sync.Mutex
	movies map[string]proto.Movie
}

func newFakeDB(titles ...string) *fakeDB {
	db := &fakeDB{movies: map[string]proto.Movie{}}
	for _, title := range titles {
		db.movies[strings.ToLower(title)] = proto.Movie{Title: title, Year: 2000, Director: "D", Genres: []string{}}
	}
	return db
}

func (db *fakeDB) answer(req proto.Request) proto.Response {
	db.mu.Lock()
	defer db.mu.Unlock()
	switch req.Op {
	case proto.OpGet:
		m, ok := db.movies[strings.ToLower(req.Title)]
		if !ok {
			return proto.Response{Error: proto.Errorf(proto.CodeNotFound, "no")}
		}
		return proto.Response{OK: true, Movie: &m}
	case proto.OpAll:
		var keys []string
		for k := range db.movies {
			if k > strings.ToLower(req.Cursor) {
				keys = append(keys, k)
			}
		}
		sortStrings(keys)
		resp := proto.Response{OK: true, Movies: []proto.Movie{}}
		for i, k := range keys {
			if i == req.Limit {
				resp.Next = keys[i-1]
				break
			}
			resp.Movies = append(resp.Movies, db.movies[k])
		}
		return resp
	case proto.OpAdd:
		db.movies[strings.ToLower(req.Movie.Title)] = *req.Movie
		return proto.Response{OK: true, Movie: req.Movie}
	case proto.OpEdit:
		m := req.Set.Apply(db.movies[strings.ToLower(req.Title)])
		db.movies[strings.ToLower(req.Title)] = m
		return proto.Response{OK: true, Movie: &m}
	}
	return proto.Response{Error: proto.Errorf(proto.CodeBadRequest, "op")}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestMovieDBAnswers(t *testing.T) {
	titles := []string{"Alien", "Aliens", "Heat", "Jaws", "Up"}
	for i := range 45 {
		titles = append(titles, fmt.Sprintf("Film %02d", i))
	}
	tests := []struct {
		name     string
		scenario string
		answer   func(db *fakeDB) func(req proto.Request) proto.Response
		kind     string
		want     int64 // of 40 requests
	}{
		{name: "right get", scenario: "moviedb-get", answer: func(db *fakeDB) func(proto.Request) proto.Response { return db.answer }},
		{name: "right mix", scenario: "moviedb-mix", answer: func(db *fakeDB) func(proto.Request) proto.Response { return db.answer }},
		{name: "other movie", scenario: "moviedb-get", kind: engine.KindWrongReply, want: 40,
			answer: func(db *fakeDB) func(proto.Request) proto.Response {
				return func(req proto.Request) proto.Response {
					if req.Op == proto.OpGet {
						req.Title = "Jaws 2"
					}
					return db.answer(req)
				}
			}},
		{name: "listed but not found", scenario: "moviedb-get", kind: engine.KindWrongReply, want: 40,
			answer: func(db *fakeDB) func(proto.Request) proto.Response {
				return func(req proto.Request) proto.Response {
					if req.Op == proto.OpGet {
						return proto.Response{Error: proto.Errorf(proto.CodeNotFound, "no")}
					}
					return db.answer(req)
				}
			}},
		{name: "busy", scenario: "moviedb-get", kind: engine.KindServerError, want: 40,
			answer: func(db *fakeDB) func(proto.Request) proto.Response {
				return func(req proto.Request) proto.Response {
					if req.Op == proto.OpGet {
						return proto.Response{Error: proto.Errorf(proto.CodeBusy, "busy")}
					}
					return db.answer(req)
				}
			}},
		{name: "edit not applied", scenario: "moviedb-mix", kind: engine.KindWrongReply, want: 4,
			answer: func(db *fakeDB) func(proto.Request) proto.Response {
				return func(req proto.Request) proto.Response {
					if req.Op == proto.OpEdit {
						req.Set.Runtime = nil
						year := 1999
						req.Set.Year = &year
					}
					return db.answer(req)
				}
			}},
		{name: "page unordered", scenario: "moviedb-mix", kind: engine.KindWrongReply, want: 4,
			answer: func(db *fakeDB) func(proto.Request) proto.Response {
				return func(req proto.Request) proto.Response {
					resp := db.answer(req)
					if req.Op == proto.OpAll && req.Limit < 100 && len(resp.Movies) > 1 {
						resp.Movies[0], resp.Movies[1] = resp.Movies[1], resp.Movies[0]
					}
					return resp
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeMovieDB(t, tt.answer(newFakeDB(titles...)))
			st := run(t, tt.scenario, opts(addr), engine.Config{Workers: 1, Requests: 40})
			if st.Total.Requests != 40 || st.Total.Errors[tt.kind] != tt.want || st.Total.Successes != 40-tt.want {
				t.Errorf("counts = %+v, want %d of kind %q and the rest good", st.Total, tt.want, tt.kind)
			}
		})
	}
}

// One server of the fleet down fails only its share of the requests.
func TestMovieDBServerDown(t *testing.T) {
	up := fakeMovieDB(t, newFakeDB("Alien", "Heat").answer)
	st := run(t, "moviedb-get", opts(up+","+closedPort(t)), engine.Config{Workers: 2, Requests: 40})
	if st.Total.Successes != 20 || st.Total.Errors[engine.KindConnect] != 20 {
		t.Errorf("counts = %+v, want 20 successes and 20 connect errors", st.Total)
	}
}
