package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
	"github.com/socklab/socklab/services/moviedb/internal/store"
	"github.com/socklab/socklab/services/moviedb/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"--help"}, nil, 0, "usage: moviedb-server"},
		{[]string{"--help"}, nil, 0, "(default 256) [$MOVIEDB_MAX_CONNS_PER_SOURCE]"},
		{nil, []string{"MOVIEDB_MAX_CONNS_PER_SOURCE=0"}, 2, "max-conns-per-source must be -1 (no limit) or at least 1"},
		{[]string{"-ports", "5009-5000"}, nil, 2, "runs backwards"},
		{[]string{"extra"}, nil, 2, `unexpected arguments ["extra"]`},
		{nil, []string{"MOVIEDB_REPAIR=yes"}, 2, `repair "yes"`},
		{nil, []string{"MOVIEDB_PORTS=x"}, 2, `bad port "x"`},
		{nil, []string{"MOVIEDB_SEED=/does/not/exist.json"}, 2, "seed: open /does/not/exist.json"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		env := append([]string{"LOG_FORMAT=json", "MOVIEDB_PORTS=0"}, tt.env...)
		err := run(context.Background(), tt.args, env, &out, &out)
		code := service.ExitCode(err, &out)
		if code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("run(%q, %q) exit %d, output %q; want exit %d with %q", tt.args, tt.env, code, out.String(), tt.code, tt.want)
		}
	}
}

// started is a run() in a goroutine: its address and how to stop it.
type started struct {
	addr string
	stop func() error
}

// startRun runs the server in-process with env and waits for "listening".
func startRun(t *testing.T, env []string) started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, nil, append([]string{"LOG_FORMAT=json"}, env...), io.Discard, pw)
		pw.Close()
		errc <- err
	}()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { stop() })
	fields := nettest.WaitLog(t, pr, "listening")
	return started{addr: fields["addr"].(string), stop: stop}
}

func portOf(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestRunPortList checks the welcome ports: the first free port of the
// list is taken, a second server takes the next one, and a third, with all
// taken, fails naming the list.
func TestRunPortList(t *testing.T) {
	busy := nettest.ListenTCP(t)
	ports := []int{portOf(t, busy.Addr().String())}
	for range 2 { // two ports that were free a moment ago
		ln := nettest.ListenTCP(t)
		ports = append(ports, portOf(t, ln.Addr().String()))
		ln.Close()
	}
	list := fmt.Sprintf("%d,%d,%d", ports[0], ports[1], ports[2])
	env := []string{"MOVIEDB_HOST=127.0.0.1", "MOVIEDB_PORTS=" + list}

	first := startRun(t, env)
	if got := portOf(t, first.addr); got != ports[1] {
		t.Errorf("first server took port %d, want %d (the first free of %s)", got, ports[1], list)
	}
	second := startRun(t, env)
	if got := portOf(t, second.addr); got != ports[2] {
		t.Errorf("second server took port %d, want %d", got, ports[2])
	}
	var out bytes.Buffer
	err := run(context.Background(), nil, append([]string{"LOG_FORMAT=json"}, env...), io.Discard, &out)
	if err == nil || !strings.Contains(err.Error(), `no free port in the port list "`+list+`"`) {
		t.Errorf("third server: %v, want an error naming the list %s", err, list)
	}

	// Both answer, and the healthcheck finds one on the list.
	for _, s := range []started{first, second} {
		resp, err := proto.Do(context.Background(), nil, s.addr, proto.Request{Op: proto.OpGet, Title: "alien"})
		if err != nil || !resp.OK || resp.Movie.Year != 1979 {
			t.Errorf("get alien from %s = %+v, %v", s.addr, resp, err)
		}
	}
	if err := run(context.Background(), []string{"healthcheck"}, env, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck: %v", err)
	}
	if err := first.stop(); err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
}

func TestRunCorruptLog(t *testing.T) {
	dir := t.TempDir()
	st, _, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"One", "Two"} {
		if _, err := st.Add(context.Background(), store.Movie{Title: title, Year: 2000, Director: "D"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	path := filepath.Join(dir, store.LogFile)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-3], 0o600)

	env := []string{"MOVIEDB_HOST=127.0.0.1", "MOVIEDB_PORTS=0", "MOVIEDB_DATA_DIR=" + dir}
	var logs bytes.Buffer
	err = run(context.Background(), nil, append([]string{"LOG_FORMAT=json"}, env...), io.Discard, &logs)
	if err == nil || !strings.Contains(err.Error(), "MOVIEDB_REPAIR=truncate") || !strings.Contains(err.Error(), "bad record at offset") {
		t.Fatalf("run on a torn log: %v, want a refusal naming the offset and MOVIEDB_REPAIR", err)
	}
	if !strings.Contains(logs.String(), `"msg":"write-ahead log is damaged; refusing to start"`) {
		t.Errorf("refusal not logged: %s", logs.String())
	}

	s := startRun(t, append(env, "MOVIEDB_REPAIR=truncate"))
	ctx := context.Background()
	if resp, err := proto.Do(ctx, nil, s.addr, proto.Request{Op: proto.OpGet, Title: "One"}); err != nil || !resp.OK {
		t.Errorf("get One after repair = %+v, %v", resp, err)
	}
	if resp, err := proto.Do(ctx, nil, s.addr, proto.Request{Op: proto.OpGet, Title: "Two"}); err != nil || resp.OK {
		t.Errorf("get Two (the torn record) after repair = %+v, %v; want not found", resp, err)
	}
}

// buildServer compiles this command into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and kills a real process")
	}
	bin := filepath.Join(t.TempDir(), "moviedb-server")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a server process.
type proc struct {
	cmd  *exec.Cmd
	addr string
}

func startProc(t *testing.T, bin string, env []string) *proc {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"LOG_FORMAT=json", "MOVIEDB_HOST=127.0.0.1", "MOVIEDB_PORTS=0"}, env...)
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close() // the child holds the write end now: EOF when it dies
	p := &proc{cmd: cmd}
	t.Cleanup(func() { p.kill() })
	fields := nettest.WaitLog(t, pr, "listening")
	p.addr = fields["addr"].(string)
	return p
}

// kill sends SIGKILL: no shutdown code runs.
func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// TestKill9KeepsAcknowledgedWrites is the durability test on a real
// process: concurrent adds and edits, each acknowledged, then SIGKILL, a
// restart on the same data directory, and every change read back. Then a
// torn tail is made in the log: the server refuses to start, and starts
// with MOVIEDB_REPAIR=truncate.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	env := []string{"MOVIEDB_DATA_DIR=" + dir}
	p := startProc(t, bin, env)
	ctx, cancel := context.WithTimeout(context.Background(), nettest.Timeout)
	defer cancel()

	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				m := proto.Movie{Title: fmt.Sprintf("Kill %d-%d", w, i), Year: 1900 + w*10 + i, Director: "D", Genres: []string{}}
				resp, err := proto.Do(ctx, nil, p.addr, proto.Request{Op: proto.OpAdd, Movie: &m})
				if err != nil || !resp.OK {
					errs <- fmt.Errorf("add %s: %+v, %v", m.Title, resp, err)
				}
			}
			runtime := 100 + w
			resp, err := proto.Do(ctx, nil, p.addr, proto.Request{Op: proto.OpEdit, Title: fmt.Sprintf("kill %d-0", w),
				Set: &proto.Changes{Runtime: &runtime}})
			if err != nil || !resp.OK {
				errs <- fmt.Errorf("edit: %+v, %v", resp, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p.kill()

	p = startProc(t, bin, env)
	checkAll := func(addr string) {
		t.Helper()
		for w := range writers {
			for i := range each {
				title := fmt.Sprintf("Kill %d-%d", w, i)
				resp, err := proto.Do(ctx, nil, addr, proto.Request{Op: proto.OpGet, Title: title})
				if err != nil || !resp.OK {
					t.Fatalf("after SIGKILL and restart, get %s = %+v, %v", title, resp, err)
				}
				want := proto.Movie{Title: title, Year: 1900 + w*10 + i, Director: "D", Genres: []string{}}
				if i == 0 {
					want.Runtime = 100 + w
				}
				if fmt.Sprint(*resp.Movie) != fmt.Sprint(want) {
					t.Fatalf("after restart %s = %+v, want %+v", title, *resp.Movie, want)
				}
			}
		}
	}
	checkAll(p.addr)
	p.kill()

	// A torn tail: half a record appended, as a crash mid-write leaves.
	path := filepath.Join(dir, store.LogFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, '{', '"'})
	f.Close()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append([]string{"LOG_FORMAT=json", "MOVIEDB_HOST=127.0.0.1", "MOVIEDB_PORTS=0"}, env...)
	cmd.Stderr = &out
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out.String(), "truncated record") ||
		!strings.Contains(out.String(), `"offset":`) {
		t.Fatalf("start on a torn log: %v\n%s\nwant exit 1 naming the offset", err, out.String())
	}
	p = startProc(t, bin, append(env, "MOVIEDB_REPAIR=truncate"))
	checkAll(p.addr)
	if _, err := os.Stat(path + ".corrupt-" + strconv.FormatInt(fileSize(t, path), 10)); err != nil {
		t.Errorf("the cut tail was not saved aside: %v", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
