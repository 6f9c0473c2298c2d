package server

import (
	"bytes"
	"testing"

	"github.com/socklab/socklab/services/tinytcp/proto"
)

// FuzzServeConn runs a whole connection on arbitrary client bytes, fed in
// one read and in two halves (a TCP read can end anywhere): the server must
// answer the same either way, with well-formed replies that answer the
// client's lines in order.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"TIME\nECHO Hello from client\nQUIT\n",
		"time\r\necho  a  \r\nhelp\r\n",
		"ECHO\nTIME x\nNOPE\n\n\r\n",
		"ECHO " + string(bytes.Repeat([]byte("z"), 70)) + "\nTIME\n",
		"QUIT\nTIME\n",
		"ECHO a\r\r\nECHO \x00\n",
	} {
		f.Add([]byte(s))
	}
	cfg := Config{MaxLineBytes: 64} // small, to reach LINE_TOO_LONG often
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, _ := session(newHandler(), cfg, data)
		half := len(data) / 2
		halves, _ := session(newHandler(), cfg, data[:half], data[half:])
		if !bytes.Equal(whole, halves) {
			t.Fatalf("input %q: whole got %q, in halves %q", data, whole, halves)
		}
		replies := bytes.SplitAfter(whole, []byte("\n"))
		if len(replies[len(replies)-1]) != 0 {
			t.Fatalf("output %q does not end in a line end", whole)
		}
		replies = replies[:len(replies)-1]
		if string(replies[0]) != wantBanner {
			t.Fatalf("first line %q is not the banner", replies[0])
		}
		replies = replies[1:]
		lines := bytes.SplitAfter(data, []byte("\n"))
		for i, r := range replies {
			r = r[:len(r)-1]
			rep, err := proto.ParseReply(r)
			if err != nil {
				t.Fatalf("reply %d %q: %v", i, r, err)
			}
			if rep.Kind == proto.KindError && rep.Code == proto.LineTooLong {
				if i != len(replies)-1 {
					t.Fatalf("reply after LINE_TOO_LONG in %q", whole)
				}
				return
			}
			if i >= len(lines) || !bytes.HasSuffix(lines[i], []byte("\n")) {
				t.Fatalf("reply %d %q to no complete line", i, r)
			}
			line := bytes.TrimSuffix(bytes.TrimSuffix(lines[i], []byte("\n")), []byte("\r"))
			if err := rep.Answers(line); err != nil {
				t.Fatalf("reply %d to %q: %v", i, line, err)
			}
			if rep.Kind == proto.KindBye {
				if i != len(replies)-1 {
					t.Fatalf("reply after BYE in %q", whole)
				}
				return
			}
		}
		if complete := bytes.Count(data, []byte("\n")); len(replies) != complete {
			t.Fatalf("%d replies to %d complete lines", len(replies), complete)
		}
	})
}
