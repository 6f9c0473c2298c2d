package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/tinytcp/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const banner = proto.DefaultBanner + "\n"

// fakeServer plays a scripted server on one end of a pipe for each
// connection the client opens.
type fakeServer func(c net.Conn, r *bufio.Reader)

// runFake runs a Client against serve inside a synctest bubble (so
// timeouts are exact and instant) and returns its output and error.
func runFake(t *testing.T, serve fakeServer, cmds ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	var err error
	synctest.Test(t, func(t *testing.T) {
		c := &Client{
			Addr:    "127.0.0.1:40000",
			Timeout: 10 * time.Second,
			Out:     &out,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				cc, sc := net.Pipe()
				go func() {
					defer sc.Close()
					serve(sc, bufio.NewReader(sc))
				}()
				return cc, nil
			},
		}
		src := Commands(cmds)
		err = c.Run(context.Background(), &src)
		synctest.Wait()
	})
	return out.String(), err
}

// answer is a well-behaved server that answers count commands.
func answer(c net.Conn, r *bufio.Reader) {
	io.WriteString(c, banner)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		cmd, perr := proto.Parse([]byte(line))
		var reply []byte
		switch {
		case perr != nil:
			reply = proto.AppendError(nil, perr.(proto.Code))
		case cmd.Verb == proto.Time:
			reply = proto.AppendTime(nil, time.Date(2025, 9, 12, 17, 24, 13, 0, time.FixedZone("", -5*3600)))
		case cmd.Verb == proto.Echo:
			reply = proto.AppendEcho(nil, cmd.Text)
		case cmd.Verb == proto.Help:
			reply = []byte(proto.HelpReply)
		case cmd.Verb == proto.Quit:
			io.WriteString(c, "BYE\n")
			return
		}
		c.Write(append(reply, '\n'))
	}
}

func TestRunDemo(t *testing.T) {
	out, err := runFake(t, answer, DemoCommands...)
	if err != nil {
		t.Fatal(err)
	}
	want := `CONNECT to 127.0.0.1:40000
<- WELCOME, I'm TinyServer not pressure
-> TIME
<- TIME 2025-09-12T17:24:13-05:00
-> QUIT
<- BYE
CONNECT to 127.0.0.1:40000
<- WELCOME, I'm TinyServer not pressure
-> ECHO Hello from client
<- ECHO Hello from client
-> QUIT
<- BYE
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestRunEndsWithQuit(t *testing.T) {
	out, err := runFake(t, answer, "HELP")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out, "-> HELP\n<- "+proto.HelpReply+"\n-> QUIT\n<- BYE\n") {
		t.Errorf("output does not end with HELP then QUIT:\n%s", out)
	}
	out, err = runFake(t, answer)
	if err != nil || out != "" {
		t.Errorf("no commands: got %q, %v; want no connection", out, err)
	}
}

func TestRunRefused(t *testing.T) {
	out, err := runFake(t, answer, "NOPE", "ECHO", "TIME")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "2 commands") {
		t.Errorf("err = %v, want ErrRefused for 2 commands", err)
	}
	for _, want := range []string{"<- ERROR UNKNOWN_COMMAND\n", "<- ERROR BAD_ARGUMENTS\n", "-> TIME\n<- TIME ", "<- BYE\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunDisplay(t *testing.T) {
	out, err := runFake(t, answer, "ECHO \x1b[31mred", "ECHO tab\there", "ECHO héllo")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`-> "ECHO \x1b[31mred"` + "\n" + `<- "ECHO \x1b[31mred"` + "\n",
		`<- "ECHO tab\there"` + "\n",
		"<- ECHO héllo\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestRunFailures plays servers that misbehave, each in its own way.
func TestRunFailures(t *testing.T) {
	tests := []struct {
		name     string
		serve    fakeServer
		cmds     []string
		wantErr  error
		wantMsg  string
		wantOut  string
		wantTime time.Duration
	}{
		{
			name:    "closes before the banner",
			serve:   func(c net.Conn, r *bufio.Reader) {},
			cmds:    []string{"TIME"},
			wantErr: ErrClosed, wantMsg: "before its banner",
			wantOut: "CONNECT to 127.0.0.1:40000\n",
		},
		{
			name:    "greets with something else",
			serve:   func(c net.Conn, r *bufio.Reader) { io.WriteString(c, "HELLO there\n") },
			cmds:    []string{"TIME"},
			wantErr: ErrProtocol, wantMsg: `greeted with "HELLO there"`,
		},
		{
			name:    "busy",
			serve:   func(c net.Conn, r *bufio.Reader) { io.WriteString(c, "ERROR SERVER_BUSY\n") },
			cmds:    []string{"TIME"},
			wantErr: ErrBusy, wantMsg: "maximum of connections",
			wantOut: "CONNECT to 127.0.0.1:40000\n<- ERROR SERVER_BUSY\n",
		},
		{
			name: "closes before answering",
			serve: func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, banner)
				r.ReadString('\n')
			},
			cmds:    []string{"TIME"},
			wantErr: ErrClosed, wantMsg: `before an answer to "TIME"`,
			wantOut: "CONNECT to 127.0.0.1:40000\n<- " + proto.DefaultBanner + "\n-> TIME\n",
		},
		{
			name: "closes mid-line",
			serve: func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, banner)
				r.ReadString('\n')
				io.WriteString(c, "TIME 2025")
			},
			cmds:    []string{"TIME"},
			wantErr: ErrClosed, wantMsg: `in the middle of an answer to "TIME" (got "TIME 2025")`,
		},
		{
			name: "wrong reply",
			serve: func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, banner)
				r.ReadString('\n')
				io.WriteString(c, "ECHO TIME\n")
			},
			cmds:    []string{"TIME"},
			wantErr: ErrProtocol, wantMsg: `to "TIME" the server sent`,
		},
		{
			name: "echo altered",
			serve: func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, banner)
				r.ReadString('\n')
				io.WriteString(c, "ECHO a b\n")
			},
			cmds:    []string{"ECHO a  b"},
			wantErr: ErrProtocol, wantMsg: "ECHO text differs",
		},
		{
			name: "garbage",
			serve: func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, banner)
				r.ReadString('\n')
				io.WriteString(c, "\x00\x01 what\n")
			},
			cmds:    []string{"HELP"},
			wantErr: ErrProtocol, wantMsg: "unknown reply",
		},
		{
			name: "endless line",
			serve: func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, banner)
				r.ReadString('\n')
				c.Write(bytes.Repeat([]byte("E"), MaxReplyBytes+1))
			},
			cmds:    []string{"HELP"},
			wantErr: ErrProtocol, wantMsg: "longer than 65536 bytes",
		},
		{
			name: "never answers",
			serve: func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, banner)
				r.ReadString('\n')
				r.ReadString('\n') // until the client hangs up
			},
			cmds:    []string{"TIME"},
			wantErr: ErrTimeout, wantMsg: `waited 10s for an answer to "TIME"`,
			wantTime: 10 * time.Second,
		},
		{
			name: "refuses QUIT",
			serve: func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, banner)
				for range 10 {
					r.ReadString('\n')
					io.WriteString(c, "ERROR UNKNOWN_COMMAND\n")
				}
			},
			cmds:    []string{"NOPE"},
			wantErr: ErrRefused, wantMsg: "refused to end the session",
		},
		{
			name: "line too long",
			serve: func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, banner)
				r.ReadString('\n')
				io.WriteString(c, "ERROR LINE_TOO_LONG\n")
			},
			cmds:    []string{"ECHO long", "TIME"},
			wantErr: ErrClosed, wantMsg: "after ERROR LINE_TOO_LONG",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var elapsed time.Duration
			serve := func(c net.Conn, r *bufio.Reader) {
				start := time.Now()
				tt.serve(c, r)
				elapsed = time.Since(start)
			}
			out, err := runFake(t, serve, tt.cmds...)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
			if tt.wantOut != "" && out != tt.wantOut {
				t.Errorf("output %q, want %q", out, tt.wantOut)
			}
			if tt.wantTime != 0 && elapsed != tt.wantTime {
				t.Errorf("gave up after %v, want %v", elapsed, tt.wantTime)
			}
		})
	}
}

func TestRunInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		cause := errors.New("interrupted by the test")
		c := &Client{
			Addr: "127.0.0.1:40000", Timeout: time.Hour, Out: io.Discard,
			Dial: func(context.Context, string, string) (net.Conn, error) {
				cc, sc := net.Pipe()
				go func() {
					defer sc.Close()
					io.WriteString(sc, banner)
					bufio.NewReader(sc).ReadString('\n')
					cancel(cause) // and never answer
					io.Copy(io.Discard, sc)
				}()
				return cc, nil
			},
		}
		src := Commands{"TIME"}
		start := time.Now()
		err := c.Run(ctx, &src)
		if !errors.Is(err, cause) {
			t.Errorf("err = %v, want the context's cause", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("returned after %v, want at once", d)
		}
	})
}

func TestInteractive(t *testing.T) {
	tests := []struct {
		name, stdin, want string
	}{
		{
			name:  "quit",
			stdin: "time\n\nECHO  hi \nQUIT\nHELP\n",
			want: "CONNECT to 127.0.0.1:40000\n<- " + proto.DefaultBanner + "\n" +
				"-> <- TIME 2025-09-12T17:24:13-05:00\n-> <- ECHO  hi \n-> <- BYE\n",
		},
		{
			name:  "end of input",
			stdin: "HELP\r\n",
			want: "CONNECT to 127.0.0.1:40000\n<- " + proto.DefaultBanner + "\n" +
				"-> <- " + proto.HelpReply + "\n-> QUIT\n<- BYE\n",
		},
		{
			name:  "no input",
			stdin: "",
			want:  "CONNECT to 127.0.0.1:40000\n<- " + proto.DefaultBanner + "\n-> QUIT\n<- BYE\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var out bytes.Buffer
				c := &Client{
					Addr: "127.0.0.1:40000", Timeout: time.Second, Out: &out, Interactive: true,
					Dial: func(context.Context, string, string) (net.Conn, error) {
						cc, sc := net.Pipe()
						go func() {
							defer sc.Close()
							answer(sc, bufio.NewReader(sc))
						}()
						return cc, nil
					},
				}
				lines := NewLines(strings.NewReader(tt.stdin))
				defer lines.Close()
				if err := c.Run(context.Background(), lines); err != nil {
					t.Fatal(err)
				}
				if out.String() != tt.want {
					t.Errorf("got %q, want %q", out.String(), tt.want)
				}
				synctest.Wait()
			})
		})
	}
}

func TestLines(t *testing.T) {
	lines := NewLines(strings.NewReader("TIME\r\n\n   \nECHO  a \nlast"))
	defer lines.Close()
	var got []string
	for range 10 {
		l, err := lines.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	if want := []string{"TIME", "ECHO  a ", "last"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	if lines.Count() != 3 {
		t.Errorf("Count = %d, want 3", lines.Count())
	}
	if _, err := lines.Next(context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("Next after the end = %v, want io.EOF again", err)
	}
}

// TestLinesClose checks that Close lets the reading goroutine go although
// nobody takes its next line.
func TestLinesClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lines := NewLines(strings.NewReader("a\nb\nc\n"))
		if l, err := lines.Next(context.Background()); l != "a" || err != nil {
			t.Fatalf("Next = %q, %v", l, err)
		}
		lines.Close()
		synctest.Wait() // the bubble fails if the goroutine is still blocked
		lines.Close()   // twice is fine
	})
}
