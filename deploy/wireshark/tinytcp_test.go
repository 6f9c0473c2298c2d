package wireshark

import (
	"fmt"
	"testing"

	"github.com/socklab/socklab/services/kit/lab"
)

// Lab-like addresses: servers on 172.30.0.2.., clients from 172.30.0.10.
var (
	serverIP = "172.30.0.2"
	clientIP = "172.30.0.10"
)

func hostPort(ip string, port int) string { return fmt.Sprintf("%s:%d", ip, port) }

func TestTinyTCP(t *testing.T) {
	c := newCapture(t)
	srv := hostPort(serverIP, lab.TinyTCP.Port)
	conn := c.tcp(hostPort(clientIP, 41000), srv)
	conn.server([]byte("WELCOME, I'm TinyServer not pressure\n"))
	conn.client([]byte("TIME\n"))
	conn.server([]byte("TIME 2026-01-02T03:04:05+00:00\n"))
	// One line in three segments, the CR LF split apart.
	conn.client(split("ECHO Hello from client\r\n", 3, 23)...)
	conn.server([]byte("ECHO Hello from client\n"))
	// Several commands in one segment, answered in one segment.
	conn.client([]byte("help\nnope\nECHO\ntime  \nQUIT\n"))
	conn.server(split("HELP TIME | ECHO <text> | HELP | QUIT\nERROR UNKNOWN_COMMAND\nERROR BAD_ARGUMENTS\nTIME 2026-01-02T03:04:05+00:00\nBYE\n", 50)...)
	conn.close()

	busy := c.tcp(hostPort(clientIP, 41001), srv)
	busy.server([]byte("ERROR SERVER_BUSY\n"))
	busy.close()

	// Not on the lab's port: found by the heuristic from the banner.
	h := c.tcp(hostPort(clientIP, 41002), hostPort(serverIP, 4444))
	h.server([]byte("WELCOME, I'm somewhere else\n"))
	h.client([]byte("ECHO  spaced out \n"))
	h.server([]byte("ECHO  spaced out \n"))
	h.close()

	decode(t, c, "tinytcp", "tinytcp",
		"tinytcp.command", "tinytcp.argument", "tinytcp.reply", "tinytcp.error", "tinytcp.time")
}
