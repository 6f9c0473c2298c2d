package labcheck

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/socklab/socklab/services/kit/lab"
)

// publishedPorts renders a service's ports as sorted "HOSTIP:PUBLISHED->TARGET/PROTO"
// strings, comparable whatever order a file lists them in.
func publishedPorts(ports []types.ServicePortConfig) []string {
	var out []string
	for _, p := range ports {
		out = append(out, fmt.Sprintf("%s:%s->%d/%s", p.HostIP, p.Published, p.Target, p.Protocol))
	}
	slices.Sort(out)
	return out
}

// wantPorts is what compose should publish for instance i of s.
func wantPorts(s lab.Service, i int) []string {
	var out []string
	for _, t := range s.Transports {
		out = append(out, fmt.Sprintf("127.0.0.1:%d->%d/%s", s.HostPorts[i], s.Port, t))
	}
	slices.Sort(out)
	return out
}

// TestComposePortsAndEnv: each service with a port publishes its lab map ports on
// 127.0.0.1 only, for each of its transports, listens on its port, and
// serves /metrics on lab.MetricsPort.
func TestComposePortsAndEnv(t *testing.T) {
	p := loadCompose(t, filepath.Join(root, "docker-compose.yml"))
	for _, s := range lab.Services() {
		for i, name := range s.Names() {
			svc, ok := p.Services[name]
			if !ok {
				continue // TestComposeHasLabServices says so
			}
			if s.Port != 0 {
				if got, want := publishedPorts(svc.Ports), wantPorts(s, i); !slices.Equal(got, want) {
					t.Errorf("docker-compose.yml: %s ports = %v, want %v (lab map)", name, got, want)
				}
				listen := svc.Environment[s.EnvPrefix+"ADDR"]
				if listen == nil {
					listen = svc.Environment[s.EnvPrefix+"PORTS"]
				}
				if listen == nil || !strings.HasSuffix(*listen, strconv.Itoa(s.Port)) {
					t.Errorf("docker-compose.yml: %s listens on %v, want port %d (%sADDR or %sPORTS)", name, deref(listen), s.Port, s.EnvPrefix, s.EnvPrefix)
				}
			} else if len(svc.Ports) > 0 && len(s.HostPorts) == 0 {
				t.Errorf("docker-compose.yml: %s publishes %v; the lab map has no host port for it", name, publishedPorts(svc.Ports))
			}
			if s.Metrics {
				want := ":" + strconv.Itoa(lab.MetricsPort)
				if got := svc.Environment["METRICS_ADDR"]; got == nil || *got != want {
					t.Errorf("docker-compose.yml: %s METRICS_ADDR = %v, want %q", name, deref(got), want)
				}
			}
		}
	}
}

// TestDefaultMix: the default loadgen mix stands in one place, the lab map;
// .env and compose either leave it empty or say the same.
func TestDefaultMix(t *testing.T) {
	env := readDotEnv(t)
	if v, ok := env["LOADGEN_MIX"]; ok && v != "" && v != lab.DefaultMix {
		t.Errorf(".env: LOADGEN_MIX=%q differs from the lab's default mix %q; leave it empty for the default", v, lab.DefaultMix)
	}
	p := loadCompose(t, filepath.Join(root, "docker-compose.yml"), "LOADGEN_MIX=")
	if v := p.Services["loadgen"].Environment["LOADGEN_MIX"]; v != nil && *v != "" && *v != lab.DefaultMix {
		t.Errorf("docker-compose.yml: LOADGEN_MIX defaults to %q, not the lab's default mix", *v)
	}
	if !strings.Contains(readFile(t, "services/loadgen/README.md"), "`"+lab.DefaultMix+"`") {
		t.Errorf("services/loadgen/README.md does not quote the default mix `%s`", lab.DefaultMix)
	}
}

func readDotEnv(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, ".env")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env: %q is not KEY=VALUE", line)
			continue
		}
		m[k] = v
	}
	return m
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDockerfileExpose: each service's Dockerfile target exposes exactly its
// lab map port on each transport.
func TestDockerfileExpose(t *testing.T) {
	exposed := map[string][]string{} // target -> "9000/tcp" ...
	target := ""
	for _, line := range strings.Split(readFile(t, "deploy/Dockerfile"), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && strings.EqualFold(f[0], "FROM") && strings.EqualFold(f[2], "AS"):
			target = f[3]
		case len(f) >= 2 && strings.EqualFold(f[0], "EXPOSE"):
			exposed[target] = append(exposed[target], f[1:]...)
		}
	}
	for _, s := range lab.Services() {
		var want []string
		if s.Port != 0 {
			for _, tr := range s.Transports {
				want = append(want, fmt.Sprintf("%d/%s", s.Port, tr))
			}
		}
		got := exposed[s.Name]
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("deploy/Dockerfile: target %s exposes %v, want %v (lab map)", s.Name, got, want)
		}
	}
}

// TestReadmeTable: the root README's table of the lab gives each server's
// transports, host ports and in-lab address as the lab map does.
func TestReadmeTable(t *testing.T) {
	rows := map[string][]string{}
	for _, line := range strings.Split(readFile(t, "README.md"), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		name := strings.Trim(cells[0], "`")
		if _, dup := rows[name]; !dup {
			rows[name] = cells
		}
	}
	for _, s := range lab.Servers() {
		name := s.Name
		if len(s.Instances) > 0 {
			name = s.Instances[0][:len(s.Instances[0])-1] + "1.." + strconv.Itoa(len(s.Instances))
		}
		cells, ok := rows[name]
		if !ok || len(cells) < 4 {
			t.Errorf("README.md: no row for %q in the table of the lab", name)
			continue
		}
		var tr []string
		for _, x := range s.Transports {
			tr = append(tr, strings.ToUpper(string(x)))
		}
		if want := strings.Join(tr, " + "); cells[1] != want {
			t.Errorf("README.md: %s protocol %q, want %q", name, cells[1], want)
		}
		var hp []string
		for _, p := range s.HostPorts {
			hp = append(hp, strconv.Itoa(p))
		}
		if want := strings.Join(hp, ", "); cells[2] != want {
			t.Errorf("README.md: %s host port %q, want %q", name, cells[2], want)
		}
		inLab := s.Target()
		if len(s.Instances) > 0 {
			inLab = strings.TrimSuffix(s.Instances[0], "1") + "N:" + strconv.Itoa(s.Port)
		}
		if want := "`" + inLab + "`"; cells[3] != want {
			t.Errorf("README.md: %s in the lab %q, want %q", name, cells[3], want)
		}
	}
}

// TestServiceReadmes: each server's README gives its listen address's
// default as the lab map's port, and loadgen's scenario table targets the
// lab map's addresses.
func TestServiceReadmes(t *testing.T) {
	for _, s := range lab.Servers() {
		text := readFile(t, filepath.Join("services", s.Name, "README.md"))
		def, ok := settingDefault(text, s.EnvPrefix+"ADDR", s.EnvPrefix+"PORTS")
		if !ok {
			t.Errorf("services/%s/README.md: no settings row for %sADDR or %sPORTS", s.Name, s.EnvPrefix, s.EnvPrefix)
			continue
		}
		port := strconv.Itoa(s.Port)
		if !strings.HasSuffix(def, ":"+port) && def != port && !strings.HasPrefix(def, port+"-") {
			t.Errorf("services/%s/README.md: the listen default is %q, want port %s (lab map)", s.Name, def, port)
		}
	}
	text := readFile(t, "services/loadgen/README.md")
	re := regexp.MustCompile("(?m)^\\| `([a-z]+)(-[a-z]+)?` \\| `([^`]+)` \\|")
	found := 0
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		s, ok := lab.Lookup(m[1])
		if !ok || !s.Server {
			continue
		}
		found++
		if want := strings.Join(s.Targets(), ","); m[3] != s.Target() && m[3] != want {
			t.Errorf("services/loadgen/README.md: scenario %s%s targets %q, want %q", m[1], m[2], m[3], s.Target())
		}
	}
	if found == 0 {
		t.Error("services/loadgen/README.md: no scenario table found")
	}
}

// settingDefault finds the settings-table row of one of vars and returns its
// default: the cell that starts with a port or ":PORT".
func settingDefault(text string, vars ...string) (string, bool) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "|") || !slices.ContainsFunc(vars, func(v string) bool { return strings.Contains(line, "`"+v+"`") }) {
			continue
		}
		for _, c := range strings.Split(line, "|") {
			c = strings.Trim(strings.TrimSpace(c), "`")
			if c != "" && (c[0] == ':' || c[0] >= '0' && c[0] <= '9') {
				return c, true
			}
		}
	}
	return "", false
}
