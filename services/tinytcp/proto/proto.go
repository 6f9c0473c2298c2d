// Package proto is the TinyTCP wire protocol: the parser of command lines a
// client sends, the builders of the reply lines a server sends, and the
// parser and checker of reply lines a client (or the load generator) reads.
//
// Every message is one line ending in "\n" ("\r\n" is accepted); the
// functions here take and return lines without their line end. The spec is
// services/tinytcp/README.md.
package proto

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// DefaultPort is the port the seed's server listens on.
const DefaultPort = 40000

// DefaultBanner is the line a server sends on connect. Every banner begins
// with BannerPrefix.
const (
	DefaultBanner = "WELCOME, I'm TinyServer not pressure"
	BannerPrefix  = "WELCOME"
)

// DefaultMaxLine is the default bound on a command line, in bytes without
// its line end.
const DefaultMaxLine = 4096

// TimeLayout is ISO 8601 with seconds and a numeric UTC offset (never "Z"),
// as in 2025-09-12T17:24:13-05:00.
const TimeLayout = "2006-01-02T15:04:05-07:00"

// Verb is a command. Its String is the canonical upper-case name.
type Verb uint8

// The commands, numbered from 1 so that the zero Verb is none.
const (
	Time Verb = iota + 1
	Echo
	Help
	Quit
)

// NumVerbs is the number of commands: every Verb v satisfies
// 1 <= v <= NumVerbs, so v-1 can index an array.
const NumVerbs = 4

// Verbs lists every command, in the order HELP lists them.
var Verbs = [NumVerbs]Verb{Time, Echo, Help, Quit}

var verbNames = [NumVerbs + 1]string{"", "TIME", "ECHO", "HELP", "QUIT"}

func (v Verb) String() string {
	if v >= 1 && v <= NumVerbs {
		return verbNames[v]
	}
	return "Verb(" + strconv.Itoa(int(v)) + ")"
}

// Replies with fixed text.
const (
	// HelpReply lists every command and its arguments.
	HelpReply = "HELP TIME | ECHO <text> | HELP | QUIT"
	// ByeReply answers QUIT; the server closes the connection after it.
	ByeReply = "BYE"
)

// Code is an error code, sent as "ERROR <code>". Code implements error so
// that Parse can return it without allocating; compare with == or
// errors.Is. Note that fmt's %s and %v print Error's description ("unknown
// command"); use string(c) for the code itself.
type Code string

// The error codes.
const (
	// UnknownCommand: the verb is none of TIME, ECHO, HELP, QUIT.
	UnknownCommand Code = "UNKNOWN_COMMAND"
	// BadArguments: ECHO without text, or an argument after TIME, HELP or
	// QUIT.
	BadArguments Code = "BAD_ARGUMENTS"
	// LineTooLong: the line exceeded the server's limit; the server closes
	// the connection after this reply.
	LineTooLong Code = "LINE_TOO_LONG"
	// ServerBusy: the server serves its maximum of connections; it sends
	// this instead of the banner and closes the connection.
	ServerBusy Code = "SERVER_BUSY"
)

// Codes lists every error code.
var Codes = [...]Code{UnknownCommand, BadArguments, LineTooLong, ServerBusy}

// CodeOf returns the Code that err is or wraps (errors.As), or "" when it
// carries none.
func CodeOf(err error) Code {
	var c Code
	errors.As(err, &c)
	return c
}

func (c Code) Error() string {
	switch c {
	case UnknownCommand:
		return "unknown command"
	case BadArguments:
		return "bad arguments"
	case LineTooLong:
		return "line too long"
	case ServerBusy:
		return "server busy"
	}
	return "error " + string(c)
}

// Command is a parsed command line.
type Command struct {
	Verb Verb
	// Text is ECHO's text, exactly as sent; it aliases the parsed line.
	Text []byte
}

// Parse parses one command line (without its line end). The verb is
// matched without regard to ASCII case. ECHO's text is everything after the
// single space that follows the verb, spaces included; it must not be
// empty. TIME, HELP and QUIT take no argument; trailing spaces after them
// are tolerated. The error is UnknownCommand or BadArguments.
func Parse(line []byte) (Command, error) {
	verb, rest, spaced := bytes.Cut(line, []byte{' '})
	var v Verb
	switch {
	case equalFold(verb, Time):
		v = Time
	case equalFold(verb, Echo):
		if !spaced || len(rest) == 0 {
			return Command{}, BadArguments
		}
		return Command{Verb: Echo, Text: rest}, nil
	case equalFold(verb, Help):
		v = Help
	case equalFold(verb, Quit):
		v = Quit
	default:
		return Command{}, UnknownCommand
	}
	for _, c := range rest {
		if c != ' ' {
			return Command{}, BadArguments
		}
	}
	return Command{Verb: v}, nil
}

// equalFold compares b with the upper-case name of v, folding ASCII
// letters only: bytes.EqualFold would also accept Unicode look-alikes.
func equalFold(b []byte, v Verb) bool {
	name := verbNames[v]
	if len(b) != len(name) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// AppendTime appends the reply to TIME at t, in t's location.
func AppendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, "TIME "...)
	return t.AppendFormat(dst, TimeLayout)
}

// AppendEcho appends the reply to ECHO text.
func AppendEcho(dst, text []byte) []byte {
	dst = append(dst, "ECHO "...)
	return append(dst, text...)
}

// AppendError appends the error reply for code.
func AppendError(dst []byte, code Code) []byte {
	dst = append(dst, "ERROR "...)
	return append(dst, code...)
}

// ErrorLine returns the error reply for code with its "\n".
func ErrorLine(code Code) []byte {
	return append(AppendError(nil, code), '\n')
}

// Kind says what a reply line is.
type Kind int

// The kinds of reply.
const (
	KindWelcome Kind = iota + 1
	KindTime
	KindEcho
	KindHelp
	KindBye
	KindError
)

var kindNames = [...]string{
	KindWelcome: "WELCOME", KindTime: "TIME", KindEcho: "ECHO",
	KindHelp: "HELP", KindBye: "BYE", KindError: "ERROR",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Reply is a parsed reply line.
type Reply struct {
	Kind Kind
	// Time is TIME's instant, with the server's UTC offset.
	Time time.Time
	// Text is the banner, ECHO's text or HELP's list.
	Text string
	// Code is ERROR's code.
	Code Code
}

// ErrMalformed is wrapped by every ParseReply and Answers error.
var ErrMalformed = errors.New("malformed reply")

func malformed(what string, line []byte) error {
	return &replyError{what: what, line: string(line)}
}

type replyError struct{ what, line string }

func (e *replyError) Error() string {
	return "malformed reply " + strconv.Quote(e.line) + ": " + e.what
}
func (e *replyError) Unwrap() error { return ErrMalformed }

// ParseReply parses one reply line (without its line end). The seed makes
// responses case-insensitive, so the reply word, WELCOME and an error
// code are accepted in any ASCII case (servers here send upper case); an
// error code is returned upper-cased.
func ParseReply(line []byte) (Reply, error) {
	word, rest, spaced := bytes.Cut(line, []byte{' '})
	var upper [len("ERROR")]byte
	if len(word) <= len(upper) {
		word = appendUpper(upper[:0], word)
	}
	switch string(word) {
	case "TIME":
		if !spaced {
			return Reply{}, malformed("TIME without a time", line)
		}
		t, err := ParseTime(rest)
		if err != nil {
			return Reply{}, malformed("time is not ISO 8601 with seconds and offset", line)
		}
		return Reply{Kind: KindTime, Time: t}, nil
	case "ECHO":
		if len(rest) == 0 {
			return Reply{}, malformed("ECHO without text", line)
		}
		return Reply{Kind: KindEcho, Text: string(rest)}, nil
	case "HELP":
		if len(rest) == 0 {
			return Reply{}, malformed("HELP without a list", line)
		}
		return Reply{Kind: KindHelp, Text: string(rest)}, nil
	case "BYE":
		if spaced {
			return Reply{}, malformed("text after BYE", line)
		}
		return Reply{Kind: KindBye}, nil
	case "ERROR":
		if len(rest) == 0 {
			return Reply{}, malformed("ERROR without a code", line)
		}
		code := appendUpper(nil, rest)
		for _, c := range code {
			if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
				return Reply{}, malformed("error code is not letters, digits and _", line)
			}
		}
		return Reply{Kind: KindError, Code: Code(code)}, nil
	}
	if len(line) >= len(BannerPrefix) && string(appendUpper(upper[:0], line[:len(BannerPrefix)])) == BannerPrefix {
		return Reply{Kind: KindWelcome, Text: string(line)}, nil
	}
	return Reply{}, malformed("unknown reply", line)
}

// appendUpper appends b with ASCII letters upper-cased to dst.
func appendUpper(dst, b []byte) []byte {
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// ParseTime parses TIME's field: TimeLayout, or the same with "Z" for UTC.
func ParseTime(b []byte) (time.Time, error) {
	if len(b) == len("2006-01-02T15:04:05Z") && b[len(b)-1] == 'Z' {
		return time.Parse("2006-01-02T15:04:05Z07:00", string(b))
	}
	if len(b) != len(TimeLayout) {
		return time.Time{}, errors.New("time has the wrong length")
	}
	return time.Parse(TimeLayout, string(b))
}

// Answers checks that r is the right reply to the command line cmd (without
// its line end): ERROR with the code Parse gives for a bad line, otherwise
// the verb's reply (ECHO with the same text). An ERROR reply to a good
// line is accepted here, since a server may refuse for its own reasons;
// callers decide whether it counts as a failure. The error wraps
// ErrMalformed.
func (r Reply) Answers(cmd []byte) error {
	c, perr := Parse(cmd)
	if r.Kind == KindError {
		if perr != nil && r.Code != CodeOf(perr) {
			return &replyError{what: "want ERROR " + string(CodeOf(perr)), line: r.String()}
		}
		return nil
	}
	if perr != nil {
		return &replyError{what: "want ERROR " + string(CodeOf(perr)), line: r.String()}
	}
	want := ReplyKind(c.Verb)
	if r.Kind != want {
		return &replyError{what: "want a " + want.String() + " reply to " + c.Verb.String(), line: r.String()}
	}
	if want == KindEcho && r.Text != string(c.Text) {
		return &replyError{what: "ECHO text differs from " + strconv.Quote(string(c.Text)), line: r.String()}
	}
	return nil
}

// ReplyKind returns the kind of a successful reply to v.
func ReplyKind(v Verb) Kind {
	switch v {
	case Time:
		return KindTime
	case Echo:
		return KindEcho
	case Help:
		return KindHelp
	case Quit:
		return KindBye
	}
	return 0
}

// String formats r as its reply line, without "\n".
func (r Reply) String() string {
	switch r.Kind {
	case KindWelcome:
		return r.Text
	case KindTime:
		return string(AppendTime(nil, r.Time))
	case KindEcho:
		return "ECHO " + r.Text
	case KindHelp:
		return "HELP " + r.Text
	case KindBye:
		return ByeReply
	case KindError:
		return "ERROR " + string(r.Code)
	}
	return r.Kind.String()
}
