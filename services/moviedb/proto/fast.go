package proto

import "unicode/utf8"

// Fast paths for the lines one exchange of the hot path carries: a get
// request as clients write it, and a response as servers write it
// (AppendResponse). Each accepts only that canonical spelling, for which
// encoding/json would give the very same value, and reports false for
// anything else (escapes in a string, other spacing or field order, unknown
// fields, numbers that are not plain integers, ...), which then goes to
// encoding/json. FuzzFastPaths checks that whatever they accept, the
// encoding/json path decodes to an equal value.

// fastGet decodes b (trimmed) when it is exactly
// {"op":"get","title":"<plain string>"}.
func fastGet(b []byte) (Request, bool) {
	p := parser{b: b}
	p.lit(`{"op":"get","title":`)
	title := p.str()
	p.lit(`}`)
	if !p.done() {
		return Request{}, false
	}
	return Request{Op: OpGet, Title: title}, true
}

// fastResponse decodes b (trimmed) when it is a movie, a page or an error
// response exactly as AppendResponse writes it.
func fastResponse(b []byte) (Response, bool) {
	p := parser{b: b}
	var r Response
	switch {
	case p.skip(`{"ok":true,"movie":`):
		r.OK = true
		r.Movie = new(Movie)
		p.movie(r.Movie)
	case p.skip(`{"ok":true,"movies":[`):
		r.OK = true
		r.Movies = []Movie{}
		if !p.skip(`]`) {
			for {
				r.Movies = append(r.Movies, Movie{})
				p.movie(&r.Movies[len(r.Movies)-1])
				if !p.skip(`,`) {
					break
				}
			}
			p.lit(`]`)
		}
		if p.skip(`,"next":`) {
			r.Next = p.str()
		}
	case p.skip(`{"ok":false,"error":{"code":`):
		r.Error = &Error{Code: Code(p.str())}
		p.lit(`,"message":`)
		r.Error.Message = p.str()
		p.lit(`}`)
	default:
		return Response{}, false
	}
	p.lit(`}`)
	if !p.done() {
		return Response{}, false
	}
	return r, true
}

// parser reads canonical JSON from b at i; the first mismatch sets bad,
// after which every read is a no-op.
type parser struct {
	b   []byte
	i   int
	bad bool
}

func (p *parser) done() bool { return !p.bad && p.i == len(p.b) }

// skip consumes s if it comes next.
func (p *parser) skip(s string) bool {
	if p.bad || len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// lit consumes s, which must come next.
func (p *parser) lit(s string) {
	if !p.skip(s) {
		p.bad = true
	}
}

// str reads a string without escapes or control bytes, in valid UTF-8
// (encoding/json would replace invalid bytes).
func (p *parser) str() string {
	if !p.skip(`"`) {
		p.bad = true
		return ""
	}
	start := p.i
	ascii := true
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				p.bad = true
				return ""
			}
			return string(s)
		case c == '\\' || c < 0x20:
			p.bad = true
			return ""
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	p.bad = true
	return ""
}

// int reads an integer as JSON writes one: an optional '-', then 0 or
// digits not starting with 0; at most 18 digits, so it cannot overflow.
func (p *parser) int() int {
	if p.bad {
		return 0
	}
	neg := p.skip("-")
	start, n := p.i, 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 18 || (digits > 1 && p.b[start] == '0') {
		p.bad = true
		return 0
	}
	if neg {
		return -n
	}
	return n
}

func (p *parser) movie(m *Movie) {
	p.lit(`{"title":`)
	m.Title = p.str()
	p.lit(`,"year":`)
	m.Year = p.int()
	p.lit(`,"director":`)
	m.Director = p.str()
	p.lit(`,"genres":`)
	switch {
	case p.skip(`null`):
	case p.skip(`[]`):
		m.Genres = []string{}
	default:
		p.lit(`[`)
		for !p.bad {
			m.Genres = append(m.Genres, p.str())
			if !p.skip(`,`) {
				break
			}
		}
		p.lit(`]`)
	}
	p.lit(`,"runtime":`)
	m.Runtime = p.int()
	p.lit(`,"rating":`)
	m.Rating = p.str()
	p.lit(`}`)
}
