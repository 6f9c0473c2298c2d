package proto_test

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/autoreply/proto"
)

var replyRE = regexp.MustCompile(`^REPLY id=[0-9a-f]{16} at=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z len=(\d+) snippet=(".*") note="([^"]+)"$`)

func TestAppendSnippet(t *testing.T) {
	tests := []struct{ give, want string }{
		{"", `""`},
		{"hello", `"hello"`},
		{strings.Repeat("a", 32), `"` + strings.Repeat("a", 32) + `"`},
		{"0123456789abcdef" + "X" + "FEDCBA9876543210", `"0123456789abcdef...FEDCBA9876543210"`},
		{"tab\there \"q\" \\", `"tab\there \"q\" \\"`},
		{"\x00\xff\n", `"\x00\xff\n"`},
		{"héllo", `"héllo"`},
	}
	for _, tt := range tests {
		if got := string(proto.AppendSnippet(nil, []byte(tt.give))); got != tt.want {
			t.Errorf("AppendSnippet(%q) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

func TestAppendFormat(t *testing.T) {
	gen := proto.NewGenerator([32]byte{1})
	at := time.Date(2025, 9, 12, 17, 24, 13, 5, time.FixedZone("CDT", -5*3600))
	for _, msg := range []string{"", "hello", strings.Repeat("z", 100), "\x00\x01\x02"} {
		line := string(gen.Append(nil, at, []byte(msg)))
		m := replyRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("Append(%q) = %s, not in the reply format", msg, line)
		}
		if !strings.Contains(line, " at=2025-09-12T22:24:13.000000005Z ") {
			t.Errorf("Append(%q) = %s, want the time in UTC with nine digits", msg, line)
		}
		if m[1] != strconv.Itoa(len(msg)) {
			t.Errorf("Append(%q) len=%s, want %d", msg, m[1], len(msg))
		}
		if want := string(proto.AppendSnippet(nil, []byte(msg))); m[2] != want {
			t.Errorf("Append(%q) snippet=%s, want %s", msg, m[2], want)
		}
		if len(line) > proto.MaxLen {
			t.Errorf("Append(%q) is %d bytes, over MaxLen %d", msg, len(line), proto.MaxLen)
		}
	}
}

func TestTimeField(t *testing.T) {
	gen := proto.NewGenerator([32]byte{2})
	base := time.Date(2024, 12, 31, 23, 59, 59, 999999999, time.UTC)
	times := []time.Time{
		base, base.Add(time.Nanosecond), base.Add(-time.Second), base.Add(time.Second + 7),
		base.In(time.FixedZone("X", 3600)), time.Unix(0, 0), time.Unix(0, 120),
		base.Add(time.Nanosecond), // the cached second again, after others
	}
	for _, at := range times {
		r, err := proto.Parse(gen.Append(nil, at, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !r.At.Equal(at) {
			t.Errorf("at field for %v parsed as %v", at, r.At)
		}
		line := string(gen.Append(nil, at, nil))
		if want := " at=" + at.UTC().Format(proto.TimeLayout) + " "; !strings.Contains(line, want) {
			t.Errorf("reply %s lacks %q", line, want)
		}
	}
}

func TestNotes(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range proto.Notes {
		if len(n) > proto.MaxNoteLen || strings.ContainsAny(n, "\"\\\n") || n == "" {
			t.Errorf("note %q: want 1..%d bytes without quotes, backslashes or newlines", n, proto.MaxNoteLen)
		}
		if seen[n] {
			t.Errorf("note %q appears twice", n)
		}
		seen[n] = true
	}
	// Every note is drawn: 16 notes, 2000 draws, each missed with
	// probability (15/16)^2000 < 1e-56.
	gen := proto.NewGenerator([32]byte{7})
	drawn := map[string]bool{}
	for range 2000 {
		r, err := proto.Parse(gen.Append(nil, time.Now(), nil))
		if err != nil {
			t.Fatal(err)
		}
		drawn[r.Note] = true
	}
	if len(drawn) != len(proto.Notes) {
		t.Errorf("2000 replies drew %d distinct notes, want all %d", len(drawn), len(proto.Notes))
	}
}

func TestIDsUnique(t *testing.T) {
	gen := proto.NewGenerator([32]byte{9})
	ids := map[uint64]bool{}
	for range 100000 {
		r, err := proto.Parse(gen.Append(nil, time.Now(), []byte("x")))
		if err != nil {
			t.Fatal(err)
		}
		if ids[r.ID] {
			t.Fatalf("id %016x repeated", r.ID)
		}
		ids[r.ID] = true
	}
}

func TestParse(t *testing.T) {
	good := `REPLY id=00112233445566ff at=2025-09-12T22:24:13.000000005Z len=5 snippet="hello" note="copy that"`
	r, err := proto.Parse([]byte(good))
	if err != nil {
		t.Fatalf("Parse(%q) = %v", good, err)
	}
	want := proto.Reply{ID: 0x00112233445566ff, At: time.Date(2025, 9, 12, 22, 24, 13, 5, time.UTC), Len: 5, Snippet: `"hello"`, Note: "copy that"}
	if r != want {
		t.Errorf("Parse(%q) = %+v, want %+v", good, r, want)
	}
	if !r.Matches([]byte("hello")) || r.Matches([]byte("hellO")) || r.Matches([]byte("hello!")) {
		t.Error("Matches does not compare length and snippet")
	}
	bad := []string{
		"",
		"ERROR line too long",
		strings.Replace(good, "id=00112233445566ff", "id=00112233445566FF", 1),
		strings.Replace(good, "id=00112233445566ff", "id=0011", 1),
		strings.Replace(good, "13.000000005Z", "13Z", 1),
		strings.Replace(good, "13.000000005Z", "13.000000005+01:00", 1),
		strings.Replace(good, "len=5", "len=-5", 1),
		strings.Replace(good, "len=5", "len=05", 1),
		strings.Replace(good, `snippet="hello"`, `snippet=hello`, 1),
		strings.Replace(good, `note="copy that"`, `note="copy"that"`, 1),
		strings.TrimSuffix(good, `"`),
		good + " extra",
	}
	for _, b := range bad {
		if _, err := proto.Parse([]byte(b)); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", b)
		}
	}
}

func TestAppendAllocs(t *testing.T) {
	gen := proto.NewGenerator([32]byte{3})
	buf := make([]byte, 0, proto.MaxLen)
	msg := bytes.Repeat([]byte("é\x00"), 40)
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() { buf = gen.Append(buf[:0], now, msg) }); n != 0 {
		t.Errorf("Append allocates %v times per reply, want 0", n)
	}
}

func FuzzReply(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte(""))
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Add([]byte("\"\\\n\r\t" + strings.Repeat("é", 20)))
	f.Fuzz(func(t *testing.T, msg []byte) {
		gen := proto.NewGenerator([32]byte{})
		line := gen.Append(nil, time.Unix(0, 0), msg)
		if len(line) > proto.MaxLen {
			t.Fatalf("reply to %q is %d bytes, over MaxLen %d", msg, len(line), proto.MaxLen)
		}
		if bytes.ContainsAny(line, "\n\r") {
			t.Fatalf("reply to %q spans lines: %q", msg, line)
		}
		r, err := proto.Parse(line)
		if err != nil {
			t.Fatalf("Parse(Append(%q)) = %v", msg, err)
		}
		if !r.Matches(msg) {
			t.Fatalf("reply %q does not match its message %q", line, msg)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`REPLY id=00112233445566ff at=2025-09-12T22:24:13.000000005Z len=5 snippet="hello" note="copy that"`))
	f.Add([]byte(`REPLY id=`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := proto.Parse(line)
		if err != nil {
			return
		}
		// Whatever parses must survive a second look at its parts.
		if _, err := strconv.Unquote(r.Snippet); err != nil {
			t.Fatalf("Parse(%q) accepted snippet %s that does not unquote", line, r.Snippet)
		}
		if r.Len < 0 {
			t.Fatalf("Parse(%q) len %d", line, r.Len)
		}
	})
}
