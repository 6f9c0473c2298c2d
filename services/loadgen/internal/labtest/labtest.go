// Package labtest runs the lab's real servers for loadgen's tests: it
// builds a service's server command from its module (services/<svc>, next
// to loadgen) with `go build`, once per test binary, and starts it on
// 127.0.0.1 with a port the kernel picks, learning the address from the
// server's "listening" log line.
//
// Every helper calls t.Fatal and so must run on the test's goroutine.
package labtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/nettest"
)

var (
	mu    sync.Mutex
	built = map[string]string{} // "svc/cmd" -> binary
	dir   string
)

// Dir is where binaries are built; the test's TestMain should remove it.
func Dir() string {
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "loadgen-labtest-")
		if err != nil {
			panic(err)
		}
		dir = d
	}
	return dir
}

// Cleanup removes the built binaries; call it from TestMain.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir = ""
	}
}

// servicesDir finds services/ from the test's working directory (a package
// directory inside services/loadgen).
func servicesDir(t testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if filepath.Base(d) == "loadgen" && exists(filepath.Join(d, "go.mod")) {
			return filepath.Dir(d)
		}
	}
	t.Fatalf("no services/loadgen above %s", wd)
	return ""
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Has reports whether the service's server command exists in the tree, for
// tests of services whose server may not be written yet.
func Has(t testing.TB, svc, cmd string) bool {
	return exists(filepath.Join(servicesDir(t), svc, "cmd", cmd, "main.go"))
}

// Build builds services/<svc>/cmd/<cmd> and returns the binary's path. It
// skips the test when the command is not written yet.
func Build(t testing.TB, svc, cmd string) string {
	t.Helper()
	if !Has(t, svc, cmd) {
		t.Skipf("services/%s/cmd/%s/main.go does not exist yet", svc, cmd)
	}
	out := Dir()
	mu.Lock()
	defer mu.Unlock()
	key := svc + "/" + cmd
	if bin, ok := built[key]; ok {
		return bin
	}
	bin := filepath.Join(out, cmd)
	c := exec.Command("go", "build", "-o", bin, "./cmd/"+cmd)
	c.Dir = filepath.Join(servicesDir(t), svc)
	c.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", key, err, b)
	}
	built[key] = bin
	return bin
}

// Server is a running server process.
type Server struct {
	// Addr is the address of its first "listening" log line.
	Addr string
	// Log holds its log output so far.
	Log *syncBuffer
}

// Start runs bin with args and env added to the test's environment, waits
// for its "listening" log line and returns its address. At the end of the
// test it stops the server with SIGTERM and fails the test if the server
// does not exit cleanly.
func Start(t testing.TB, bin string, env []string, args ...string) *Server {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "LOG_FORMAT=json", "LOG_LEVEL=info", "METRICS_ADDR="), env...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = pw
	cmd.Stdout = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		defer pr.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("%s exited with %v\n%s", filepath.Base(bin), err, logs.String())
			}
		case <-time.After(nettest.Timeout):
			cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not stop within %v of SIGTERM\n%s", filepath.Base(bin), nettest.Timeout, logs.String())
		}
	})
	fields := nettest.WaitLog(t, teeReader{pr, logs}, "listening")
	addr, _ := fields["addr"].(string)
	if addr == "" {
		t.Fatalf("%s: listening line without addr: %v", filepath.Base(bin), fields)
	}
	return &Server{Addr: addr, Log: logs}
}

type teeReader struct {
	r *os.File
	w *syncBuffer
}

func (t teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.w.Write(p[:n])
	return n, err
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
