package labcheck

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/socklab/socklab/services/kit/lab"
)

// stackFile is the swarm stack, deploy/swarm/stack.yml.
var stackFile = filepath.Join(root, "deploy", "swarm", "stack.yml")

// notInStack lists the compose services the stack leaves out, and why.
var notInStack = map[string]string{
	"capture": "it records the host's bridge from the host's network namespace; " +
		"on a swarm, capture runs on a node (deploy/swarm/README.md)",
}

// loadStack parses the stack file the way `docker stack deploy` reads it
// through deploy/swarm/swarm.sh: relative paths from its own directory, the
// variables of the repository's .env, and nothing from this process's
// environment, like loadCompose.
func loadStack(t *testing.T) *types.Project {
	t.Helper()
	return loadProject(t, stackFile, cli.WithWorkingDirectory(filepath.Dir(stackFile)),
		cli.WithEnvFiles(filepath.Join(root, ".env")), cli.WithDotEnv)
}

// TestSwarmStackMatchesCompose: the stack and docker-compose.yml define
// the same services with the same images, environment variables (names
// and values, both interpolated from .env) and ports (container port,
// protocol and published port). A service added to one and not the other
// fails here with what to add where.
func TestSwarmStackMatchesCompose(t *testing.T) {
	compose := loadCompose(t, filepath.Join(root, "docker-compose.yml"))
	stack := loadStack(t)

	for _, name := range slices.Sorted(maps.Keys(compose.Services)) {
		_, inStack := stack.Services[name]
		why, excluded := notInStack[name]
		switch {
		case excluded && inStack:
			t.Errorf("service %q is in deploy/swarm/stack.yml but listed in notInStack (%s): remove one", name, why)
		case !excluded && !inStack:
			t.Errorf("service %q is in docker-compose.yml but not in deploy/swarm/stack.yml: "+
				"add it there (x-defaults, deploy: *deploy, same image, environment and ports with mode: host)", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(stack.Services)) {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("service %q is in deploy/swarm/stack.yml but not in docker-compose.yml", name)
		}
	}

	for _, name := range inBoth(compose, stack) {
		c, s := compose.Services[name], stack.Services[name]
		if c.Image != s.Image {
			t.Errorf("%s: image %q in docker-compose.yml, %q in deploy/swarm/stack.yml", name, c.Image, s.Image)
		}
		for _, d := range diffEnv(c.Environment, s.Environment) {
			t.Errorf("%s: environment %s", name, d)
		}
		cp, sp := portSet(c.Ports), portSet(s.Ports)
		for _, p := range slices.Sorted(maps.Keys(cp)) {
			if !sp[p] {
				t.Errorf("%s: port %s is in docker-compose.yml, not in deploy/swarm/stack.yml", name, p)
			}
		}
		for _, p := range slices.Sorted(maps.Keys(sp)) {
			if !cp[p] {
				t.Errorf("%s: port %s is in deploy/swarm/stack.yml, not in docker-compose.yml", name, p)
			}
		}
	}
}

// TestSwarmStackHardening: each stack service keeps what compose gives the
// same container and swarm can express: a read-only root, the same
// capabilities, memory and process limits (as deploy.resources.limits),
// stop grace, and the same named volumes at the same places.
func TestSwarmStackHardening(t *testing.T) {
	compose := loadCompose(t, filepath.Join(root, "docker-compose.yml"))
	stack := loadStack(t)
	for _, name := range inBoth(compose, stack) {
		c, s := compose.Services[name], stack.Services[name]
		if c.ReadOnly != s.ReadOnly {
			t.Errorf("%s: read_only %v in docker-compose.yml, %v in the stack", name, c.ReadOnly, s.ReadOnly)
		}
		if !slices.Equal(sorted(c.CapDrop), sorted(s.CapDrop)) || !slices.Equal(sorted(c.CapAdd), sorted(s.CapAdd)) {
			t.Errorf("%s: cap_drop %v cap_add %v in docker-compose.yml, cap_drop %v cap_add %v in the stack",
				name, c.CapDrop, c.CapAdd, s.CapDrop, s.CapAdd)
		}
		if c.User != s.User {
			t.Errorf("%s: user %q in docker-compose.yml, %q in the stack", name, c.User, s.User)
		}
		var mem types.UnitBytes
		var pids int64
		if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
			mem, pids = s.Deploy.Resources.Limits.MemoryBytes, s.Deploy.Resources.Limits.Pids
		}
		if mem != c.MemLimit {
			t.Errorf("%s: deploy.resources.limits.memory = %d in the stack, want mem_limit of docker-compose.yml (%d)", name, mem, c.MemLimit)
		}
		if pids != c.PidsLimit {
			t.Errorf("%s: deploy.resources.limits.pids = %d in the stack, want pids_limit of docker-compose.yml (%d)", name, pids, c.PidsLimit)
		}
		if fmt.Sprint(c.StopGracePeriod) != fmt.Sprint(s.StopGracePeriod) {
			t.Errorf("%s: stop_grace_period %v in docker-compose.yml, %v in the stack", name, c.StopGracePeriod, s.StopGracePeriod)
		}
		if cv, sv := namedVolumes(c.Volumes), namedVolumes(s.Volumes); !slices.Equal(cv, sv) {
			t.Errorf("%s: named volumes %v in docker-compose.yml, %v in the stack", name, cv, sv)
		}
	}
}

// TestSwarmStackRunsWithoutIPVS: what the stack needs to deploy where the
// kernel has no IPVS and compose's bridge cannot serve: an attachable
// overlay network, every service on it answered by DNS round robin
// (endpoint_mode dnsrr) and publishing in host mode, and each movie server
// placed on the node labelled for it, where its volume stays.
func TestSwarmStackRunsWithoutIPVS(t *testing.T) {
	stack := loadStack(t)
	lab, ok := stack.Networks["lab"]
	if !ok {
		t.Fatal("deploy/swarm/stack.yml has no network lab")
	}
	if lab.Driver != "overlay" || !lab.Attachable {
		t.Errorf("network lab: driver %q attachable %v, want overlay and attachable", lab.Driver, lab.Attachable)
	}
	for _, name := range slices.Sorted(maps.Keys(stack.Services)) {
		s := stack.Services[name]
		if _, ok := s.Networks["lab"]; !ok || len(s.Networks) != 1 {
			t.Errorf("%s: networks %v, want only lab", name, slices.Sorted(maps.Keys(s.Networks)))
		}
		if s.Deploy == nil || s.Deploy.EndpointMode != "dnsrr" {
			t.Errorf("%s: deploy.endpoint_mode is not dnsrr (virtual IPs need IPVS)", name)
		}
		for _, p := range s.Ports {
			if p.Mode != "host" {
				t.Errorf("%s: port %d/%s has mode %q, want host (the routing mesh needs IPVS)", name, p.Target, p.Protocol, p.Mode)
			}
		}
		if strings.HasPrefix(name, "moviedb-") {
			want := "node.labels.socklab." + name + " == true"
			if s.Deploy == nil || !slices.Contains(s.Deploy.Placement.Constraints, want) {
				t.Errorf("%s: no placement constraint %q: its volume is local to one node", name, want)
			}
		}
	}
}

// inBoth lists, sorted, the services that both projects define.
func inBoth(a, b *types.Project) []string {
	var out []string
	for name := range a.Services {
		if _, ok := b.Services[name]; ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// diffEnv lists the differences between compose's environment c and the
// stack's s, one line per variable.
func diffEnv(c, s types.MappingWithEquals) []string {
	var out []string
	keys := slices.Sorted(maps.Keys(c))
	for k := range s {
		if _, ok := c[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		cv, cok := c[k]
		sv, sok := s[k]
		switch {
		case !sok:
			out = append(out, fmt.Sprintf("%s=%s is in docker-compose.yml, not in deploy/swarm/stack.yml", k, deref(cv)))
		case !cok:
			out = append(out, fmt.Sprintf("%s=%s is in deploy/swarm/stack.yml, not in docker-compose.yml", k, deref(sv)))
		case deref(cv) != deref(sv):
			out = append(out, fmt.Sprintf("%s is %q in docker-compose.yml, %q in deploy/swarm/stack.yml", k, deref(cv), deref(sv)))
		}
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return "(unset)"
	}
	return *p
}

// portSet names each port "TARGET/PROTOCOL published PUBLISHED"; the host
// address is left out (swarm cannot bind one).
func portSet(ports []types.ServicePortConfig) map[string]bool {
	out := map[string]bool{}
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		out[fmt.Sprintf("%d/%s published %s", p.Target, proto, p.Published)] = true
	}
	return out
}

// namedVolumes lists a service's named-volume mounts, "SOURCE:TARGET".
func namedVolumes(vs []types.ServiceVolumeConfig) []string {
	var out []string
	for _, v := range vs {
		if v.Type == types.VolumeTypeVolume {
			out = append(out, v.Source+":"+v.Target)
		}
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestSwarmStackFollowsLabMap: every service of the lab map but those the
// stack leaves out is in the stack under its names, with the map's image,
// and each server instance publishes the map's port on each of its
// transports at the map's host port.
func TestSwarmStackFollowsLabMap(t *testing.T) {
	stack := loadStack(t)
	for _, s := range lab.Services() {
		for i, name := range s.Names() {
			if _, excluded := notInStack[name]; excluded {
				continue
			}
			svc, ok := stack.Services[name]
			if !ok {
				t.Errorf("deploy/swarm/stack.yml has no service %q (lab map: %s)", name, s.Name)
				continue
			}
			if svc.Image != s.Image() {
				t.Errorf("deploy/swarm/stack.yml: %s image = %q, want %q", name, svc.Image, s.Image())
			}
			if !s.Server || i >= len(s.HostPorts) {
				continue
			}
			got := portSet(svc.Ports)
			for _, tr := range s.Transports {
				want := fmt.Sprintf("%d/%s published %d", s.Port, tr, s.HostPorts[i])
				if !got[want] {
					t.Errorf("deploy/swarm/stack.yml: %s has no port %s (lab map); it has %v", name, want, slices.Sorted(maps.Keys(got)))
				}
			}
		}
	}
}
