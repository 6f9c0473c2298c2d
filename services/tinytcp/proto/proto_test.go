package proto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		give     string
		wantVerb Verb
		wantText string
		wantErr  error
	}{
		{give: "TIME", wantVerb: Time},
		{give: "time", wantVerb: Time},
		{give: "TiMe", wantVerb: Time},
		{give: "TIME ", wantVerb: Time},
		{give: "TIME   ", wantVerb: Time},
		{give: "HELP", wantVerb: Help},
		{give: "help", wantVerb: Help},
		{give: "QUIT", wantVerb: Quit},
		{give: "Quit", wantVerb: Quit},
		{give: "ECHO Hello from client", wantVerb: Echo, wantText: "Hello from client"},
		{give: "echo Hello", wantVerb: Echo, wantText: "Hello"},
		{give: "ECHO   two  spaces  ", wantVerb: Echo, wantText: "  two  spaces  "},
		{give: "ECHO  ", wantVerb: Echo, wantText: " "},
		{give: "ECHO TIME", wantVerb: Echo, wantText: "TIME"},
		{give: "ECHO \x00\xff\t", wantVerb: Echo, wantText: "\x00\xff\t"},
		{give: "ECHO", wantErr: BadArguments},
		{give: "echo", wantErr: BadArguments},
		{give: "ECHO ", wantErr: BadArguments},
		{give: "TIME now", wantErr: BadArguments},
		{give: "HELP me", wantErr: BadArguments},
		{give: "QUIT  x", wantErr: BadArguments},
		{give: "", wantErr: UnknownCommand},
		{give: " TIME", wantErr: UnknownCommand},
		{give: "TIMES", wantErr: UnknownCommand},
		{give: "TIM", wantErr: UnknownCommand},
		{give: "ECHO\tHello", wantErr: UnknownCommand},
		{give: "FOO bar", wantErr: UnknownCommand},
		{give: "TIME\r", wantErr: UnknownCommand}, // line ends are stripped before Parse
		{give: "QU\u0130T", wantErr: UnknownCommand},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.give))
		if err != tt.wantErr {
			t.Errorf("Parse(%q) error = %v, want %v", tt.give, err, tt.wantErr)
			continue
		}
		if got.Verb != tt.wantVerb || string(got.Text) != tt.wantText {
			t.Errorf("Parse(%q) = {%s %q}, want {%s %q}", tt.give, got.Verb, got.Text, tt.wantVerb, tt.wantText)
		}
	}
}

func TestParseAllocs(t *testing.T) {
	lines := [][]byte{[]byte("TIME"), []byte("echo hi"), []byte("nope"), []byte("ECHO")}
	allocs := testing.AllocsPerRun(100, func() {
		for _, l := range lines {
			Parse(l)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %v times per run, want 0", allocs)
	}
}

func TestAppend(t *testing.T) {
	bogota := time.FixedZone("-05", -5*3600)
	tests := []struct {
		give []byte
		want string
	}{
		{AppendTime(nil, time.Date(2025, 9, 12, 17, 24, 13, 999, bogota)), "TIME 2025-09-12T17:24:13-05:00"},
		{AppendTime(nil, time.Date(2025, 9, 12, 22, 24, 13, 0, time.UTC)), "TIME 2025-09-12T22:24:13+00:00"},
		{AppendEcho(nil, []byte("  a b ")), "ECHO   a b "},
		{AppendError(nil, LineTooLong), "ERROR LINE_TOO_LONG"},
		{ErrorLine(ServerBusy), "ERROR SERVER_BUSY\n"},
	}
	for _, tt := range tests {
		if string(tt.give) != tt.want {
			t.Errorf("got %q, want %q", tt.give, tt.want)
		}
	}
}

func TestParseReply(t *testing.T) {
	at := time.Date(2025, 9, 12, 17, 24, 13, 0, time.FixedZone("", -5*3600))
	tests := []struct {
		give    string
		want    Reply
		wantErr bool
	}{
		{give: DefaultBanner, want: Reply{Kind: KindWelcome, Text: DefaultBanner}},
		{give: "WELCOME", want: Reply{Kind: KindWelcome, Text: "WELCOME"}},
		{give: "TIME 2025-09-12T17:24:13-05:00", want: Reply{Kind: KindTime, Time: at}},
		{give: "TIME 2025-09-12T22:24:13Z", want: Reply{Kind: KindTime, Time: at.UTC()}},
		{give: "ECHO  x ", want: Reply{Kind: KindEcho, Text: " x "}},
		{give: HelpReply, want: Reply{Kind: KindHelp, Text: "TIME | ECHO <text> | HELP | QUIT"}},
		{give: "BYE", want: Reply{Kind: KindBye}},
		{give: "ERROR UNKNOWN_COMMAND", want: Reply{Kind: KindError, Code: UnknownCommand}},
		{give: "ERROR NEW_CODE_2", want: Reply{Kind: KindError, Code: "NEW_CODE_2"}},
		{give: "", wantErr: true},
		{give: "TIME", wantErr: true},
		{give: "TIME 2025-09-12 17:24:13", wantErr: true},
		{give: "TIME 2025-09-12T17:24:13.5-05:00", wantErr: true},
		{give: "TIME 2025-09-12T17:24:13-0500", wantErr: true},
		{give: "ECHO", wantErr: true},
		{give: "ECHO ", wantErr: true},
		{give: "HELP", wantErr: true},
		{give: "BYE now", wantErr: true},
		{give: "ERROR", wantErr: true},
		{give: "ERROR bad code", wantErr: true},
		{give: "ERROR ÉCHEC", wantErr: true},
		{give: "time 2025-09-12T17:24:13-05:00", want: Reply{Kind: KindTime, Time: at}},
		{give: "Echo MiXed", want: Reply{Kind: KindEcho, Text: "MiXed"}},
		{give: "bye", want: Reply{Kind: KindBye}},
		{give: "error unknown_command", want: Reply{Kind: KindError, Code: UnknownCommand}},
		{give: "Welcome, friend", want: Reply{Kind: KindWelcome, Text: "Welcome, friend"}},
		{give: "WELCOM", wantErr: true},
		{give: "ERROR bad-code", wantErr: true},
		{give: "HELLO", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseReply([]byte(tt.give))
		if tt.wantErr {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseReply(%q) = %+v, %v; want an ErrMalformed", tt.give, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseReply(%q): %v", tt.give, err)
			continue
		}
		if got.Kind != tt.want.Kind || got.Text != tt.want.Text || got.Code != tt.want.Code || !got.Time.Equal(tt.want.Time) {
			t.Errorf("ParseReply(%q) = %+v, want %+v", tt.give, got, tt.want)
		}
		if got.Kind == KindTime {
			_, off := got.Time.Zone()
			_, wantOff := tt.want.Time.Zone()
			if off != wantOff {
				t.Errorf("ParseReply(%q) offset = %d, want %d", tt.give, off, wantOff)
			}
		}
	}
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		cmd, reply string
		wantErr    bool
	}{
		{cmd: "TIME", reply: "TIME 2025-09-12T17:24:13-05:00"},
		{cmd: "time", reply: "TIME 2025-09-12T17:24:13-05:00"},
		{cmd: "ECHO  a ", reply: "ECHO  a "},
		{cmd: "HELP", reply: HelpReply},
		{cmd: "QUIT", reply: "BYE"},
		{cmd: "NOPE", reply: "ERROR UNKNOWN_COMMAND"},
		{cmd: "ECHO", reply: "ERROR BAD_ARGUMENTS"},
		{cmd: "TIME", reply: "ERROR LINE_TOO_LONG"}, // a server may refuse a good line
		{cmd: "TIME", reply: "ECHO TIME", wantErr: true},
		{cmd: "ECHO a", reply: "ECHO b", wantErr: true},
		{cmd: "ECHO a", reply: "ECHO a ", wantErr: true},
		{cmd: "QUIT", reply: DefaultBanner, wantErr: true},
		{cmd: "NOPE", reply: "ERROR BAD_ARGUMENTS", wantErr: true},
		{cmd: "NOPE", reply: "BYE", wantErr: true},
		{cmd: "ECHO", reply: "ECHO ECHO", wantErr: true},
	}
	for _, tt := range tests {
		r, err := ParseReply([]byte(tt.reply))
		if err != nil {
			t.Fatalf("ParseReply(%q): %v", tt.reply, err)
		}
		err = r.Answers([]byte(tt.cmd))
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseReply(%q).Answers(%q) = %v, want error %v", tt.reply, tt.cmd, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("Answers error %v does not wrap ErrMalformed", err)
		}
	}
}

func TestReplyStringRoundTrip(t *testing.T) {
	for _, line := range []string{DefaultBanner, "TIME 2025-09-12T17:24:13-05:00", "ECHO  x", HelpReply, "BYE", "ERROR SERVER_BUSY"} {
		r, err := ParseReply([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.String(); got != line {
			t.Errorf("ParseReply(%q).String() = %q", line, got)
		}
	}
}

// reply is what a server answers to line, built from this package.
func reply(line []byte, at time.Time) []byte {
	c, err := Parse(line)
	if err != nil {
		return AppendError(nil, err.(Code))
	}
	switch c.Verb {
	case Time:
		return AppendTime(nil, at)
	case Echo:
		return AppendEcho(nil, c.Text)
	case Help:
		return []byte(HelpReply)
	default:
		return []byte(ByeReply)
	}
}

// splitLines frames r's bytes the way a server does: lines end in "\n" or
// "\r\n"; an unterminated tail is not a line.
func splitLines(r io.Reader) [][]byte {
	br := bufio.NewReaderSize(r, 16)
	var lines [][]byte
	for {
		l, err := br.ReadBytes('\n')
		if err != nil {
			return lines
		}
		l = bytes.TrimSuffix(l[:len(l)-1], []byte("\r"))
		lines = append(lines, l)
	}
}

// FuzzParse checks that Parse never panics, that a parsed command's reply
// parses back and answers it, and that framing the input whole or split in
// two reads (a TCP read can end anywhere) yields the same commands: split in
// the middle, and at every point of a short input. (The split is not a fuzz
// argument: the fuzzer minimises integers one step at a time, which stalls
// it for minutes.)
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"TIME\n", "time\r\n", "ECHO Hello from client\n", "ECHO   spaced  \n", "ECHO\n",
		"HELP\nQUIT\n", "TIME now\n", "nope\n", "\n", "ECHO a\r\nECHO b\nTIME", "\r\r\n",
	} {
		f.Add([]byte(s))
	}
	at := time.Date(2025, 9, 12, 17, 24, 13, 0, time.FixedZone("", -5*3600))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := checkLines(t, data, at)
		cuts := []int{len(data) / 2}
		if len(data) <= 64 {
			cuts = cuts[:0]
			for i := range len(data) + 1 {
				cuts = append(cuts, i)
			}
		}
		for _, i := range cuts {
			halves := splitLines(io.MultiReader(bytes.NewReader(data[:i]), bytes.NewReader(data[i:])))
			if len(whole) != len(halves) {
				t.Fatalf("%d lines whole, %d in halves split at %d", len(whole), len(halves), i)
			}
			for n, line := range whole {
				if !bytes.Equal(line, halves[n]) {
					t.Fatalf("line %d: %q whole, %q in halves split at %d", n, line, halves[n], i)
				}
			}
		}
	})
}

// checkLines frames data whole, checks each line's parse and reply, and
// returns the lines.
func checkLines(t *testing.T, data []byte, at time.Time) [][]byte {
	whole := splitLines(bytes.NewReader(data))
	{
		for _, line := range whole {
			c, err := Parse(line)
			if err == nil {
				if !equalFold(line[:len(c.Verb.String())], c.Verb) {
					t.Fatalf("Parse(%q) verb %s does not start the line", line, c.Verb)
				}
				if c.Verb == Echo && (len(c.Text) == 0 || !bytes.HasSuffix(line, c.Text)) {
					t.Fatalf("Parse(%q) text %q is not the line's tail", line, c.Text)
				}
			} else if err != UnknownCommand && err != BadArguments {
				t.Fatalf("Parse(%q) error %v", line, err)
			}
			out := reply(line, at)
			r, err := ParseReply(out)
			if err != nil {
				t.Fatalf("reply %q to %q does not parse: %v", out, line, err)
			}
			if err := r.Answers(line); err != nil {
				t.Fatalf("reply %q to %q: %v", out, line, err)
			}
		}
	}
	return whole
}

// FuzzParseReply checks that ParseReply never panics on what a server might
// send and that what it accepts formats back to the same line but for
// ASCII case (TIME in its "Z" spelling aside).
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		DefaultBanner, "TIME 2025-09-12T17:24:13-05:00", "TIME 2025-09-12T22:24:13Z", "ECHO x",
		HelpReply, "BYE", "ERROR UNKNOWN_COMMAND", "ERROR", "TIME 9999-99-99T99:99:99+99:99",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseReply(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseReply(%q) error %v does not wrap ErrMalformed", line, err)
			}
			return
		}
		if r.Kind == KindTime {
			// "Z" and "-00:00" come back as "+00:00": compare the instants.
			r2, err := ParseReply([]byte(r.String()))
			if err != nil || !r2.Time.Equal(r.Time) || r2.Time.Format(TimeLayout) != r.Time.Format(TimeLayout) {
				t.Fatalf("ParseReply(%q) = %v; reparsed from %q: %v, %v", line, r.Time, r.String(), r2.Time, err)
			}
			return
		}
		if got := r.String(); !bytes.Equal(appendUpper(nil, []byte(got)), appendUpper(nil, line)) {
			t.Fatalf("ParseReply(%q).String() = %q", line, got)
		}
	})
}

func TestCodeError(t *testing.T) {
	for _, c := range Codes {
		if msg := c.Error(); msg == "" || strings.ToUpper(msg) == msg {
			t.Errorf("%s.Error() = %q, want a lower-case description", c, msg)
		}
	}
	if !errors.Is(error(BadArguments), BadArguments) {
		t.Error("errors.Is(BadArguments, BadArguments) = false")
	}
}
