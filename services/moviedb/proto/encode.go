package proto

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// The encoders below write exactly what encoding/json's Encoder writes for
// these types with SetEscapeHTML(false), field by field (TestAppendMatchesJSON
// and FuzzAppend compare them): one line per exchange on each side, without
// reflection, a bytes.Buffer or an Encoder.

// AppendRequest appends r as one line, with its "\n", to dst.
func AppendRequest(dst []byte, r Request) []byte {
	dst = slices.Grow(dst, 128+len(r.Title)+len(r.Cursor))
	dst = append(dst, `{"op":`...)
	dst = appendString(dst, string(r.Op))
	if r.Title != "" {
		dst = append(dst, `,"title":`...)
		dst = appendString(dst, r.Title)
	}
	if r.Cursor != "" {
		dst = append(dst, `,"cursor":`...)
		dst = appendString(dst, r.Cursor)
	}
	if r.Limit != 0 {
		dst = append(dst, `,"limit":`...)
		dst = strconv.AppendInt(dst, int64(r.Limit), 10)
	}
	if r.Movie != nil {
		dst = append(dst, `,"movie":`...)
		dst = appendMovie(dst, r.Movie)
	}
	if r.Set != nil {
		dst = append(dst, `,"set":`...)
		dst = appendChanges(dst, r.Set)
	}
	return append(dst, "}\n"...)
}

// AppendResponse appends r as one line, with its "\n", to dst.
func AppendResponse(dst []byte, r Response) []byte {
	// Room for a typical movie each, so the line grows once.
	dst = slices.Grow(dst, 256+192*len(r.Movies))
	if r.OK {
		dst = append(dst, `{"ok":true`...)
	} else {
		dst = append(dst, `{"ok":false`...)
	}
	if r.Movie != nil {
		dst = append(dst, `,"movie":`...)
		dst = appendMovie(dst, r.Movie)
	}
	if r.Movies != nil { // omitzero: an empty list is still sent
		dst = append(dst, `,"movies":[`...)
		for i := range r.Movies {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendMovie(dst, &r.Movies[i])
		}
		dst = append(dst, ']')
	}
	if r.Next != "" {
		dst = append(dst, `,"next":`...)
		dst = appendString(dst, r.Next)
	}
	if r.Error != nil {
		dst = append(dst, `,"error":{"code":`...)
		dst = appendString(dst, string(r.Error.Code))
		dst = append(dst, `,"message":`...)
		dst = appendString(dst, r.Error.Message)
		dst = append(dst, '}')
	}
	return append(dst, "}\n"...)
}

// AppendPageStart, AppendPageMovie and AppendPageEnd write the line of an
// "all" response one movie at a time, so that a server can encode a page
// straight from its store: the three together write what AppendResponse
// writes for Response{OK: true, Movies: movies, Next: next}.
func AppendPageStart(dst []byte) []byte { return append(dst, `{"ok":true,"movies":[`...) }

// AppendPageMovie appends the i-th movie (from 0) of a page.
func AppendPageMovie(dst []byte, i int, m *Movie) []byte {
	if i > 0 {
		dst = append(dst, ',')
	}
	return appendMovie(dst, m)
}

// PageMovieBound is an upper bound of the bytes AppendPageMovie appends
// for m, for a writer that must know before it appends: a string byte
// takes at most 6 (\u00XX), an integer at most 20.
func PageMovieBound(m *Movie) int {
	const fixed = len(`,{"title":"","year":,"director":"","genres":[],"runtime":,"rating":""}`) + 2*20
	n := fixed + 6*(len(m.Title)+len(m.Director)+len(m.Rating))
	for _, g := range m.Genres {
		n += 3 + 6*len(g)
	}
	return n
}

// AppendPageEnd ends a page line, with next when more movies follow.
func AppendPageEnd(dst []byte, next string) []byte {
	dst = append(dst, ']')
	if next != "" {
		dst = append(dst, `,"next":`...)
		dst = appendString(dst, next)
	}
	return append(dst, "}\n"...)
}

func appendMovie(dst []byte, m *Movie) []byte {
	dst = append(dst, `{"title":`...)
	dst = appendString(dst, m.Title)
	dst = append(dst, `,"year":`...)
	dst = strconv.AppendInt(dst, int64(m.Year), 10)
	dst = append(dst, `,"director":`...)
	dst = appendString(dst, m.Director)
	dst = append(dst, `,"genres":`...)
	dst = appendStrings(dst, m.Genres)
	dst = append(dst, `,"runtime":`...)
	dst = strconv.AppendInt(dst, int64(m.Runtime), 10)
	dst = append(dst, `,"rating":`...)
	dst = appendString(dst, m.Rating)
	return append(dst, '}')
}

func appendChanges(dst []byte, c *Changes) []byte {
	dst = append(dst, '{')
	if c.Year != nil {
		dst = append(dst, `"year":`...)
		dst = strconv.AppendInt(dst, int64(*c.Year), 10)
	}
	if c.Director != nil {
		dst = append(appendComma(dst), `"director":`...)
		dst = appendString(dst, *c.Director)
	}
	if c.Genres != nil {
		dst = append(appendComma(dst), `"genres":`...)
		dst = appendStrings(dst, *c.Genres)
	}
	if c.Runtime != nil {
		dst = append(appendComma(dst), `"runtime":`...)
		dst = strconv.AppendInt(dst, int64(*c.Runtime), 10)
	}
	if c.Rating != nil {
		dst = append(appendComma(dst), `"rating":`...)
		dst = appendString(dst, *c.Rating)
	}
	return append(dst, '}')
}

// appendComma separates a field from the one before, if any.
func appendComma(dst []byte) []byte {
	if dst[len(dst)-1] == '{' {
		return dst
	}
	return append(dst, ',')
}

// appendStrings writes a nil slice as null and an empty one as [], as
// encoding/json does.
func appendStrings(dst []byte, ss []string) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's string encoder without HTML escaping:
// '"', '\\' and control bytes are escaped, invalid UTF-8 becomes \ufffd,
// and U+2028 and U+2029 are escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
