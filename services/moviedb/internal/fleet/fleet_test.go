package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/moviedb/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake serves canned responses: answer maps a request line to a response
// line ("" means never answer).
func fake(t *testing.T, answer func(req string) string) string {
	t.Helper()
	ln := nettest.ListenTCP(t)
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				resp := answer(strings.TrimSpace(line))
				if resp == "" {
					<-done // hang until the test ends
					return
				}
				c.Write([]byte(resp + "\n"))
			})
		}
	})
	return ln.Addr().String()
}

// downAddr returns an address where connections are refused.
func downAddr(t *testing.T) string { return nettest.RefusedAddr(t) }

func TestAsk(t *testing.T) {
	ok := fake(t, func(string) string {
		return `{"ok":true,"movie":{"title":"Alien","year":1979,"director":"R","genres":[],"runtime":0,"rating":""}}`
	})
	missing := fake(t, func(string) string { return `{"ok":false,"error":{"code":"not_found","message":"no"}}` })
	garbage := fake(t, func(string) string { return `hello` })
	hangs := fake(t, func(string) string { return "" })
	down := downAddr(t)
	// The timeout must expire for hangs and for no other server: 2s, not
	// less, so that a stall of a loaded machine does not outlast it.
	f := &Fleet{Servers: []string{ok, missing, garbage, hangs, down}, Timeout: 2 * time.Second}
	start := time.Now()
	as := f.Ask(context.Background(), proto.Request{Op: proto.OpGet, Title: "Alien"})
	if took := time.Since(start); took > 2*f.Timeout {
		t.Errorf("Ask took %v: the servers were not asked at once", took)
	}
	if len(as) != 5 {
		t.Fatalf("%d answers, want 5", len(as))
	}
	for i, s := range f.Servers {
		if as[i].Server != s {
			t.Errorf("answer %d from %s, want %s", i, as[i].Server, s)
		}
	}
	if as[0].Down() || !as[0].Resp.OK || as[0].Resp.Movie.Year != 1979 {
		t.Errorf("ok server: %+v", as[0])
	}
	if as[1].Down() || proto.ErrorCode(as[1].Resp.Error) != proto.CodeNotFound {
		t.Errorf("missing server: %+v", as[1])
	}
	if !as[2].Down() || !strings.Contains(as[2].Err.Error(), "not a JSON object") {
		t.Errorf("garbage server: %+v", as[2])
	}
	if !as[3].Down() || !strings.Contains(as[3].Err.Error(), "no answer within 2s") {
		t.Errorf("hanging server: %+v", as[3])
	}
	if !as[4].Down() || !strings.Contains(as[4].Err.Error(), "refused") {
		t.Errorf("down server: %+v", as[4])
	}
}

func TestAllPages(t *testing.T) {
	// Three pages of two, then one; the fake checks the cursors.
	pages := map[string]string{
		``:  `{"ok":true,"movies":[` + movie("A") + `,` + movie("B") + `],"next":"b"}`,
		`b`: `{"ok":true,"movies":[` + movie("C") + `],"next":"c"}`,
		`c`: `{"ok":true,"movies":[]}`,
	}
	srv := fake(t, func(line string) string {
		req, err := proto.DecodeRequest([]byte(line))
		if err != nil || req.Limit != 2 {
			return `{"ok":false,"error":{"code":"bad_request","message":"test"}}`
		}
		return pages[req.Cursor]
	})
	loops := fake(t, func(string) string { return `{"ok":true,"movies":[],"next":"x"}` })
	ls := (&Fleet{Servers: []string{srv, loops, downAddr(t)}}).All(context.Background(), 2)
	var titles []string
	for _, m := range ls[0].Movies {
		titles = append(titles, m.Title)
	}
	if ls[0].Err != nil || ls[0].Pages != 3 || !reflect.DeepEqual(titles, []string{"A", "B", "C"}) {
		t.Errorf("All from a paging server = %+v, want 3 pages A B C", ls[0])
	}
	if !errors.Is(ls[1].Err, ErrNoProgress) {
		t.Errorf("All from a looping server: %v, want ErrNoProgress", ls[1].Err)
	}
	if ls[2].Err == nil {
		t.Error("All from a down server succeeded")
	}
}

func movie(title string) string {
	return fmt.Sprintf(`{"title":%q,"year":2000,"director":"D","genres":[],"runtime":0,"rating":""}`, title)
}

func TestCompare(t *testing.T) {
	a := proto.Movie{Title: "Alien", Year: 1979, Director: "Ridley Scott", Genres: []string{"Horror"}, Runtime: 117, Rating: "R"}
	b := a
	b.Year = 1980
	b.Genres = []string{"Horror", "Sci-Fi"}
	c := a
	c.Title = "ALIEN"
	got := Compare([]Copy{{"s1", a}, {"s2", b}, {"s3", a}, {"s4", c}})
	want := []string{
		`title: "Alien" (s1, s2, s3) | "ALIEN" (s4)`,
		`year: 1979 (s1, s3, s4) | 1980 (s2)`,
		`genres: [Horror] (s1, s3, s4) | [Horror, Sci-Fi] (s2)`,
	}
	var gotS []string
	for _, d := range got {
		gotS = append(gotS, d.String())
	}
	if !reflect.DeepEqual(gotS, want) {
		t.Errorf("Compare = %q, want %q", gotS, want)
	}
	if d := Compare([]Copy{{"s1", a}, {"s2", a}}); d != nil {
		t.Errorf("Compare of equal copies = %v, want nil", d)
	}
}

func TestMerge(t *testing.T) {
	m := func(title string, year int) proto.Movie {
		return proto.Movie{Title: title, Year: year, Director: "D", Genres: []string{}}
	}
	ls := []Listing{
		{Server: "s1", Movies: []proto.Movie{m("Alien", 1979), m("Zodiac", 2007)}},
		{Server: "s2", Movies: []proto.Movie{m("alien", 1979), m("Heat", 1995)}},
		{Server: "s3", Err: errors.New("down")},
	}
	ts := Merge(ls)
	if len(ts) != 3 {
		t.Fatalf("Merge = %d titles, want 3", len(ts))
	}
	if ts[0].Copies[0].Movie.Title != "Alien" || len(ts[0].Copies) != 2 || len(ts[0].Diffs) != 1 || ts[0].Missing != nil {
		t.Errorf("Alien: %+v, want two copies differing in title case", ts[0])
	}
	if ts[1].Copies[0].Movie.Title != "Heat" || !reflect.DeepEqual(ts[1].Missing, []string{"s1"}) {
		t.Errorf("Heat: %+v, want missing on s1 only (s3 is down)", ts[1])
	}
	if ts[2].Copies[0].Movie.Title != "Zodiac" || !reflect.DeepEqual(ts[2].Missing, []string{"s2"}) {
		t.Errorf("Zodiac: %+v, want missing on s2", ts[2])
	}
}
