package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/moviedb/internal/fleet"
	"github.com/socklab/socklab/services/moviedb/internal/serverdb"
	"github.com/socklab/socklab/services/moviedb/proto"
)

const commandHelp = `Movie requests (sent to every server at once):
  get <title>                       get a movie's information from every server
  edit <title> field=value ...      edit a movie on every server that has it
  add <title> year=Y director=D [genres=A,B] [runtime=M] [rating=R]
                                    add a movie to every server that lacks it
  all                               list all movies of every server
Server maintenance (the server list file):
  addserver <host:port>             add a server to the list
  deleteserver <host:port>          delete a server from the list
  serverlist                        print the servers the client asks
Fields: year, director, genres (comma-separated), runtime (minutes), rating.
Interactively, get, edit and add without arguments ask for them; quit ends.`

// app runs commands against the fleet.
type app struct {
	cfg      Config
	db       *serverdb.DB
	override []string // MOVIEDB_SERVERS, when set
	fleet    *fleet.Fleet
	in       *lineReader
	out      io.Writer
	errOut   io.Writer
	asking   bool // interactive: missing arguments are asked for
}

// FailedError reports the servers that failed a request: down, timed out,
// or an unexpected error. The command exits 1 for it.
type FailedError struct {
	Failed []string
	Of     int
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("%d of %d servers failed: %s", len(e.Failed), e.Of, strings.Join(e.Failed, ", "))
}

func failed(failedServers []string, of int) error {
	if len(failedServers) == 0 {
		return nil
	}
	return &FailedError{Failed: failedServers, Of: of}
}

func usageErr(format string, args ...any) error { return service.Usage(fmt.Errorf(format, args...)) }

// exec runs one command line, already split into words.
func (a *app) exec(ctx context.Context, words []string) error {
	cmd, args := words[0], words[1:]
	switch cmd {
	case "get":
		return a.get(ctx, args)
	case "all":
		if len(args) > 0 {
			return usageErr("all takes no arguments")
		}
		return a.all(ctx)
	case "add":
		return a.add(ctx, args)
	case "edit":
		return a.edit(ctx, args)
	case "addserver", "deleteserver":
		if len(args) != 1 {
			return usageErr("%s takes one host:port", cmd)
		}
		return a.editServers(cmd, args[0])
	case "serverlist":
		return a.serverList()
	case "help":
		fmt.Fprintln(a.out, commandHelp)
		return nil
	default:
		return usageErr("unknown command %q; try help", cmd)
	}
}

// servers returns the servers to ask, or a usage error when there are none.
func (a *app) servers() ([]string, error) {
	s := a.db.Servers
	if a.override != nil {
		s = a.override
	}
	if len(s) == 0 {
		return nil, usageErr("no servers: add one with addserver host:port (to %s), or set MOVIEDB_SERVERS", a.db.Path)
	}
	return s, nil
}

func (a *app) ask(ctx context.Context, req proto.Request) ([]fleet.Answer, error) {
	s, err := a.servers()
	if err != nil {
		return nil, err
	}
	a.fleet.Servers = s
	return a.fleet.Ask(ctx, req), nil
}

// width is the column of server names.
func width(servers []string) int {
	w := 0
	for _, s := range servers {
		w = max(w, len(s))
	}
	return w
}

func formatMovie(m proto.Movie) string {
	parts := []string{fmt.Sprintf("%s (%d)", m.Title, m.Year), m.Director}
	if len(m.Genres) > 0 {
		parts = append(parts, strings.Join(m.Genres, ", "))
	}
	if m.Runtime > 0 {
		parts = append(parts, fmt.Sprintf("%d min", m.Runtime))
	}
	if m.Rating != "" {
		parts = append(parts, m.Rating)
	}
	return strings.Join(parts, " | ")
}

// printMovies prints one line per server: label and the movie of a good
// response, the error of a failed one, DOWN for none. It returns how many
// servers answered with a movie, and the servers that failed; the code
// expected is an answer, not a failure.
func (a *app) printMovies(as []fleet.Answer, label string, expected proto.Code) (movies int, bad []string) {
	w := width(a.fleet.Servers)
	for _, ans := range as {
		var line string
		switch {
		case ans.Down():
			line = "DOWN: " + ans.Err.Error()
			bad = append(bad, ans.Server)
		case ans.Resp.OK:
			movies++
			line = label + formatMovie(*ans.Resp.Movie)
		default:
			e := ans.Resp.Error
			line = fmt.Sprintf("%s: %s", e.Code, e.Message)
			if e.Code != expected {
				line = "ERROR " + line
				bad = append(bad, ans.Server)
			}
		}
		fmt.Fprintf(a.out, "  %-*s  %s\n", w, ans.Server, line)
	}
	return movies, bad
}

func (a *app) title(args []string, what string) (string, error) {
	title := strings.TrimSpace(strings.Join(args, " "))
	if title == "" && a.asking {
		var err error
		if title, err = a.in.prompt(a.out, "title: "); err != nil {
			return "", err
		}
	}
	if title == "" {
		return "", usageErr("%s needs a title", what)
	}
	return title, nil
}

func (a *app) get(ctx context.Context, args []string) error {
	title, err := a.title(args, "get")
	if err != nil {
		return err
	}
	if err := (proto.Request{Op: proto.OpGet, Title: title}).Validate(); err != nil {
		return usageErr("%s", message(err))
	}
	as, err := a.ask(ctx, proto.Request{Op: proto.OpGet, Title: title})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "get %q from %d servers:\n", title, len(as))
	_, bad := a.printMovies(as, "", proto.CodeNotFound)
	var copies []fleet.Copy
	var missing []string
	for _, ans := range as {
		switch {
		case ans.Down():
		case ans.Resp.OK:
			copies = append(copies, fleet.Copy{Server: ans.Server, Movie: *ans.Resp.Movie})
		case ans.Resp.Error.Code == proto.CodeNotFound:
			missing = append(missing, ans.Server)
		}
	}
	a.printDisagreement(title, copies, missing)
	if err := failed(bad, len(as)); err != nil {
		return err
	}
	if len(copies) == 0 {
		return fmt.Errorf("no server has a movie titled %q", title)
	}
	return nil
}

func (a *app) printDisagreement(title string, copies []fleet.Copy, missing []string) {
	diffs := fleet.Compare(copies)
	if len(diffs) == 0 && (len(missing) == 0 || len(copies) == 0) {
		return
	}
	fmt.Fprintf(a.out, "servers disagree on %q:\n", title)
	for _, d := range diffs {
		fmt.Fprintf(a.out, "  %s\n", d)
	}
	if len(missing) > 0 && len(copies) > 0 {
		fmt.Fprintf(a.out, "  missing on %s\n", strings.Join(missing, ", "))
	}
}

func (a *app) all(ctx context.Context) error {
	s, err := a.servers()
	if err != nil {
		return err
	}
	a.fleet.Servers = s
	ls := a.fleet.All(ctx, a.cfg.PageSize)
	w := width(s)
	fmt.Fprintf(a.out, "all from %d servers:\n", len(ls))
	var bad []string
	for _, l := range ls {
		if l.Err != nil {
			bad = append(bad, l.Server)
			fmt.Fprintf(a.out, "  %-*s  DOWN: %v (after %d movies)\n", w, l.Server, l.Err, len(l.Movies))
			continue
		}
		fmt.Fprintf(a.out, "  %-*s  %d movies\n", w, l.Server, len(l.Movies))
	}
	titles := fleet.Merge(ls)
	differ := 0
	for _, t := range titles {
		fmt.Fprintln(a.out, formatMovie(t.Copies[0].Movie))
		if len(t.Diffs) > 0 || len(t.Missing) > 0 {
			differ++
		}
		for _, d := range t.Diffs {
			fmt.Fprintf(a.out, "  ! %s\n", d)
		}
		if len(t.Missing) > 0 {
			fmt.Fprintf(a.out, "  ! missing on %s\n", strings.Join(t.Missing, ", "))
		}
	}
	fmt.Fprintf(a.out, "%d titles; %d differ between servers\n", len(titles), differ)
	return failed(bad, len(ls))
}

func (a *app) add(ctx context.Context, args []string) error {
	var m proto.Movie
	var err error
	if len(args) == 0 && a.asking {
		if m, err = a.askMovie(); err != nil {
			return err
		}
	} else {
		if len(args) == 0 {
			return usageErr("add needs a title and fields: add <title> year=Y director=D ...")
		}
		m.Title = args[0]
		c, err := parseFields(args[1:])
		if err != nil {
			return err
		}
		m = c.Apply(m)
	}
	if m.Genres == nil {
		m.Genres = []string{}
	}
	if err := m.Validate(); err != nil {
		return usageErr("add: %s", message(err))
	}
	as, err := a.ask(ctx, proto.Request{Op: proto.OpAdd, Movie: &m})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "add %q to %d servers:\n", m.Title, len(as))
	added, bad := a.printMovies(as, "added: ", proto.CodeExists)
	fmt.Fprintf(a.out, "added to %d servers; servers that had it keep their version\n", added)
	return failed(bad, len(as))
}

func (a *app) askMovie() (proto.Movie, error) {
	var m proto.Movie
	questions := []struct{ prompt, field string }{
		{"title: ", ""},
		{"year: ", "year"},
		{"director: ", "director"},
		{"genres (comma-separated, may be empty): ", "genres"},
		{"runtime in minutes (may be empty): ", "runtime"},
		{"rating (may be empty): ", "rating"},
	}
	var c proto.Changes
	for _, q := range questions {
		v, err := a.in.prompt(a.out, q.prompt)
		if err != nil {
			return m, err
		}
		if q.field == "" {
			m.Title = v
			continue
		}
		if v == "" && q.field != "year" && q.field != "director" {
			continue
		}
		if err := setField(&c, q.field, v); err != nil {
			return m, err
		}
	}
	return c.Apply(m), nil
}

func (a *app) edit(ctx context.Context, args []string) error {
	var title string
	var fields []string
	var err error
	if len(args) == 0 && a.asking {
		if title, err = a.title(nil, "edit"); err != nil {
			return err
		}
		line, err := a.in.prompt(a.out, "changes (field=value ...): ")
		if err != nil {
			return err
		}
		if fields, err = splitLine(line); err != nil {
			return usageErr("%v", err)
		}
	} else {
		if len(args) < 2 {
			return usageErr("edit needs a title and field=value changes")
		}
		title, fields = args[0], args[1:]
	}
	c, err := parseFields(fields)
	if err != nil {
		return err
	}
	req := proto.Request{Op: proto.OpEdit, Title: title, Set: &c}
	if err := req.Validate(); err != nil {
		return usageErr("edit: %s", message(err))
	}
	as, err := a.ask(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "edit %q on %d servers:\n", title, len(as))
	edited, bad := a.printMovies(as, "edited: ", proto.CodeNotFound)
	fmt.Fprintf(a.out, "edited on %d servers\n", edited)
	if err := failed(bad, len(as)); err != nil {
		return err
	}
	if edited == 0 {
		return fmt.Errorf("no server has a movie titled %q", title)
	}
	return nil
}

// parseFields parses field=value words into changes.
func parseFields(words []string) (proto.Changes, error) {
	var c proto.Changes
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return c, usageErr("%q: want field=value", w)
		}
		if err := setField(&c, strings.ToLower(k), strings.TrimSpace(v)); err != nil {
			return c, err
		}
	}
	return c, nil
}

func setField(c *proto.Changes, field, v string) error {
	switch field {
	case "year", "runtime":
		n, err := strconv.Atoi(v)
		if err != nil {
			return usageErr("%s %q: want a number", field, v)
		}
		if field == "year" {
			c.Year = &n
		} else {
			c.Runtime = &n
		}
	case "director":
		c.Director = &v
	case "rating":
		c.Rating = &v
	case "genres":
		g := []string{}
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				g = append(g, s)
			}
		}
		c.Genres = &g
	default:
		return usageErr("unknown field %q; want year, director, genres, runtime or rating", field)
	}
	return nil
}

func (a *app) editServers(cmd, addr string) error {
	var err error
	if cmd == "addserver" {
		err = a.db.Add(addr)
	} else {
		err = a.db.Delete(addr)
	}
	if err != nil {
		return usageErr("%s: %v", cmd, err)
	}
	verb := map[string]string{"addserver": "added", "deleteserver": "deleted"}[cmd]
	fmt.Fprintf(a.out, "%s %s; %s lists %d servers\n", verb, addr, a.db.Path, len(a.db.Servers))
	if a.override != nil {
		fmt.Fprintln(a.out, "note: MOVIEDB_SERVERS is set and overrides the file for requests")
	}
	return nil
}

func (a *app) serverList() error {
	if a.override != nil {
		fmt.Fprintf(a.out, "%d servers from MOVIEDB_SERVERS (overriding %s):\n", len(a.override), a.db.Path)
		for _, s := range a.override {
			fmt.Fprintln(a.out, "  "+s)
		}
		return nil
	}
	fmt.Fprintf(a.out, "%d servers in %s:\n", len(a.db.Servers), a.db.Path)
	for _, s := range a.db.Servers {
		fmt.Fprintln(a.out, "  "+s)
	}
	return nil
}

// interactive prints the commands, then reads and runs them until quit or
// the end of input. A failed command is reported and the next one read.
func (a *app) interactive(ctx context.Context) error {
	a.asking = true
	fmt.Fprintln(a.out, "moviedb client; commands:")
	fmt.Fprintln(a.out, commandHelp)
	for ctx.Err() == nil {
		line, err := a.in.prompt(a.out, "moviedb> ")
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(a.out)
			return nil
		}
		if err != nil {
			return err
		}
		words, err := splitLine(line)
		if err != nil {
			fmt.Fprintf(a.errOut, "error: %v\n", err)
			continue
		}
		if len(words) == 0 {
			continue
		}
		if words[0] == "quit" || words[0] == "exit" {
			return nil
		}
		if err := a.exec(ctx, words); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			fmt.Fprintf(a.errOut, "error: %v\n", err)
		}
	}
	return context.Cause(ctx)
}

// lineReader reads the lines a person types.
type lineReader struct{ sc *bufio.Scanner }

func newLineReader(r io.Reader) *lineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), proto.MaxRequestBytes)
	return &lineReader{sc: sc}
}

// prompt writes p and returns the next line, trimmed, or io.EOF.
func (l *lineReader) prompt(w io.Writer, p string) (string, error) {
	fmt.Fprint(w, p)
	if !l.sc.Scan() {
		if err := l.sc.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
	return strings.TrimSpace(l.sc.Text()), nil
}

// splitLine splits a typed command line into words at spaces; single or
// double quotes keep spaces in a word ("The Matrix").
func splitLine(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// message returns the message of the *proto.Error err carries (Validate's
// errors do), or err's text.
func message(err error) string {
	var pe *proto.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}
