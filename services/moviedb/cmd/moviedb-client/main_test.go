package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/moviedb/internal/server"
	"github.com/socklab/socklab/services/moviedb/internal/store"
	"github.com/socklab/socklab/services/moviedb/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func movie(title string, year int, director string, genres ...string) proto.Movie {
	return proto.Movie{Title: title, Year: year, Director: director, Genres: append([]string{}, genres...), Runtime: 100, Rating: "R"}
}

// fleetServer is one real moviedb server on loopback.
type fleetServer struct {
	addr  string
	store *store.Store
}

func startServer(t *testing.T, seed ...proto.Movie) fleetServer {
	t.Helper()
	st, _, err := store.Open(store.Options{Seed: server.ToStore(seed), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h := &server.Handler{Store: st, Log: zap.NewNop(), Metrics: server.NewMetrics(prometheus.NewRegistry(), st)}
	addr := nettest.ServeTCP(t, h.TCPServer(server.Config{IdleTimeout: 5 * time.Second}))
	t.Cleanup(func() { st.Close() }) // after the server's shutdown: cleanups run last first
	return fleetServer{addr: addr, store: st}
}

// downServer returns an address where connections are refused.
func downServer(t *testing.T) string { return nettest.RefusedAddr(t) }

// threeServers starts the test fleet: s1 and s2 disagree on Alien's year
// and genres, only s1 has Heat, only s3 has Zodiac.
func threeServers(t *testing.T) (s1, s2, s3 fleetServer) {
	s1 = startServer(t, movie("Alien", 1979, "Ridley Scott", "Horror", "Sci-Fi"), movie("Heat", 1995, "Michael Mann", "Crime"))
	s2 = startServer(t, movie("Alien", 1980, "Ridley Scott", "Horror"))
	s3 = startServer(t, movie("Zodiac", 2007, "David Fincher", "Crime"))
	return
}

type result struct {
	out, errOut string
	code        int
}

func runClient(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), nettest.Timeout)
	defer cancel()
	err := run(ctx, args, env, strings.NewReader(stdin), &out, &errOut)
	code := service.ExitCode(err, &errOut)
	return result{out: out.String(), errOut: errOut.String(), code: code}
}

// names replaces server addresses in s by names, for golden files.
func names(s string, addrs map[string]string) string {
	for a, n := range addrs {
		s = strings.ReplaceAll(s, a, n)
	}
	return s
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name + ".golden"
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestFleetSession runs get, all, edit and add against three real servers,
// then again with one down, and compares the whole output with
// testdata/fleet.golden (addresses replaced by s1, s2, s3, down).
func TestFleetSession(t *testing.T) {
	s1, s2, s3 := threeServers(t)
	down := downServer(t)
	addrs := map[string]string{s1.addr: "s1", s2.addr: "s2", s3.addr: "s3", down: "down"}
	up := []string{"MOVIEDB_SERVERS=" + s1.addr + "," + s2.addr + "," + s3.addr, "MOVIEDB_SERVERS_FILE=" + t.TempDir() + "/none.json"}
	// down refuses at once: no step waits for the timeout, which must not
	// expire for a live server's fsynced add on a loaded machine.
	withDown := []string{"MOVIEDB_SERVERS=" + s1.addr + "," + s2.addr + "," + s3.addr + "," + down, "MOVIEDB_TIMEOUT=" + nettest.Timeout.String(),
		"MOVIEDB_SERVERS_FILE=" + t.TempDir() + "/none.json"}
	steps := []struct {
		env      []string
		args     []string
		wantCode int
	}{
		{up, []string{"get", "alien"}, 0},
		{up, []string{"get", "Zodiac"}, 0},
		{up, []string{"get", "No", "Such", "Film"}, 1},
		{up, []string{"all"}, 0},
		{up, []string{"edit", "Alien", "year=1979", "genres=Horror,Sci-Fi", "runtime=117"}, 0},
		{up, []string{"get", "Alien"}, 0},
		{up, []string{"add", "Heat", "year=1995", "director=Michael Mann", "genres=Crime,Drama", "runtime=170"}, 0},
		{up, []string{"edit", "Nothing", "year=2000"}, 1},
		{withDown, []string{"get", "Heat"}, 1},
		{withDown, []string{"all"}, 1},
		{withDown, []string{"add", "Ronin", "year=1998", "director=John Frankenheimer"}, 1},
	}
	var transcript strings.Builder
	for _, st := range steps {
		r := runClient(t, st.env, "", st.args...)
		fmt.Fprintf(&transcript, "$ moviedb-client %s   # exit %d\n%s", strings.Join(quoteArgs(st.args), " "), r.code, r.out)
		if r.errOut != "" {
			fmt.Fprintf(&transcript, "stderr: %s", r.errOut)
		}
		transcript.WriteString("\n")
		if r.code != st.wantCode {
			t.Errorf("moviedb-client %q: exit %d, want %d\n%s%s", st.args, r.code, st.wantCode, r.out, r.errOut)
		}
	}
	golden(t, "fleet", names(transcript.String(), addrs))

	// The semantics, checked on the servers themselves.
	for _, s := range []fleetServer{s1, s2} {
		m, _ := s.store.Get("alien")
		if m.Year != 1979 || m.Runtime != 117 || !reflect.DeepEqual(m.Genres, []string{"Horror", "Sci-Fi"}) {
			t.Errorf("%s: Alien after edit = %+v", addrs[s.addr], m)
		}
	}
	if _, ok := s3.store.Get("alien"); ok {
		t.Error("s3: edit added Alien to a server that lacked it")
	}
	if m, _ := s1.store.Get("heat"); m.Runtime != 100 || len(m.Genres) != 1 {
		t.Errorf("s1: add replaced its own Heat: %+v", m)
	}
	for _, s := range []fleetServer{s2, s3} {
		if m, ok := s.store.Get("heat"); !ok || m.Runtime != 170 {
			t.Errorf("%s: Heat after add = %+v, %v; want added", addrs[s.addr], m, ok)
		}
		if _, ok := s.store.Get("ronin"); !ok {
			t.Errorf("%s: Ronin not added while another server was down", addrs[s.addr])
		}
	}
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " ") {
			a = fmt.Sprintf("%q", a)
		}
		out[i] = a
	}
	return out
}

func TestServerListFile(t *testing.T) {
	s1 := startServer(t, movie("Alien", 1979, "Ridley Scott"))
	file := t.TempDir() + "/servers.json"
	env := []string{"MOVIEDB_SERVERS_FILE=" + file}
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"get", "Alien"}, 2, ""},
		{[]string{"serverlist"}, 0, "0 servers in " + file},
		{[]string{"addserver", s1.addr}, 0, "added " + s1.addr + "; " + file + " lists 1 servers"},
		{[]string{"addserver", "127.0.0.1:1"}, 0, "lists 2 servers"},
		{[]string{"addserver", s1.addr}, 2, ""},
		{[]string{"addserver", "nonsense"}, 2, ""},
		{[]string{"deleteserver", "127.0.0.1:1"}, 0, "deleted 127.0.0.1:1"},
		{[]string{"deleteserver", "127.0.0.1:1"}, 2, ""},
		{[]string{"serverlist"}, 0, "1 servers in " + file + ":\n  " + s1.addr + "\n"},
		{[]string{"get", "Alien"}, 0, "Alien (1979) | Ridley Scott | 100 min | R"},
	}
	for _, st := range steps {
		r := runClient(t, env, "", st.args...)
		if r.code != st.wantCode || !strings.Contains(r.out, st.wantOut) {
			t.Errorf("moviedb-client %q: exit %d, output %q %q; want exit %d with %q", st.args, r.code, r.out, r.errOut, st.wantCode, st.wantOut)
		}
	}
	b, _ := os.ReadFile(file)
	if want := "{\n  \"servers\": [\n    \"" + s1.addr + "\"\n  ]\n}\n"; string(b) != want {
		t.Errorf("servers file = %q, want %q", b, want)
	}
	// The -servers flag names the file too; MOVIEDB_SERVERS overrides it.
	r := runClient(t, []string{"MOVIEDB_SERVERS=127.0.0.1:9,127.0.0.1:10"}, "", "-servers", file, "serverlist")
	if !strings.Contains(r.out, "2 servers from MOVIEDB_SERVERS (overriding "+file+")") {
		t.Errorf("serverlist with MOVIEDB_SERVERS: %q", r.out)
	}
}

func TestInteractive(t *testing.T) {
	s1 := startServer(t, movie("Alien", 1979, "Ridley Scott", "Horror"))
	env := []string{"MOVIEDB_SERVERS=" + s1.addr, "MOVIEDB_SERVERS_FILE=" + t.TempDir() + "/s.json"}
	stdin := strings.Join([]string{
		"get",                      // asks for the title
		"alien",                    //
		`edit "Alien" runtime=117`, // quoted words
		"add",                      // asks for every field
		"Heat", "1995", "Michael Mann", "Crime, Drama", "170", "R",
		"frobnicate", // an error does not end the session
		"quit",
		"get Heat", // never read
	}, "\n")
	r := runClient(t, env, stdin)
	for _, want := range []string{
		"moviedb client; commands:\nMovie requests",
		"addserver <host:port>",
		"moviedb> title: get \"alien\" from 1 servers:",
		"edited: Alien (1979) | Ridley Scott | Horror | 117 min | R",
		"year: director: genres (comma-separated, may be empty): runtime in minutes (may be empty): rating (may be empty): add \"Heat\"",
		"added: Heat (1995) | Michael Mann | Crime, Drama | 170 min | R",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("interactive output lacks %q:\n%s", want, r.out)
		}
	}
	if r.code != 0 || !strings.Contains(r.errOut, `error: unknown command "frobnicate"`) || strings.Contains(r.out, `get "Heat"`) {
		t.Errorf("interactive: exit %d, stderr %q; want 0, the error reported, nothing after quit", r.code, r.errOut)
	}
	// End of input ends the session too.
	if r := runClient(t, env, "serverlist"); r.code != 0 || !strings.Contains(r.out, "1 servers from MOVIEDB_SERVERS") {
		t.Errorf("session ended by EOF: exit %d, %q", r.code, r.out)
	}
}

func TestUsage(t *testing.T) {
	env := []string{"MOVIEDB_SERVERS=127.0.0.1:9", "MOVIEDB_SERVERS_FILE=" + t.TempDir() + "/s.json"}
	tests := []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{env, []string{"--help"}, 0, "usage: moviedb-client"},
		{env, []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{env, []string{"get"}, 2, "get needs a title"},
		{env, []string{"all", "x"}, 2, "all takes no arguments"},
		{env, []string{"edit", "Alien"}, 2, "edit needs a title and field=value"},
		{env, []string{"edit", "Alien", "title=X"}, 2, `unknown field "title"`},
		{env, []string{"edit", "Alien", "year=soon"}, 2, `year "soon": want a number`},
		{env, []string{"add", "Alien", "year=1979"}, 2, "missing director"},
		{env, []string{"-timeout", "0s", "all"}, 2, "timeout must be positive"},
		{[]string{"MOVIEDB_SERVERS=nope"}, []string{"all"}, 2, "MOVIEDB_SERVERS"},
	}
	for _, tt := range tests {
		r := runClient(t, tt.env, "", tt.args...)
		if r.code != tt.code || !strings.Contains(r.out+r.errOut, tt.want) {
			t.Errorf("moviedb-client %q: exit %d, %q %q; want exit %d with %q", tt.args, r.code, r.out, r.errOut, tt.code, tt.want)
		}
	}
}

func TestSplitLine(t *testing.T) {
	tests := []struct {
		give string
		want []string
	}{
		{"get Alien", []string{"get", "Alien"}},
		{`  get   "The Matrix"  `, []string{"get", "The Matrix"}},
		{`edit 'Amélie' director="Jean-Pierre Jeunet"`, []string{"edit", "Amélie", "director=Jean-Pierre Jeunet"}},
		{`add "" x`, []string{"add", "", "x"}},
		{"", nil},
	}
	for _, tt := range tests {
		got, err := splitLine(tt.give)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitLine(%q) = %q, %v; want %q", tt.give, got, err, tt.want)
		}
	}
	if _, err := splitLine(`get "Alien`); err == nil {
		t.Error("splitLine accepted an unclosed quote")
	}
}

func TestParseFields(t *testing.T) {
	y, r, d, rt := 1979, 117, "Ridley Scott", "R"
	g := []string{"Horror", "Sci-Fi"}
	got, err := parseFields([]string{"year=1979", "Runtime=117", "director=Ridley Scott", "genres=Horror, Sci-Fi,", "rating=R"})
	want := proto.Changes{Year: &y, Runtime: &r, Director: &d, Genres: &g, Rating: &rt}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseFields = %+v, %v; want %+v", got, err, want)
	}
}
