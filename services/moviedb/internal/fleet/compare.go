package fleet

import (
	"fmt"
	"slices"
	"strings"

	"github.com/socklab/socklab/services/moviedb/proto"
)

// Copy is one server's version of a movie.
type Copy struct {
	Server string
	Movie  proto.Movie
}

// Variant is one value of a field and the servers that hold it.
type Variant struct {
	Value   string
	Servers []string
}

// Diff is a field on which servers disagree, with each value held.
type Diff struct {
	Field    string
	Variants []Variant
}

func (d Diff) String() string {
	parts := make([]string, len(d.Variants))
	for i, v := range d.Variants {
		parts[i] = fmt.Sprintf("%s (%s)", v.Value, strings.Join(v.Servers, ", "))
	}
	return d.Field + ": " + strings.Join(parts, " | ")
}

// fields are compared in this order; each renders a movie's value.
var fields = []struct {
	name  string
	value func(m proto.Movie) string
}{
	{"title", func(m proto.Movie) string { return fmt.Sprintf("%q", m.Title) }},
	{"year", func(m proto.Movie) string { return fmt.Sprint(m.Year) }},
	{"director", func(m proto.Movie) string { return fmt.Sprintf("%q", m.Director) }},
	{"genres", func(m proto.Movie) string { return "[" + strings.Join(m.Genres, ", ") + "]" }},
	{"runtime", func(m proto.Movie) string { return fmt.Sprint(m.Runtime) }},
	{"rating", func(m proto.Movie) string { return fmt.Sprintf("%q", m.Rating) }},
}

// Compare returns the fields on which copies of one movie differ, each
// value with its servers in the order of copies. It returns nil when all
// agree.
func Compare(copies []Copy) []Diff {
	var diffs []Diff
	for _, f := range fields {
		var vs []Variant
		for _, c := range copies {
			val := f.value(c.Movie)
			i := 0
			for i < len(vs) && vs[i].Value != val {
				i++
			}
			if i == len(vs) {
				vs = append(vs, Variant{Value: val})
			}
			vs[i].Servers = append(vs[i].Servers, c.Server)
		}
		if len(vs) > 1 {
			diffs = append(diffs, Diff{Field: f.name, Variants: vs})
		}
	}
	return diffs
}

// Title is one title across a fleet's listings.
type Title struct {
	Copies  []Copy   // servers that have it, in server order
	Missing []string // servers that answered and lack it
	Diffs   []Diff
}

// Merge joins the listings of the servers that answered into one list of
// titles in index order (lowercased title), each with its copies, the
// servers it is missing from, and its differences. Listings with an error
// count as neither having nor lacking anything.
func Merge(ls []Listing) []Title {
	type entry struct {
		key string
		t   *Title
	}
	byKey := map[string]*Title{}
	var order []entry
	var up []string
	for _, l := range ls {
		if l.Err != nil {
			continue
		}
		up = append(up, l.Server)
		for _, m := range l.Movies {
			k := strings.ToLower(m.Title)
			t := byKey[k]
			if t == nil {
				t = &Title{}
				byKey[k] = t
				order = append(order, entry{k, t})
			}
			t.Copies = append(t.Copies, Copy{Server: l.Server, Movie: m})
		}
	}
	// Servers return their pages sorted; merged lists from several need
	// sorting again.
	slices.SortFunc(order, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	out := make([]Title, len(order))
	for i, e := range order {
		t := *e.t
		have := map[string]bool{}
		for _, c := range t.Copies {
			have[c.Server] = true
		}
		for _, s := range up {
			if !have[s] {
				t.Missing = append(t.Missing, s)
			}
		}
		t.Diffs = Compare(t.Copies)
		out[i] = t
	}
	return out
}
