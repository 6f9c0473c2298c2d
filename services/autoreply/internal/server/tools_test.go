package server_test

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/autoreply/proto"
	"github.com/socklab/socklab/services/kit/nettest"
)

// Real clients from the distribution (netcat-openbsd, socat) talk to the
// server: the README promises they work. make deps installs them.
func TestCommonToolsAsClients(t *testing.T) {
	h := newHandler(t)
	tcp := nettest.ServeTCP(t, h.TCPServer(defaults()))
	udp := nettest.ServeUDP(t, h.UDPServer(defaults()))
	tcpHost, tcpPort, _ := strings.Cut(tcp, ":")
	udpHost, udpPort, _ := strings.Cut(udp, ":")
	tests := []struct {
		name  string
		tool  string
		args  []string
		input string
		want  []string // the messages, in reply order
	}{
		{"nc tcp", "nc", []string{"-N", tcpHost, tcpPort}, "hello\nworld\r\n", []string{"hello", "world"}},
		{"nc udp", "nc", []string{"-u", "-w10", udpHost, udpPort}, "datagram\n", []string{"datagram\n"}},
		{"socat tcp", "socat", []string{"-t10", "-", "TCP:" + tcp}, "via socat\n", []string{"via socat"}},
		{"socat udp", "socat", []string{"-t10", "-", "UDP:" + udp}, "udp via socat", []string{"udp via socat"}},
	}
	// Over UDP the tools cannot tell the last reply from a pause: they quit
	// after their idle time (-w, -t) with no answer. That time is long so
	// that a slow reply on a loaded machine still counts, and the tool is
	// stopped as soon as every expected reply has been printed.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, err := exec.LookPath(tt.tool)
			if err != nil {
				t.Skipf("%s is not installed (make deps installs it)", tt.tool)
			}
			ctx, cancel := context.WithTimeout(context.Background(), nettest.Timeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, path, tt.args...)
			cmd.Stdin = strings.NewReader(tt.input)
			var out bytes.Buffer
			cmd.Stdout = &stopWhenAnswered{out: &out, n: len(tt.want), stop: cancel}
			cmd.WaitDelay = time.Second
			if err := cmd.Run(); err != nil && out.Len() == 0 {
				t.Fatalf("%s %q: %v", tt.tool, tt.args, err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%s printed %q, want %d replies", tt.tool, out.String(), len(tt.want))
			}
			for i, msg := range tt.want {
				r, err := proto.Parse([]byte(lines[i]))
				if err != nil || !r.Matches([]byte(msg)) {
					t.Errorf("%s reply %d = %q (%v), want a reply to %q", tt.tool, i, lines[i], err, msg)
				}
			}
		})
	}
}

// stopWhenAnswered collects a tool's output in out and calls stop once out
// holds n well-formed reply lines (the last one may lack its "\n": a UDP
// reply has none). Whether they answer the right messages is checked after.
type stopWhenAnswered struct {
	out  *bytes.Buffer
	n    int
	stop func()
}

func (w *stopWhenAnswered) Write(p []byte) (int, error) {
	w.out.Write(p)
	lines := strings.Split(strings.TrimSuffix(w.out.String(), "\n"), "\n")
	if len(lines) < w.n {
		return len(p), nil
	}
	for _, l := range lines {
		if _, err := proto.Parse([]byte(l)); err != nil {
			return len(p), nil
		}
	}
	w.stop()
	return len(p), nil
}
