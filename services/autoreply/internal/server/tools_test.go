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
	tcp := nettest.ServeTCP(t, h.TCPServer(defaults(), nil))
	udp := nettest.ServeUDP(t, h.UDPServer(defaults(), nil))
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
		{"nc udp", "nc", []string{"-u", "-w1", udpHost, udpPort}, "datagram\n", []string{"datagram\n"}},
		{"socat tcp", "socat", []string{"-t1", "-", "TCP:" + tcp}, "via socat\n", []string{"via socat"}},
		{"socat udp", "socat", []string{"-t1", "-", "UDP:" + udp}, "udp via socat", []string{"udp via socat"}},
	}
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
			cmd.Stdout = &out
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
