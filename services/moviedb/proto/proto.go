// Package proto is the moviedb wire protocol: one JSON request line and one
// JSON response line per TCP connection.
//
//	> {"op":"get","title":"Alien"}
//	< {"ok":true,"movie":{"title":"Alien","year":1979,...}}
//
// It holds the messages, their limits and error codes, the strict request
// decoder the server uses, the bounded response reader clients use, and Do,
// one complete exchange. The spec is services/moviedb/README.md.
package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Op names a request kind.
type Op string

// The request kinds.
const (
	OpGet  Op = "get"  // one movie by title, case-insensitively
	OpAll  Op = "all"  // one page of every movie, in title order
	OpAdd  Op = "add"  // a new movie
	OpEdit Op = "edit" // change some fields of a movie
)

// Ops lists every request kind, for metrics and help texts.
var Ops = [...]Op{OpGet, OpAll, OpAdd, OpEdit}

// Limits of a request and of the values a movie may hold.
const (
	// MaxRequestBytes bounds a request line without its "\n".
	MaxRequestBytes = 16 << 10
	// MaxResponseBytes bounds a response line; the largest is a full page of
	// the largest movies.
	MaxResponseBytes = 4 << 20
	// DefaultPageSize is the page size of an "all" request without limit.
	DefaultPageSize = 100
	// MaxPageSize is the largest page an "all" request may ask for.
	MaxPageSize = 1000
	// MaxTitleBytes bounds a title, a director, and a cursor.
	MaxTitleBytes = 200
	// MaxGenres bounds the genres of a movie; MaxGenreBytes each genre.
	MaxGenres     = 10
	MaxGenreBytes = 40
	// MaxRatingBytes bounds a rating ("PG-13", "Not Rated").
	MaxRatingBytes = 16
	// MinYear and MaxYear bound a year: from the first moving pictures.
	MinYear = 1878
	MaxYear = 2100
	// MaxRuntime bounds a runtime in minutes; 0 means unknown.
	MaxRuntime = 1000
)

// Movie is one film. The title is its key: unique in a server,
// case-insensitively, and never edited.
type Movie struct {
	Title    string   `json:"title"`
	Year     int      `json:"year"`
	Director string   `json:"director"`
	Genres   []string `json:"genres"`
	Runtime  int      `json:"runtime"` // minutes; 0 when unknown
	Rating   string   `json:"rating"`  // e.g. "PG-13"; "" when unknown
}

// Changes are the fields an edit sets; nil fields stay as they are.
type Changes struct {
	Year     *int      `json:"year,omitempty"`
	Director *string   `json:"director,omitempty"`
	Genres   *[]string `json:"genres,omitempty"`
	Runtime  *int      `json:"runtime,omitempty"`
	Rating   *string   `json:"rating,omitempty"`
}

// Empty reports whether c changes nothing.
func (c Changes) Empty() bool {
	return c.Year == nil && c.Director == nil && c.Genres == nil && c.Runtime == nil && c.Rating == nil
}

// Apply returns m with c applied. m is not modified: the result has its own
// Genres when c sets them and shares m's otherwise.
func (c Changes) Apply(m Movie) Movie {
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

// Request is one request line. Which fields it carries depends on Op:
// get (title), all (cursor, limit), add (movie), edit (title, set).
type Request struct {
	Op     Op       `json:"op"`
	Title  string   `json:"title,omitempty"`
	Cursor string   `json:"cursor,omitempty"`
	Limit  int      `json:"limit,omitempty"`
	Movie  *Movie   `json:"movie,omitempty"`
	Set    *Changes `json:"set,omitempty"`
}

// Response is one response line. OK responses to get, add and edit carry
// Movie (for add and edit: as stored); to all, Movies (possibly empty) and,
// when more follow, Next, the cursor of the next page. Failed ones carry
// Error.
type Response struct {
	OK     bool    `json:"ok"`
	Movie  *Movie  `json:"movie,omitempty"`
	Movies []Movie `json:"movies,omitzero"`
	Next   string  `json:"next,omitempty"`
	Error  *Error  `json:"error,omitempty"`
}

// Code classifies an error response.
type Code string

// The error codes.
const (
	CodeBadRequest  Code = "bad_request" // not a valid request; fix it before retrying
	CodeNotFound    Code = "not_found"   // no movie with that title (get, edit)
	CodeExists      Code = "exists"      // a movie with that title is already stored (add)
	CodeTooLong     Code = "too_long"    // the request line exceeds MaxRequestBytes
	CodeTimeout     Code = "timeout"     // no complete request line arrived in time
	CodeBusy        Code = "busy"        // the server serves its maximum of connections
	CodeUnavailable Code = "unavailable" // the server cannot store changes now (shutting down, disk failure); a write's outcome is unknown
	CodeInternal    Code = "internal"    // a bug; a write's outcome is unknown
)

// Error is the error of a failed request, on the wire and in Go.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err when it is (or wraps) an *Error, and ""
// otherwise.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// DecodeRequest parses and validates one request line (without its line
// end), strictly (see decodeJSON): unknown fields (names are
// case-sensitive), a field given twice, fields that do not belong to the op
// (even empty), trailing data, invalid escapes and invalid values are
// errors; every error is an *Error with CodeBadRequest (CodeTooLong for a
// line over MaxRequestBytes). A valid "all" request has Limit set (DefaultPageSize when
// absent), and a valid add's movie has non-nil Genres.
func DecodeRequest(line []byte) (Request, error) {
	var req Request
	if len(line) > MaxRequestBytes {
		return req, Errorf(CodeTooLong, "request longer than %d bytes", MaxRequestBytes)
	}
	if !utf8.Valid(line) {
		// encoding/json would turn bad bytes into U+FFFD: a different key.
		return req, Errorf(CodeBadRequest, "request is not valid UTF-8")
	}
	if r, ok := fastGet(bytes.TrimSpace(line)); ok {
		req = r
	} else if r, err := decodeJSON(line); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return Request{}, pe
		}
		return Request{}, Errorf(CodeBadRequest, "%v", err)
	} else {
		req = r
	}
	if err := req.Validate(); err != nil {
		return Request{}, err
	}
	if req.Op == OpAll && req.Limit == 0 {
		req.Limit = DefaultPageSize
	}
	if req.Movie != nil && req.Movie.Genres == nil {
		req.Movie.Genres = []string{}
	}
	return req, nil
}

// cleanJSONError drops the "json: " prefix and Go type names, which mean
// nothing to a client.
func cleanJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q: %s is the wrong type", te.Field, te.Value)
		}
		return fmt.Sprintf("%s is the wrong type", te.Value)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Validate reports whether r is a complete, valid request, as an *Error with
// CodeBadRequest.
func (r Request) Validate() error {
	bad := func(format string, args ...any) error { return Errorf(CodeBadRequest, format, args...) }
	has := func(name string, set bool) error {
		if set {
			return bad("%s does not take %q", r.Op, name)
		}
		return nil
	}
	var err error
	switch r.Op {
	case OpGet:
		err = errors.Join(has("cursor", r.Cursor != ""), has("limit", r.Limit != 0),
			has("movie", r.Movie != nil), has("set", r.Set != nil))
		if err == nil {
			err = checkTitle("title", r.Title)
		}
	case OpAll:
		err = errors.Join(has("title", r.Title != ""), has("movie", r.Movie != nil), has("set", r.Set != nil))
		if err == nil && (r.Limit < 0 || r.Limit > MaxPageSize) {
			err = bad("limit %d: want 1 to %d (or none for %d)", r.Limit, MaxPageSize, DefaultPageSize)
		}
		if err == nil && len(r.Cursor) > MaxTitleBytes {
			err = bad("cursor longer than %d bytes", MaxTitleBytes)
		}
	case OpAdd:
		err = errors.Join(has("title", r.Title != ""), has("cursor", r.Cursor != ""),
			has("limit", r.Limit != 0), has("set", r.Set != nil))
		if err == nil && r.Movie == nil {
			err = bad("add needs a movie")
		}
		if err == nil {
			err = r.Movie.Validate()
		}
	case OpEdit:
		err = errors.Join(has("cursor", r.Cursor != ""), has("limit", r.Limit != 0), has("movie", r.Movie != nil))
		if err == nil {
			err = checkTitle("title", r.Title)
		}
		if err == nil && (r.Set == nil || r.Set.Empty()) {
			err = bad("edit needs set with at least one of year, director, genres, runtime, rating")
		}
		if err == nil {
			err = r.Set.Validate()
		}
	case "":
		err = bad("missing op; want one of get, all, add, edit")
	default:
		err = bad("unknown op %q; want one of get, all, add, edit", r.Op)
	}
	if err != nil {
		// errors.Join of several *Error: keep the first, it reads best.
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return bad("%v", err)
	}
	return nil
}

// Validate reports whether m may be stored, as an *Error with
// CodeBadRequest.
func (m *Movie) Validate() error {
	if err := checkTitle("title", m.Title); err != nil {
		return err
	}
	if err := checkYear(m.Year); err != nil {
		return err
	}
	if err := checkText("director", m.Director, MaxTitleBytes, true); err != nil {
		return err
	}
	if err := checkGenres(m.Genres); err != nil {
		return err
	}
	if err := checkRuntime(m.Runtime); err != nil {
		return err
	}
	return checkText("rating", m.Rating, MaxRatingBytes, false)
}

// Validate reports whether the fields c sets are valid, as an *Error with
// CodeBadRequest.
func (c *Changes) Validate() error {
	if c.Year != nil {
		if err := checkYear(*c.Year); err != nil {
			return err
		}
	}
	if c.Director != nil {
		if err := checkText("director", *c.Director, MaxTitleBytes, true); err != nil {
			return err
		}
	}
	if c.Genres != nil {
		if err := checkGenres(*c.Genres); err != nil {
			return err
		}
	}
	if c.Runtime != nil {
		if err := checkRuntime(*c.Runtime); err != nil {
			return err
		}
	}
	if c.Rating != nil {
		return checkText("rating", *c.Rating, MaxRatingBytes, false)
	}
	return nil
}

func checkTitle(name, s string) error { return checkText(name, s, MaxTitleBytes, true) }

func checkYear(y int) error {
	if y < MinYear || y > MaxYear {
		return Errorf(CodeBadRequest, "year %d: want %d to %d", y, MinYear, MaxYear)
	}
	return nil
}

func checkRuntime(r int) error {
	if r < 0 || r > MaxRuntime {
		return Errorf(CodeBadRequest, "runtime %d: want 0 (unknown) to %d minutes", r, MaxRuntime)
	}
	return nil
}

func checkGenres(g []string) error {
	if len(g) > MaxGenres {
		return Errorf(CodeBadRequest, "%d genres: want at most %d", len(g), MaxGenres)
	}
	for _, s := range g {
		if err := checkText("genre", s, MaxGenreBytes, true); err != nil {
			return err
		}
	}
	return nil
}

// checkText accepts printable UTF-8 without leading or trailing spaces, so
// that what a person types and what a capture shows is the stored key.
func checkText(name, s string, max int, required bool) error {
	switch {
	case s == "" && required:
		return Errorf(CodeBadRequest, "missing %s", name)
	case len(s) > max:
		return Errorf(CodeBadRequest, "%s longer than %d bytes", name, max)
	case !utf8.ValidString(s):
		return Errorf(CodeBadRequest, "%s is not valid UTF-8", name)
	case strings.TrimSpace(s) != s:
		return Errorf(CodeBadRequest, "%s %q has leading or trailing space", name, s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			return Errorf(CodeBadRequest, "%s %q holds a control or unprintable character", name, s)
		}
	}
	return nil
}

// DecodeResponse parses one response line (without its line end). It
// checks the shape (ok with error, or not ok without) but trusts the values.
func DecodeResponse(line []byte) (Response, error) {
	var r Response
	if len(line) > MaxResponseBytes {
		return r, fmt.Errorf("response longer than %d bytes", MaxResponseBytes)
	}
	b := bytes.TrimSpace(line)
	if len(b) == 0 || b[0] != '{' {
		return r, errors.New("response is not a JSON object")
	}
	if fr, ok := fastResponse(b); ok {
		r = fr
	} else if err := decodeJSONResponse(b, &r); err != nil {
		return Response{}, err
	}
	switch {
	case r.OK && r.Error != nil:
		return Response{}, errors.New("response: ok with an error")
	case !r.OK && r.Error == nil:
		return Response{}, errors.New("response: not ok and no error")
	case !r.OK && r.Error.Code == "":
		return Response{}, errors.New("response: error without a code")
	}
	return r, nil
}

func decodeJSONResponse(b []byte, r *Response) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(r); err != nil {
		return fmt.Errorf("response: invalid JSON: %s", cleanJSONError(err))
	}
	if dec.More() {
		return errors.New("response: data after the JSON object")
	}
	return nil
}

// ErrResponseTooLong is returned by ReadResponse for a line longer than
// MaxResponseBytes.
var ErrResponseTooLong = fmt.Errorf("response longer than %d bytes", MaxResponseBytes)

// ReadResponse reads one response line from r, up to "\n" or the end of
// input, and decodes it. It reads at most MaxResponseBytes+2 bytes.
func ReadResponse(r io.Reader) (Response, error) {
	line, err := readLine(r, MaxResponseBytes)
	if err != nil {
		return Response{}, err
	}
	return DecodeResponse(line)
}

// readLine reads up to the first "\n" (dropped with a "\r" before it) or
// EOF. Bytes after "\n" are an error: the server sends one line and closes.
func readLine(r io.Reader, max int) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		chunk := buf[len(buf) : len(buf)+n]
		buf = buf[:len(buf)+n]
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			end := len(buf) - len(chunk) + i
			if end > max+1 {
				return nil, ErrResponseTooLong
			}
			line := bytes.TrimSuffix(buf[:end], []byte("\r"))
			if len(line) > max {
				return nil, ErrResponseTooLong
			}
			return line, nil
		}
		if len(buf) > max+1 {
			return nil, ErrResponseTooLong
		}
		if err == io.EOF {
			if len(buf) == 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("response not ended by a newline: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, err
		}
	}
}
