// Package ports implements the moviedb server's welcome ports: a list of
// permitted ports, of which the server takes the first one free, so that
// several servers can run on one host from one configuration.
package ports

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// MaxPorts bounds how many ports a List may hold.
const MaxPorts = 1024

// List is a list of permitted ports, written as comma-separated ports and
// ranges: "5000-5009", "5000,5001", "5000-5002,6000". "0" alone means any
// free port the kernel picks.
type List struct {
	spec  string
	ports []int
}

// Parse parses a port list.
func Parse(s string) (List, error) {
	var l List
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return List{}, err
	}
	return l, nil
}

// MustParse is Parse for lists known to be valid; it panics otherwise.
func MustParse(s string) List {
	l, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return l
}

// UnmarshalText parses a port list, for flags and environment variables.
func (l *List) UnmarshalText(b []byte) error {
	spec := strings.TrimSpace(string(b))
	if spec == "" {
		return errors.New("empty port list; want e.g. 5000-5009 or 5000,5001")
	}
	var ports []int
	seen := map[int]bool{}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parsePort(lo)
		if err != nil {
			return fmt.Errorf("port list %q: %w", spec, err)
		}
		last := first
		if isRange {
			if last, err = parsePort(hi); err != nil {
				return fmt.Errorf("port list %q: %w", spec, err)
			}
			if last < first {
				return fmt.Errorf("port list %q: range %s runs backwards", spec, part)
			}
		}
		if (first == 0 || last == 0) && spec != "0" {
			return fmt.Errorf("port list %q: port 0 (any) must stand alone", spec)
		}
		if len(ports)+last-first+1 > MaxPorts {
			return fmt.Errorf("port list %q: more than %d ports", spec, MaxPorts)
		}
		for p := first; p <= last; p++ {
			if seen[p] {
				return fmt.Errorf("port list %q: port %d listed twice", spec, p)
			}
			seen[p] = true
			ports = append(ports, p)
		}
	}
	l.spec, l.ports = spec, ports
	return nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("bad port %q: want 0 to 65535", s)
	}
	return p, nil
}

// String returns the list as written.
func (l List) String() string { return l.spec }

// MarshalText returns the list as written.
func (l List) MarshalText() ([]byte, error) { return []byte(l.spec), nil }

// Ports returns the ports in order.
func (l List) Ports() []int { return append([]int(nil), l.ports...) }

// Listen listens on TCP on host at the first port of l that is free, trying
// them in order. A port in use (or forbidden to this user) is skipped; any
// other error, such as a host that is not local, ends the search. When no
// port is free the error names the list.
//
// Accepted connections have no TCP keep-alive: a connection carries one
// request under the server's own timeouts, far shorter than a keep-alive
// probe's wait, and turning it on costs four setsockopt calls per accept.
func Listen(host string, l List) (net.Listener, error) {
	if len(l.ports) == 0 {
		return nil, errors.New("empty port list")
	}
	var skipped []string
	for _, p := range l.ports {
		ln, err := listenConfig.Listen(context.Background(), "tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EACCES) {
			return nil, err
		}
		if len(skipped) < 3 {
			skipped = append(skipped, fmt.Sprintf("%d: %v", p, cause(err)))
		}
	}
	more := ""
	if n := len(l.ports) - len(skipped); n > 0 {
		more = fmt.Sprintf("; and %d more", n)
	}
	return nil, fmt.Errorf("no free port in the port list %q on host %q (%s%s)",
		l.spec, host, strings.Join(skipped, "; "), more)
}

var listenConfig = net.ListenConfig{KeepAlive: -1}

// cause strips "listen tcp host:port: " from a listen error.
func cause(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		var se interface{ Unwrap() error }
		if errors.As(oe.Err, &se) && se.Unwrap() != nil {
			return se.Unwrap()
		}
		return oe.Err
	}
	return err
}
