package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/connid/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// silent and refuse are special script entries for fakeServer.
const (
	silent = ""
	refuse = "<refuse>"
)

// fakeServer answers each dial with the next entry of its script over
// net.Pipe, and records the request of each.
type fakeServer struct {
	network string
	script  []string
	wg      sync.WaitGroup

	mu       sync.Mutex
	requests []string
}

func (f *fakeServer) dial(_ context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, "")
	f.mu.Unlock()
	if network != f.network || addr != "192.0.2.1:9002" {
		return nil, errors.New("dialled " + network + " " + addr)
	}
	if n >= len(f.script) {
		return nil, errors.New("dialled more often than scripted")
	}
	if f.script[n] == refuse {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	client, server := net.Pipe()
	f.wg.Go(func() {
		defer server.Close()
		buf := make([]byte, 512)
		k, _ := server.Read(buf)
		f.mu.Lock()
		f.requests[n] = string(buf[:k])
		f.mu.Unlock()
		if reply := f.script[n]; reply != silent {
			if f.network == "tcp" {
				reply += "\n"
			}
			server.Write([]byte(reply))
		}
		// Hold the socket open until the client closes it.
		io.Copy(io.Discard, server)
	})
	return client, nil
}

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		network string
		id      string
		script  []string
		ids     []string // answers to the prompts
		stdin   string
		want    []string // requests the server must see
		wantErr error
	}{
		{name: "ok", id: "9876", script: []string{"OK 9876 192.0.2.7 40000"}, want: []string{"HELLO 9876"}},
		{name: "ok-tcp", network: "tcp", id: "9876", script: []string{"OK 9876 2001:db8::7 40000"}, want: []string{"HELLO 9876\n"}},
		{name: "reset-then-ok", id: "9876", ids: []string{"2678"},
			script: []string{"RESET 9876", "OK 2678 192.0.2.7 40001"}, want: []string{"HELLO 9876", "HELLO 2678"}},
		{name: "three-resets", id: "1", ids: []string{"2", "3"}, wantErr: ErrFailure,
			script: []string{"RESET 1", "RESET 2", "RESET 3"}, want: []string{"HELLO 1", "HELLO 2", "HELLO 3"}},
		{name: "timeout-then-ok", id: "1", ids: []string{"5"},
			script: []string{silent, "OK 5 192.0.2.7 40002"}, want: []string{"HELLO 1", "HELLO 5"}},
		{name: "three-timeouts", id: "1", ids: []string{"2", "3"}, wantErr: ErrFailure,
			script: []string{silent, silent, silent}, want: []string{"HELLO 1", "HELLO 2", "HELLO 3"}},
		{name: "refused", id: "1", ids: []string{"2", "3"}, wantErr: ErrFailure,
			script: []string{refuse, refuse, refuse}, want: []string{"", "", ""}},
		{name: "bad-replies", id: "1", ids: []string{"2", "3"}, wantErr: ErrFailure,
			script: []string{"ERROR BAD_REQUEST", "OK 3 192.0.2.7 1", "\xffgarbage"}, want: []string{"HELLO 1", "HELLO 2", "HELLO 3"}},
		{name: "stdin", id: "1", stdin: "\nnot valid\n7\n",
			script: []string{"RESET 1", "OK 7 192.0.2.7 40003"}, want: []string{"HELLO 1", "HELLO 7"}},
		{name: "stdin-ends", id: "1", stdin: "", wantErr: ErrFailure,
			script: []string{"RESET 1"}, want: []string{"HELLO 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				network := tt.network
				if network == "" {
					network = "udp"
				}
				srv := &fakeServer{network: network, script: tt.script}
				var out, diag bytes.Buffer
				p := &Prompter{IDs: tt.ids, In: bufio.NewReader(strings.NewReader(tt.stdin)), Out: &out, Echo: true, Diag: &diag}
				c := &Client{
					Network: network, Server: "192.0.2.1:9002", Dial: srv.dial,
					// synctest's clock starts at 2000-01-01 00:00:00 UTC.
					Now: func() time.Time { return time.Now().UTC() },
					Out: &out, Diag: &diag, NextID: p.Next,
				}
				_, err := c.Run(context.Background(), tt.id)
				srv.wg.Wait()
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Errorf("Run = %v, want %v", err, tt.wantErr)
				}
				if got := strings.Join(srv.requests, "|"); got != strings.Join(tt.want, "|") {
					t.Errorf("server saw %q, want %q (one new socket per try)", srv.requests, tt.want)
				}
				golden(t, filepath.Join("testdata", tt.name+".txt"), out.String()+"--- stderr\n"+diag.String())
			})
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestTimeoutIsExact: the default timeout is 15 s, the -timeout value
// otherwise.
func TestTimeoutIsExact(t *testing.T) {
	for _, timeout := range []time.Duration{0, 2 * time.Second} {
		synctest.Test(t, func(t *testing.T) {
			srv := &fakeServer{network: "udp", script: []string{silent}}
			c := &Client{Network: "udp", Server: "192.0.2.1:9002", Dial: srv.dial, Timeout: timeout, Out: io.Discard, Diag: io.Discard}
			start := time.Now()
			_, err := c.Try(context.Background(), "1")
			srv.wg.Wait()
			want := timeout
			if want == 0 {
				want = DefaultTimeout
			}
			if !errors.Is(err, errNoReply) || time.Since(start) != want {
				t.Errorf("Try = %v after %v, want no reply after %v", err, time.Since(start), want)
			}
		})
	}
}

// TestCancelWhileWaiting: a signal ends the wait for a reply at once.
func TestCancelWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &fakeServer{network: "udp", script: []string{silent}}
		var out bytes.Buffer
		c := &Client{Network: "udp", Server: "192.0.2.1:9002", Dial: srv.dial, Out: &out, Diag: io.Discard}
		ctx, cancel := context.WithCancelCause(context.Background())
		stop := errors.New("interrupt")
		time.AfterFunc(time.Second, func() { cancel(stop) })
		start := time.Now()
		_, err := c.Run(ctx, "1")
		srv.wg.Wait()
		if !errors.Is(err, stop) || time.Since(start) != time.Second {
			t.Errorf("Run = %v after %v, want the cause after 1s", err, time.Since(start))
		}
		if out.Len() != 0 {
			t.Errorf("printed %q after a signal", out.String())
		}
	})
}

// TestCancelAtPrompt: a signal ends a prompt nobody answers.
func TestCancelAtPrompt(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	p := &Prompter{In: bufio.NewReader(pr), Out: io.Discard, Diag: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next = %v, want context.Canceled", err)
	}
}

func TestPrompter(t *testing.T) {
	var out, diag bytes.Buffer
	n := 0
	p := &Prompter{
		IDs: []string{"a", "b"}, Auto: true,
		Random: func() string { n++; return "r" + string(rune('0'+n)) },
		Out:    &out, Diag: &diag,
	}
	var got []string
	for range 4 {
		id, err := p.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if strings.Join(got, ",") != "a,b,r1,r2" {
		t.Errorf("IDs = %q, want a, b, then random ones", got)
	}
	if want := Prompt + "a\n" + Prompt + "b\n" + Prompt + "r1\n" + Prompt + "r2\n"; out.String() != want {
		t.Errorf("output %q, want a prompt and the answer per ID", out.String())
	}

	p = &Prompter{Auto: true, Out: io.Discard}
	for range 10 {
		id, _ := p.Next(context.Background())
		if err := proto.ValidID(id); err != nil {
			t.Errorf("random ID %q: %v", id, err)
		}
	}

	p = &Prompter{In: bufio.NewReader(strings.NewReader(strings.Repeat("bad id\n", maxEntries+1))), Out: io.Discard, Diag: io.Discard}
	if _, err := p.Next(context.Background()); err == nil {
		t.Error("Next accepted only invalid entries")
	}
}
