package scrape

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/socklab/socklab/services/kit/lab"
)

// Resolver is the part of *net.Resolver discovery uses.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Discovery lists the lab's /metrics targets: every instance of the lab
// map's services that serve metrics, and every loadgen replica, found by
// asking the lab's DNS for the compose service name, which resolves to
// every replica's address.
type Discovery struct {
	Services []lab.Service
	// LoadgenHost is the name the replicas share ("loadgen").
	LoadgenHost string
	// Port is where /metrics is served (lab.MetricsPort).
	Port     int
	Resolver Resolver
	// Timeout bounds the DNS lookups.
	Timeout time.Duration

	mu    sync.Mutex
	names map[string]string // replica address -> name
}

// Targets lists the targets now.
func (d *Discovery) Targets(ctx context.Context) []Target {
	port := strconv.Itoa(d.Port)
	var out []Target
	for _, s := range d.Services {
		if !s.Metrics || s.Name == lab.Loadgen.Name || s.Name == lab.Dashboard.Name {
			continue
		}
		for _, n := range s.Names() {
			out = append(out, Target{Node: n, Service: s.Name, Addr: net.JoinHostPort(n, port)})
		}
	}
	return append(out, d.replicas(ctx, port)...)
}

func (d *Discovery) replicas(ctx context.Context, port string) []Target {
	if d.LoadgenHost == "" || d.Resolver == nil {
		return nil
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// No replica running is no error: the name does not resolve then.
	addrs, _ := d.Resolver.LookupHost(ctx, d.LoadgenHost)
	slices.Sort(addrs)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.names == nil {
		d.names = map[string]string{}
	}
	var out []Target
	for _, a := range addrs {
		name, ok := d.names[a]
		if !ok {
			name = d.LoadgenHost + "@" + a
			// Docker's DNS names a container's address after the
			// container: "socklab-loadgen-2.socklab_lab.".
			if ptrs, err := d.Resolver.LookupAddr(ctx, a); err == nil && len(ptrs) > 0 {
				if host, _, _ := strings.Cut(ptrs[0], "."); host != "" {
					name = host
				}
			}
			d.names[a] = name
		}
		out = append(out, Target{Node: name, Service: lab.Loadgen.Name, Addr: net.JoinHostPort(a, port)})
	}
	return out
}
