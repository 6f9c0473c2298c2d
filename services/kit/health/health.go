// Package health implements the `healthcheck` mode of server binaries:
// containers built FROM scratch have no shell or curl, so the binary probes
// its own listener and exits 0 when it answers.
package health

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"
)

// A Probe checks one listener.
type Probe func(ctx context.Context) error

// Loopback rewrites a listen address such as ":9000" or "0.0.0.0:9000" to
// the loopback address a probe inside the same container must dial.
func Loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, port)
}

// TCP succeeds when a connection to addr is accepted. When expect is not
// empty, the first bytes the server sends must start with it.
func TCP(addr string, expect []byte) Probe {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", Loopback(addr))
		if err != nil {
			return err
		}
		defer c.Close()
		if len(expect) == 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok {
			c.SetReadDeadline(dl)
		}
		buf := make([]byte, len(expect))
		if _, err := readFull(c, buf); err != nil {
			return fmt.Errorf("tcp %s: %w", addr, err)
		}
		if !bytes.Equal(buf, expect) {
			return fmt.Errorf("tcp %s: got %q, want %q", addr, buf, expect)
		}
		return nil
	}
}

func readFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// UDP sends request to addr and succeeds when any datagram comes back.
func UDP(addr string, request []byte) Probe {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "udp", Loopback(addr))
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			c.SetDeadline(dl)
		}
		if _, err := c.Write(request); err != nil {
			return fmt.Errorf("udp %s: %w", addr, err)
		}
		buf := make([]byte, 2048)
		if _, err := c.Read(buf); err != nil {
			return fmt.Errorf("udp %s: %w", addr, err)
		}
		return nil
	}
}

// Check runs every probe within timeout and returns the first failure.
func Check(ctx context.Context, timeout time.Duration, probes ...Probe) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, p := range probes {
		if err := p(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Listeners returns the probes of a server on addr that serves protocol
// "tcp", "udp" or "both": a TCP connect, and udpRequest sent over UDP
// expecting any answer.
func Listeners(protocol, addr string, udpRequest []byte) []Probe {
	var probes []Probe
	if protocol != "udp" {
		probes = append(probes, TCP(addr, nil))
	}
	if protocol != "tcp" {
		probes = append(probes, UDP(addr, udpRequest))
	}
	return probes
}
