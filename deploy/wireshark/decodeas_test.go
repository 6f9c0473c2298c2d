package wireshark

import (
	"strings"
	"testing"
)

// TestDecodeAsAndPreferences moves every protocol off its lab port: with
// Decode As (tshark -d) and with its port preference (tshark -o), each
// decodes there, replies told from requests by the port given.
func TestDecodeAsAndPreferences(t *testing.T) {
	c := newCapture(t)
	const port = 5555
	srv, cli := hostPort(serverIP, port), hostPort(clientIP, 46000)
	conn := c.tcp(cli, srv)
	conn.client([]byte("hello\n"))
	conn.server([]byte(`REPLY id=9c1f0e7d55aa2b3c at=2025-09-12T22:24:13.104729381Z len=5 snippet="hello" note="copy that"` + "\n"))
	conn.close()
	c.udp(cli, srv, []byte("HELLO 1"))
	c.udp(srv, cli, []byte("OK 1 172.30.0.10 46000"))
	home := pluginHome(t)
	pcap := c.write()

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"decode as", []string{"-d", "tcp.port==5555,autoreply", "-d", "udp.port==5555,connid"},
			[]string{"AutoReply\tC: (5 bytes) hello", "AutoReply\tS: REPLY id=9c1f0e7d55aa2b3c len=5", "ConnID\tC: HELLO 1", "ConnID\tS: OK 1 172.30.0.10 46000"}},
		{"preferences", []string{"-o", "autoreply.tcp_port:5555", "-o", "connid.udp_port:5555"},
			[]string{"AutoReply\tC: (5 bytes) hello", "AutoReply\tS: REPLY id=9c1f0e7d55aa2b3c len=5", "ConnID\tC: HELLO 1", "ConnID\tS: OK 1 172.30.0.10 46000"}},
		{"neither", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-r", pcap}, tt.args...)
			args = append(args, "-Y", "autoreply || connid", "-T", "fields", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info")
			out := tshark(t, home, args...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("tshark %v: no %q in:\n%s", tt.args, w, out)
				}
			}
			if tt.want == nil && strings.TrimSpace(out) != "" {
				t.Errorf("port %d decoded without Decode As or a preference:\n%s", port, out)
			}
		})
	}
}
