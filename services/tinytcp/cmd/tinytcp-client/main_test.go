package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/tinytcp/internal/client"
	"github.com/socklab/socklab/services/tinytcp/internal/server"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// seedDemo is the seed's demo conversation, shared with the server's
// transcript tests.
const seedDemo = "../../internal/server/testdata/transcripts/seed-demo.txt"

var bogota = func() *time.Location {
	loc, err := time.LoadLocation("America/Bogota")
	if err != nil {
		panic(err)
	}
	return loc
}()

// startServer runs a real TinyTCP server in Bogota's zone; with a zero at
// its clock is the real one.
func startServer(t *testing.T, at time.Time) (host, port string) {
	t.Helper()
	cfg, err := config.Load[server.Config]("TINYTCP_", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &server.Handler{Location: bogota}
	if !at.IsZero() {
		h.Now = func() time.Time { return at }
	}
	addr := nettest.ServeTCP(t, h.TCPServer(cfg))
	host, port, _ = net.SplitHostPort(addr)
	return host, port
}

var fixed = time.Date(2025, 9, 12, 17, 24, 13, 0, bogota)

// timeField matches TIME's date and time of day; the offset is compared
// as it stands (Bogota keeps -05:00 all year).
var timeField = regexp.MustCompile(`(?m)^<- TIME \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)

// TestDemoTranscript runs the client with only HOST PORT against a real
// server on the real clock and compares its output with the seed's, byte
// for byte, once the time and the test's port are put back to the seed's.
func TestDemoTranscript(t *testing.T) {
	want, err := os.ReadFile(seedDemo)
	if err != nil {
		t.Fatal(err)
	}
	host, port := startServer(t, time.Time{})
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{host, port}, nil, nil, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.Bytes())
	}
	got := stdout.Bytes()
	if n := len(timeField.FindAll(got, -1)); n != 1 {
		t.Fatalf("%d TIME replies match %s in\n%s", n, timeField, got)
	}
	got = timeField.ReplaceAll(got, []byte("<- TIME 2025-09-12T17:24:13"))
	got = bytes.ReplaceAll(got, []byte("CONNECT to "+net.JoinHostPort(host, port)+"\n"), []byte("CONNECT to 127.0.0.1:40000\n"))
	if !bytes.Equal(got, want) {
		t.Errorf("demo output differs from %s\n--- got\n%s--- want\n%s", seedDemo, got, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %q", stderr.Bytes())
	}
}

func TestRunModes(t *testing.T) {
	host, port := startServer(t, fixed)
	connect := "CONNECT to " + net.JoinHostPort(host, port) + "\n<- " + proto.DefaultBanner + "\n"
	timeReply := "<- TIME 2025-09-12T17:24:13-05:00\n"
	tests := []struct {
		name    string
		args    []string
		stdin   io.Reader
		want    string
		wantErr error
	}{
		{
			name: "-c",
			args: []string{"-c", "time", "-c", "ECHO  a ", "-c", "HELP", host, port},
			want: connect + "-> time\n" + timeReply + "-> ECHO  a \n<- ECHO  a \n-> HELP\n<- " + proto.HelpReply + "\n-> QUIT\n<- BYE\n",
		},
		{
			name: "-c after HOST PORT",
			args: []string{host, port, "-c", "ECHO x"},
			want: connect + "-> ECHO x\n<- ECHO x\n-> QUIT\n<- BYE\n",
		},
		{
			name:  "stdin with QUIT in the middle",
			args:  []string{host, port},
			stdin: strings.NewReader("TIME\n\nquit\r\nECHO again\n"),
			want:  connect + "-> TIME\n" + timeReply + "-> quit\n<- BYE\n" + connect + "-> ECHO again\n<- ECHO again\n-> QUIT\n<- BYE\n",
		},
		{
			name:  "empty stdin runs the demo",
			args:  []string{host, port},
			stdin: strings.NewReader(""),
			want:  connect + "-> TIME\n" + timeReply + "-> QUIT\n<- BYE\n" + connect + "-> ECHO Hello from client\n<- ECHO Hello from client\n-> QUIT\n<- BYE\n",
		},
		{
			name:  "-i",
			args:  []string{"-i", host, port},
			stdin: strings.NewReader("echo hi\nbogus\n"),
			want:  connect + "-> <- ECHO hi\n-> <- ERROR UNKNOWN_COMMAND\n-> QUIT\n<- BYE\n",
			// ERROR counts as a failure in every mode.
			wantErr: client.ErrRefused,
		},
		{
			name:    "refused command",
			args:    []string{"-c", "ECHO", host, port},
			want:    connect + "-> ECHO\n<- ERROR BAD_ARGUMENTS\n-> QUIT\n<- BYE\n",
			wantErr: client.ErrRefused,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, nil, tt.stdin, &stdout, &stderr)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("run error %v, want %v", err, tt.wantErr)
			}
			if stdout.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", stdout.String(), tt.want)
			}
			wantCode := 0
			if tt.wantErr != nil {
				wantCode = 1
			}
			if code := service.ExitCode(err, io.Discard); code != wantCode {
				t.Errorf("exit status %d, want %d", code, wantCode)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	addr := nettest.RefusedAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{host, port}, nil, nil, &stdout, &stderr)
	if !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if code := service.ExitCode(err, &stderr); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if msg := stderr.String(); !strings.Contains(msg, "cannot connect to "+addr+": connection refused") {
		t.Errorf("stderr %q does not say the connection was refused", msg)
	}
	if want := "CONNECT to " + addr + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args    []string
		environ []string
		want    int
		wantMsg string
	}{
		{args: []string{"-h"}, want: 0, wantMsg: "usage: tinytcp-client"},
		{args: nil, want: 2, wantMsg: "want HOST PORT, got 0 arguments"},
		{args: []string{"localhost"}, want: 2, wantMsg: "want HOST PORT"},
		{args: []string{"localhost", "40000", "x"}, want: 2, wantMsg: "got 3 arguments"},
		{args: []string{"localhost", "http"}, want: 2, wantMsg: `port "http"`},
		{args: []string{"localhost", "0"}, want: 2, wantMsg: "1 to 65535"},
		{args: []string{"localhost", "65536"}, want: 2, wantMsg: "1 to 65535"},
		{args: []string{"-i", "-c", "TIME", "localhost", "40000"}, want: 2, wantMsg: "exclude"},
		{args: []string{"-c", "TIME\nQUIT", "localhost", "40000"}, want: 2, wantMsg: "one line"},
		{args: []string{"-x", "localhost", "40000"}, want: 2, wantMsg: "not defined"},
		{args: []string{"-timeout", "0s", "localhost", "40000"}, want: 2, wantMsg: "timeout must be positive"},
		{environ: []string{"TINYTCP_TIMEOUT=soon"}, args: []string{"localhost", "40000"}, want: 2, wantMsg: "TINYTCP_TIMEOUT"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, tt.environ, nil, &stdout, &stderr)
		code := service.ExitCode(err, &stderr)
		if code != tt.want || !strings.Contains(stderr.String(), tt.wantMsg) {
			t.Errorf("run(%q) exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, stderr.String(), tt.want, tt.wantMsg)
		}
	}
}

func TestHasScript(t *testing.T) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	file, err := os.Open(seedDemo)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tests := []struct {
		name string
		give io.Reader
		want bool
	}{
		{"nil", nil, false},
		{"reader", strings.NewReader("TIME\n"), true},
		{"/dev/null", devNull, false},
		{"pipe", pr, true},
		{"file", file, true},
	}
	for _, tt := range tests {
		if got := hasScript(tt.give); got != tt.want {
			t.Errorf("hasScript(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
