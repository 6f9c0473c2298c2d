package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/kit/nettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// replyLine is the reply format of services/autoreply/README.md.
var replyLine = regexp.MustCompile(`^REPLY id=[0-9a-f]{16} at=(\S+) len=(0|[1-9][0-9]*) snippet=(".*") note="raw"$`)

func TestRunAnswersEachLine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, pw)
		pw.Close()
	}()
	addr := nettest.WaitLog(t, pr, "listening")["addr"].(string)

	// The snippets are those of services/autoreply/proto's TestAppendSnippet.
	tests := []struct {
		give    string
		wantLen string
		want    string
	}{
		{"", "0", `""`},
		{"hello", "5", `"hello"`},
		{"hello\r", "5", `"hello"`}, // CRLF: the CR is not part of the message
		{strings.Repeat("a", 32), "32", `"` + strings.Repeat("a", 32) + `"`},
		{"0123456789abcdef" + "X" + "FEDCBA9876543210", "33", `"0123456789abcdef...FEDCBA9876543210"`},
		{"tab\there \"q\" \\", "14", `"tab\there \"q\" \\"`},
		{"\x00\xff", "2", `"\x00\xff"`},
		{"héllo", "6", `"héllo"`},
		{"\x01" + strings.Repeat("b", 40) + "\"", "42", `"\x01bbbbbbbbbbbbbbb...bbbbbbbbbbbbbbb\""`},
	}
	c := nettest.DialLines(t, addr)
	for _, tt := range tests {
		c.Send(tt.give)
		line := c.ReadLine()
		m := replyLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("reply to %q = %q, not a REPLY line", tt.give, line)
			continue
		}
		if at, err := time.Parse("2006-01-02T15:04:05.000000000Z", m[1]); err != nil || time.Since(at).Abs() > time.Minute {
			t.Errorf("reply to %q: at=%s (%v), want now in UTC with 9 fractional digits", tt.give, m[1], err)
		}
		if m[2] != tt.wantLen || m[3] != tt.want {
			t.Errorf("reply to %q: len=%s snippet=%s, want len=%s snippet=%s", tt.give, m[2], m[3], tt.wantLen, tt.want)
		}
	}
	c.Send(strings.Repeat("x", maxLine+10))
	if got := c.ReadLine(); got != "ERROR line too long" {
		t.Errorf("reply to an oversized line = %q, want ERROR line too long", got)
	}
	c.ExpectEOF()

	// A connection still open at shutdown is closed.
	open := nettest.DialLines(t, addr)
	open.Send("x")
	open.ReadLine()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
	open.ExpectEOF()
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		give []string
		want error
	}{
		{[]string{"-nope"}, errUsage},
		{[]string{"extra"}, errUsage},
		{[]string{"-h"}, flag.ErrHelp},
	}
	for _, tt := range tests {
		if err := run(context.Background(), tt.give, io.Discard); !errors.Is(err, tt.want) {
			t.Errorf("run(%q) = %v, want %v", tt.give, err, tt.want)
		}
	}
	if err := run(context.Background(), []string{"-addr", "127.0.0.1:-1"}, io.Discard); err == nil || errors.Is(err, errUsage) {
		t.Errorf("run with a bad address = %v, want a listen error", err)
	}
}
