package client

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts")

// fakeSession answers like a server with fixed timings, so transcripts are
// stable byte for byte.
type fakeSession struct {
	protocol string
	quits    int
}

func (f *fakeSession) Protocol() string { return f.protocol }
func (f *fakeSession) Close() error     { return nil }

func (f *fakeSession) Echo(_ context.Context, text []byte) ([]byte, error) {
	if string(text) == "fail" {
		return nil, &proto.ErrorReply{Code: proto.CodeMalformed, Text: "told to fail"}
	}
	return text, nil
}

func (f *fakeSession) File(_ context.Context, size uint64, sink io.Writer) (FileResult, error) {
	if size == 666 {
		return FileResult{}, &proto.ErrorReply{Code: proto.CodeTooLarge, Text: "file too large: max 665"}
	}
	b := make([]byte, size)
	proto.FillContent(b, 0)
	if sink != nil {
		sink.Write(b)
	}
	crc := proto.ContentCRC(int64(size))
	r := FileResult{Size: size, CRC: crc, Received: size, GotCRC: crc, Elapsed: 10 * time.Millisecond}
	if f.protocol == "udp" {
		r.UDP = true
		n := (size + 1184) / 1185
		r.Packets = SeqStats{Expected: n, Received: n}
	}
	if size == 777 { // a lossy one
		r.Received, r.GotCRC, r.Packets.Received, r.Packets.Lost, r.TimedOut = 0, 0, 0, 1, true
	}
	return r, nil
}

func (f *fakeSession) Stream(_ context.Context, p StreamParams) (StreamResult, error) {
	if p.Interval < time.Millisecond {
		return StreamResult{}, &proto.ErrorReply{Code: proto.CodeStream, Text: "interval must be 1ms to 10s"}
	}
	return StreamResult{
		Interval: p.Interval,
		Packets:  SeqStats{Expected: uint64(p.Count), Received: uint64(p.Count)},
		Elapsed:  time.Duration(p.Count-1) * p.Interval,
		MeanGap:  p.Interval, MinGap: p.Interval - time.Millisecond/10, MaxGap: p.Interval + time.Millisecond/10,
		Jitter: time.Millisecond / 20,
	}, nil
}

func (f *fakeSession) Quit(context.Context) error { f.quits++; return nil }

// TestTranscripts runs the shell over each testdata/shell/*.in and
// compares its output with the .golden file beside it. The name says the
// protocol (tcp_, udp_) and options (prompt, print).
func TestTranscripts(t *testing.T) {
	ins, _ := filepath.Glob("testdata/shell/*.in")
	if len(ins) == 0 {
		t.Fatal("no transcripts")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in")
		t.Run(name, func(t *testing.T) {
			script, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			sh := NewShell(bytes.NewReader(script), nil, &out)
			sh.Prompt = strings.Contains(name, "prompt")
			sh.PrintFile = strings.Contains(name, "print")
			sess := &fakeSession{protocol: strings.Split(name, "_")[0]}
			if err := sh.Run(t.Context(), sess); err != nil {
				t.Fatalf("Run: %v", err)
			}
			golden := strings.TrimSuffix(in, ".in") + ".golden"
			if *update {
				os.WriteFile(golden, out.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", golden, out.Bytes(), want)
			}
		})
	}
}

func TestCommandsFlag(t *testing.T) {
	var out bytes.Buffer
	sh := NewShell(strings.NewReader("ignored\n"), []string{"hi", "stream", "5", "quit", "after quit"}, &out)
	if err := sh.Run(t.Context(), &fakeSession{protocol: "tcp"}); err != nil {
		t.Fatal(err)
	}
	want := "echo: hi\nstream: packets 100/100, lost 0, duplicates 0, reordered 0 in 495.000ms; interval 5.000ms asked, gaps 5.000ms mean (4.900ms to 5.100ms), jitter 0.050ms\nbye\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// brokenSession fails like a dead TCP connection.
type brokenSession struct{ fakeSession }

func (b *brokenSession) Echo(context.Context, []byte) ([]byte, error) {
	return nil, io.ErrUnexpectedEOF
}

func TestRunStops(t *testing.T) {
	var out bytes.Buffer
	sh := NewShell(nil, []string{"hi", "never"}, &out)
	if err := sh.Run(t.Context(), &brokenSession{fakeSession{protocol: "tcp"}}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("broken TCP session: Run = %v, want the error", err)
	}
	// Over UDP a lost reply is not the end.
	out.Reset()
	sh = NewShell(nil, []string{"hi", "quit"}, &out)
	if err := sh.Run(t.Context(), &brokenSession{fakeSession{protocol: "udp"}}); err != nil || !strings.HasSuffix(out.String(), "bye\n") {
		t.Errorf("UDP: Run = %v, output %q", err, out.String())
	}
	// A cancelled context ends the loop; over UDP the shell sends QUIT.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	sess := &fakeSession{protocol: "udp"}
	out.Reset()
	sh = NewShell(nil, []string{"hi", "never"}, &out)
	if err := sh.Run(ctx, sess); err != nil || sess.quits != 1 || out.String() != "echo: hi\ninterrupted\n" {
		t.Errorf("cancelled: Run = %v, %d QUITs, output %q", err, sess.quits, out.String())
	}
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		give    string
		want    Command
		wantErr string
	}{
		{"hello", Command{Kind: KindEcho, Text: "hello"}, ""},
		{"  two words  ", Command{Kind: KindEcho, Text: "  two words  "}, ""},
		{"hello\r", Command{Kind: KindEcho, Text: "hello"}, ""},
		{"", Command{}, ""},
		{"   ", Command{}, ""},
		{"quit", Command{Kind: KindQuit}, ""},
		{" QUIT ", Command{Kind: KindQuit}, ""},
		{"quitter", Command{Kind: KindEcho, Text: "quitter"}, ""},
		{"0", Command{Kind: KindFile}, ""},
		{"123456789", Command{Kind: KindFile, Size: 123456789}, ""},
		{"+7", Command{Kind: KindFile, Size: 7}, ""},
		{"1.5", Command{Kind: KindEcho, Text: "1.5"}, ""},
		{"-1", Command{}, "negative"},
		{"99999999999999999999", Command{}, "too large"},
		{"stream", Command{Kind: KindStream, Stream: StreamParams{Count: 100}, NeedInterval: true}, ""},
		{"stream 10", Command{Kind: KindStream, Stream: StreamParams{Interval: 10 * time.Millisecond, Count: 100}}, ""},
		{"STREAM 0.5 7 64", Command{Kind: KindStream, Stream: StreamParams{Interval: 500 * time.Microsecond, Count: 7, Size: 64}}, ""},
		{"stream x", Command{}, "interval"},
		{"stream -1", Command{}, "interval"},
		{"stream 10 many", Command{}, "count"},
		{"stream 10 5 70000", Command{}, "size"},
		{"stream 1 2 3 4", Command{}, "usage"},
		{"streaming", Command{Kind: KindEcho, Text: "streaming"}, ""},
	}
	for _, tt := range tests {
		got, err := ParseCommand(tt.give)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCommand(%q) = %v, want an error about %q", tt.give, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v", tt.give, got, err, tt.want)
		}
	}
}

func TestReadHosts(t *testing.T) {
	tests := []struct {
		give    string
		want    []string
		wantErr string
	}{
		{"127.0.0.1:9001\nfilestream:9001\n", []string{"127.0.0.1:9001", "filestream:9001"}, ""},
		{"# lab hosts\n\n  [::1]:9001  \nlocalhost:1\n", []string{"[::1]:9001", "localhost:1"}, ""},
		{"", nil, "no host"},
		{"# only a comment\n", nil, "no host"},
		{"localhost\n", nil, "line 1"},
		{"ok:1\nbad:port\n", nil, "line 2"},
		{"ok:1\nhost:70000\n", nil, "line 2"},
		{":9001\n", nil, "line 1"},
	}
	for _, tt := range tests {
		got, err := ReadHosts(strings.NewReader(tt.give))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ReadHosts(%q) = %v, %v; want an error about %q", tt.give, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("ReadHosts(%q) = %q, %v; want %q", tt.give, got, err, tt.want)
		}
	}
}

func TestChooseServer(t *testing.T) {
	hosts := []string{"a:1", "b:2"}
	tests := []struct {
		name   string
		prompt bool
		input  string
		want   string
	}{
		{"not a terminal", false, "", "a:1"},
		{"enter", true, "\n", "a:1"},
		{"number", true, "2\n", "b:2"},
		{"typed", true, "c:3\n", "c:3"},
		{"bad then good", true, "nonsense\n9\n1\n", "a:1"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		sh := NewShell(strings.NewReader(tt.input), nil, &out)
		sh.Prompt = tt.prompt
		got, err := sh.ChooseServer(hosts)
		if err != nil || got != tt.want {
			t.Errorf("%s: ChooseServer = %q, %v; want %q", tt.name, got, err, tt.want)
		}
		if tt.prompt && !strings.Contains(out.String(), "Server (number or host:port) [a:1]: ") {
			t.Errorf("%s: no prompt in %q", tt.name, out.String())
		}
	}
	sh := NewShell(strings.NewReader(""), nil, io.Discard)
	sh.Prompt = true
	if _, err := sh.ChooseServer(hosts); err == nil {
		t.Error("ChooseServer at end of input succeeded")
	}
}

func TestLongLines(t *testing.T) {
	var out bytes.Buffer
	long := strings.Repeat("x", proto.MaxBody+10)
	sh := NewShell(strings.NewReader("ok\n"+long+"\n"), nil, &out)
	if err := sh.Run(t.Context(), &fakeSession{protocol: "tcp"}); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("Run = %v, want a line-too-long error", err)
	}
	if out.String() != "echo: ok\n" {
		t.Errorf("output %q", out.String())
	}
}
