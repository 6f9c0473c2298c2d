package proto

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// The request decoder. encoding/json matches field names without regard to
// case, lets the last of two equal keys win, and turns an invalid UTF-16
// escape ("\ud800" alone) into U+FFFD: a request could then say one thing
// to a person reading it and another to the server. This decoder takes
// only what the README's section 3 allows: exactly the field names of the
// op, each at most once, strings with valid escapes, integers for
// integers. It uses no reflection; FuzzStrictAgrees checks that whatever
// it accepts, encoding/json decodes to the same request.

// Fields of a request, as bits of the set a decoder has seen.
const (
	fieldOp = 1 << iota
	fieldTitle
	fieldCursor
	fieldLimit
	fieldMovie
	fieldSet
)

// opFields are the fields each op takes besides op.
var opFields = map[Op]int{
	OpGet:  fieldTitle,
	OpAll:  fieldCursor | fieldLimit,
	OpAdd:  fieldMovie,
	OpEdit: fieldTitle | fieldSet,
}

// fieldNames names the bits in the order Validate reports them.
var fieldNames = []struct {
	bit  int
	name string
}{{fieldTitle, "title"}, {fieldCursor, "cursor"}, {fieldLimit, "limit"}, {fieldMovie, "movie"}, {fieldSet, "set"}}

var errEOF = errors.New("unexpected end of JSON")

// decodeJSON decodes one request object from b, strictly. Syntax and type
// errors start with "invalid JSON: "; a field the op does not take, even
// with an empty value, is an error too (Validate cannot see an empty one).
func decodeJSON(b []byte) (Request, error) {
	var req Request
	s := scanner{b: b}
	s.ws()
	if s.i == len(b) {
		return req, errors.New("empty request; want one JSON object")
	}
	if b[s.i] != '{' {
		return req, errors.New("request is not a JSON object")
	}
	seen, err := s.request(&req)
	if err != nil {
		return Request{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if s.ws(); s.i != len(b) {
		return Request{}, errors.New("data after the JSON object")
	}
	if allowed, ok := opFields[req.Op]; ok {
		for _, f := range fieldNames {
			if seen&f.bit != 0 && allowed&f.bit == 0 {
				return Request{}, Errorf(CodeBadRequest, "%s does not take %q", req.Op, f.name)
			}
		}
		if seen&fieldLimit != 0 && req.Limit == 0 {
			return Request{}, limitError(0)
		}
	}
	return req, nil
}

func limitError(n int) error {
	return Errorf(CodeBadRequest, "limit %d: want 1 to %d (or none for %d)", n, MaxPageSize, DefaultPageSize)
}

// scanner reads JSON from b at i.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// unexpected reports the byte at i, or the end of input.
func (s *scanner) unexpected(where string) error {
	if s.i >= len(s.b) {
		return errEOF
	}
	return fmt.Errorf("invalid character %q %s", s.b[s.i], where)
}

// member reads the next key of an object and its ':', with the '{' (first)
// or ',' before it; ok is false at the object's '}'.
func (s *scanner) member(first bool) (key []byte, ok bool, err error) {
	s.ws()
	if first {
		if s.i >= len(s.b) || s.b[s.i] != '{' {
			return nil, false, s.unexpected("where an object begins")
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return nil, false, nil
		}
	} else {
		switch {
		case s.i >= len(s.b):
			return nil, false, errEOF
		case s.b[s.i] == '}':
			s.i++
			return nil, false, nil
		case s.b[s.i] != ',':
			return nil, false, s.unexpected("after object value")
		}
		s.i++
		s.ws()
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, s.unexpected("where an object key begins")
	}
	k, err := s.str()
	if err != nil {
		return nil, false, err
	}
	if s.ws(); s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, false, s.unexpected("after object key")
	}
	s.i++
	s.ws()
	return k, true, nil
}

// once marks bit as seen, or reports a second key of that name.
func once(seen *int, bit int, path string) error {
	if *seen&bit != 0 {
		return fmt.Errorf("duplicate field %q", path)
	}
	*seen |= bit
	return nil
}

// unknown reports a key no object here has, with a hint when only its case
// is wrong.
func unknown(key []byte, prefix string, names ...string) error {
	for _, n := range names {
		if len(n) == len(key) && n != string(key) && equalFold(n, key) {
			return fmt.Errorf("unknown field %q (field names are lowercase: %q)", prefix+string(key), prefix+n)
		}
	}
	return fmt.Errorf("unknown field %q", prefix+string(key))
}

// equalFold compares ASCII letters without case; the names are ASCII.
func equalFold(name string, key []byte) bool {
	for i := range len(name) {
		a, b := name[i], key[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// object reads the object at i member by member: value reads the value
// of each key, the scanner being at its start, or says why it cannot.
func (s *scanner) object(value func(key []byte) error) error {
	for first := true; ; first = false {
		key, ok, err := s.member(first)
		if err != nil || !ok {
			return err
		}
		if err := value(key); err != nil {
			return err
		}
	}
}

func (s *scanner) request(req *Request) (seen int, err error) {
	err = s.object(func(key []byte) (err error) {
		switch string(key) {
		case "op":
			if err = once(&seen, fieldOp, "op"); err == nil {
				var op string
				op, err = s.stringValue("op")
				req.Op = Op(op)
			}
		case "title":
			if err = once(&seen, fieldTitle, "title"); err == nil {
				req.Title, err = s.stringValue("title")
			}
		case "cursor":
			if err = once(&seen, fieldCursor, "cursor"); err == nil {
				req.Cursor, err = s.stringValue("cursor")
			}
		case "limit":
			if err = once(&seen, fieldLimit, "limit"); err == nil {
				req.Limit, err = s.intValue("limit")
			}
		case "movie":
			if err = once(&seen, fieldMovie, "movie"); err == nil {
				if err = s.want('{', "movie", "object"); err == nil {
					req.Movie = new(Movie)
					err = s.movie(req.Movie)
				}
			}
		case "set":
			if err = once(&seen, fieldSet, "set"); err == nil {
				if err = s.want('{', "set", "object"); err == nil {
					req.Set = new(Changes)
					err = s.changes(req.Set)
				}
			}
		default:
			err = unknown(key, "", "op", "title", "cursor", "limit", "movie", "set")
		}
		return err
	})
	return seen, err
}

func (s *scanner) movie(m *Movie) error {
	seen := 0
	return s.object(func(key []byte) (err error) {
		switch string(key) {
		case "title":
			if err = once(&seen, 1<<0, "movie.title"); err == nil {
				m.Title, err = s.stringValue("movie.title")
			}
		case "year":
			if err = once(&seen, 1<<1, "movie.year"); err == nil {
				m.Year, err = s.intValue("movie.year")
			}
		case "director":
			if err = once(&seen, 1<<2, "movie.director"); err == nil {
				m.Director, err = s.stringValue("movie.director")
			}
		case "genres":
			if err = once(&seen, 1<<3, "movie.genres"); err == nil {
				// The one null the spec allows: absent or null mean [].
				if s.null() {
					m.Genres = []string{}
				} else {
					m.Genres, err = s.stringsValue("movie.genres")
				}
			}
		case "runtime":
			if err = once(&seen, 1<<4, "movie.runtime"); err == nil {
				m.Runtime, err = s.intValue("movie.runtime")
			}
		case "rating":
			if err = once(&seen, 1<<5, "movie.rating"); err == nil {
				m.Rating, err = s.stringValue("movie.rating")
			}
		default:
			err = unknown(key, "movie.", "title", "year", "director", "genres", "runtime", "rating")
		}
		return err
	})
}

func (s *scanner) changes(c *Changes) error {
	seen := 0
	return s.object(func(key []byte) (err error) {
		switch string(key) {
		case "year":
			if err = once(&seen, 1<<0, "set.year"); err == nil {
				c.Year = new(int)
				*c.Year, err = s.intValue("set.year")
			}
		case "director":
			if err = once(&seen, 1<<1, "set.director"); err == nil {
				c.Director = new(string)
				*c.Director, err = s.stringValue("set.director")
			}
		case "genres":
			if err = once(&seen, 1<<2, "set.genres"); err == nil {
				c.Genres = new([]string)
				*c.Genres, err = s.stringsValue("set.genres")
			}
		case "runtime":
			if err = once(&seen, 1<<3, "set.runtime"); err == nil {
				c.Runtime = new(int)
				*c.Runtime, err = s.intValue("set.runtime")
			}
		case "rating":
			if err = once(&seen, 1<<4, "set.rating"); err == nil {
				c.Rating = new(string)
				*c.Rating, err = s.stringValue("set.rating")
			}
		default:
			// "title" too: a title is never edited.
			err = unknown(key, "", "year", "director", "genres", "runtime", "rating")
		}
		return err
	})
}

// null consumes a null if one comes next.
func (s *scanner) null() bool {
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// want checks that the value of field starts with c, a value of kind.
func (s *scanner) want(c byte, field, kind string) error {
	if s.i < len(s.b) && s.b[s.i] == c {
		return nil
	}
	return s.wrongType(field)
}

// wrongType reports the value at i as the wrong type for field, as
// encoding/json words it, or a syntax error when no value starts there.
func (s *scanner) wrongType(field string) error {
	if s.i >= len(s.b) {
		return errEOF
	}
	var kind string
	switch c := s.b[s.i]; {
	case c == '"':
		kind = "string"
	case c == '{':
		kind = "object"
	case c == '[':
		kind = "array"
	case c == 't' || c == 'f':
		kind = "bool"
	case c == 'n':
		kind = "null"
	case c == '-' || ('0' <= c && c <= '9'):
		kind = "number"
	default:
		return s.unexpected("looking for beginning of value")
	}
	return fmt.Errorf("field %q: %s is the wrong type", field, kind)
}

func (s *scanner) stringValue(field string) (string, error) {
	if err := s.want('"', field, "string"); err != nil {
		return "", err
	}
	b, err := s.str()
	return string(b), err
}

func (s *scanner) stringsValue(field string) ([]string, error) {
	if err := s.want('[', field, "array"); err != nil {
		return nil, err
	}
	s.i++
	out := []string{}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return out, nil
	}
	for {
		s.ws()
		v, err := s.stringValue(field)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		s.ws()
		switch {
		case s.i >= len(s.b):
			return nil, errEOF
		case s.b[s.i] == ',':
			s.i++
		case s.b[s.i] == ']':
			s.i++
			return out, nil
		default:
			return nil, s.unexpected("after array element")
		}
	}
}

// intValue reads a JSON number that is an integer of at most 18 digits
// (so it cannot overflow); other numbers are the wrong type, as in
// encoding/json.
func (s *scanner) intValue(field string) (int, error) {
	start := s.i
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	d0 := s.i
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		if s.i-d0 < 18 {
			n = n*10 + int(s.b[s.i]-'0')
		}
		s.i++
	}
	digits := s.i - d0
	if digits == 0 {
		if neg {
			return 0, s.unexpected("in numeric literal")
		}
		s.i = start
		return 0, s.wrongType(field)
	}
	if digits > 1 && s.b[d0] == '0' {
		s.i = d0 + 1
		return 0, s.unexpected("after a leading 0 in a number")
	}
	integer := digits <= 18
	if s.i < len(s.b) && s.b[s.i] == '.' {
		integer = false
		s.i++
		if err := s.digits(); err != nil {
			return 0, err
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		integer = false
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if err := s.digits(); err != nil {
			return 0, err
		}
	}
	if !integer {
		return 0, fmt.Errorf("field %q: number %s is the wrong type", field, s.b[start:s.i])
	}
	if neg {
		n = -n
	}
	return n, nil
}

// digits reads one or more digits.
func (s *scanner) digits() error {
	d0 := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == d0 {
		return s.unexpected("in numeric literal")
	}
	return nil
}

// str reads a string literal at i (which is '"') and returns its value:
// a slice of b when it has no escapes, a new slice otherwise.
func (s *scanner) str() ([]byte, error) {
	s.i++
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], nil
		case c == '\\':
			return s.escaped(append([]byte(nil), s.b[start:s.i]...))
		case c < 0x20:
			return nil, fmt.Errorf("invalid character %q in string literal", c)
		}
		s.i++
	}
	return nil, errEOF
}

// escaped goes on reading a string from the '\\' at i, appending to buf.
// b is valid UTF-8 (DecodeRequest checked), so only escapes can make a
// string invalid: a UTF-16 surrogate must come as a high and low pair.
func (s *scanner) escaped(buf []byte) ([]byte, error) {
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return buf, nil
		case c < 0x20:
			return nil, fmt.Errorf("invalid character %q in string literal", c)
		case c != '\\':
			buf = append(buf, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, errEOF
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := s.hex4()
			if err != nil {
				return nil, err
			}
			if utf16.IsSurrogate(r) {
				lo := rune(-1)
				if r < 0xdc00 && len(s.b)-s.i >= 6 && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					if lo, err = s.hex4(); err != nil {
						return nil, err
					}
				}
				pair := utf16.DecodeRune(r, lo)
				if pair == utf8.RuneError {
					return nil, fmt.Errorf("invalid escape %q: a UTF-16 surrogate without its pair", fmt.Sprintf(`\u%04x`, r))
				}
				r = pair
			}
			buf = utf8.AppendRune(buf, r)
		default:
			s.i--
			return nil, s.unexpected("in string escape code")
		}
	}
	return nil, errEOF
}

func (s *scanner) hex4() (rune, error) {
	if len(s.b)-s.i < 4 {
		return 0, errEOF
	}
	var r rune
	for range 4 {
		c := s.b[s.i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, s.unexpected("in \\u hexadecimal character escape")
		}
		r = r*16 + rune(c)
		s.i++
	}
	return r, nil
}
