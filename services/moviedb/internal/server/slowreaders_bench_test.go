package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSlowReaders is issue 16 finding 6 against the real server
// process: it builds moviedb-server, starts it on loopback with 1,000
// long-titled films, opens 900 connections that each send the 26 bytes of
// {"op":"all","limit":1000} and never read, holds them for 5 s while
// sampling the server's resident memory, then reads the head of each
// response to count pages and busy errors. It reports the server's RSS
// before, the most seen while the clients held, its peak (VmHWM), the
// system's TCP socket memory (/proc/net/sockstat: both ends, kernel side),
// and the bytes waiting in the server's sockets' send queues
// (/proc/net/tcp tx_queue of the server's port).
// Run it with -benchtime=1x; it is bounded (900 connections, 5 s).
func BenchmarkSlowReaders(b *testing.B) {
	const conns, hold = 900, 5 * time.Second
	dir := b.TempDir()
	bin := filepath.Join(dir, "moviedb-server")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/moviedb-server")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	// Films with long titles (about 370 bytes each as JSON), so that a page
	// (about 370 KB) is more than loopback's socket buffers take.
	films := synthetic(1000)
	for i := range films {
		films[i].Title += ": " + strings.TrimSpace(strings.Repeat("The Extended Director's Cut ", 4))
		films[i].Director += " and " + strings.TrimSpace(strings.Repeat("Another Co-Director ", 3))
		films[i].Genres = []string{"Drama", "Comedy", "Action", "Horror", "Sci-Fi", "Crime"}
	}
	seed, _ := json.Marshal(films)
	seedPath := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seedPath, seed, 0o600); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		addr := net.JoinHostPort("127.0.0.1", port)
		srv := exec.Command(bin, "-host", "127.0.0.1", "-ports", port, "-seed", seedPath, "-log-level", "error")
		srv.Stderr = os.Stderr
		if err := srv.Start(); err != nil {
			b.Fatal(err)
		}
		stop := func() {
			srv.Process.Signal(syscall.SIGTERM)
			srv.Wait()
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				stop()
				b.Fatalf("server never listened on %s: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond) // polling a process that is starting
		}
		rss0, _ := procStatus(srv.Process.Pid)
		clients := make([]net.Conn, 0, conns)
		for range conns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				break
			}
			io.WriteString(c, `{"op":"all","limit":1000}`+"\n")
			clients = append(clients, c)
		}
		maxRSS, maxSock, maxSendQ := 0.0, 0.0, 0.0
		for end := time.Now().Add(hold); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			rss, _ := procStatus(srv.Process.Pid)
			maxRSS = max(maxRSS, rss)
			maxSock = max(maxSock, tcpSockMB())
			maxSendQ = max(maxSendQ, sendQueueMB(port))
		}
		_, hwm := procStatus(srv.Process.Pid)
		pages, busy := 0, 0
		for _, c := range clients {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			head := make([]byte, 40)
			if _, err := io.ReadFull(c, head); err == nil {
				switch {
				case bytes.HasPrefix(head, []byte(`{"ok":true,"movies"`)):
					pages++
				case bytes.Contains(head, []byte(`"busy"`)):
					busy++
				}
			}
			c.Close()
		}
		stop()
		b.ReportMetric(rss0, "rss-before-MB")
		b.ReportMetric(maxRSS, "rss-held-MB")
		b.ReportMetric(hwm, "rss-peak-MB")
		b.ReportMetric(maxSock, "tcp-sock-MB")
		b.ReportMetric(maxSendQ, "server-sendq-MB")
		b.ReportMetric(float64(len(clients)), "clients")
		b.ReportMetric(float64(pages), "pages")
		b.ReportMetric(float64(busy), "busy")
	}
}

// procStatus returns a process's VmRSS and VmHWM in MB.
func procStatus(pid int) (rss, hwm float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// tcpSockMB returns the memory of every TCP socket on the host in MB
// (/proc/net/sockstat counts it in pages).
func tcpSockMB() float64 {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "TCP:") {
			continue
		}
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "mem" {
				pages, _ := strconv.ParseFloat(f[i+1], 64)
				return pages * float64(os.Getpagesize()) / (1 << 20)
			}
		}
	}
	return 0
}

// sendQueueMB sums the send queues (tx_queue, unsent and unacknowledged
// bytes) of the IPv4 TCP sockets whose local port is port, in MB.
func sendQueueMB(port string) float64 {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(port)
	suffix := fmt.Sprintf(":%04X", p)
	total := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasSuffix(f[1], suffix) {
			continue
		}
		tx, _, _ := strings.Cut(f[4], ":")
		n, _ := strconv.ParseUint(tx, 16, 64)
		total += float64(n)
	}
	return total / (1 << 20)
}
