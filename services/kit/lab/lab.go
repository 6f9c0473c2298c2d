// Package lab is the one map of the socklab lab: each service's name, its
// port and transports, its image, its environment prefix and the host ports
// compose publishes. Server defaults, loadgen's targets, health checks, the
// dashboard, the Wireshark dissectors and the swarm stack read it, and a
// drift test holds docker-compose.yml, .env, deploy/Dockerfile and the
// READMEs to it: a port stands here once.
package lab

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Transport names a transport a service listens on.
type Transport string

// The transports.
const (
	TCP Transport = "tcp"
	UDP Transport = "udp"
)

// MetricsPort is where every lab container serves Prometheus /metrics
// inside the lab (METRICS_ADDR=":9100").
const MetricsPort = 9100

// Service is one service of the lab.
type Service struct {
	// Name is the compose service name and the protocol's short name (the
	// Wireshark filter name for servers): "tinytcp".
	Name string
	// Port is the port the server listens on inside the lab (0: none).
	Port int
	// Transports lists what Port serves, main transport first.
	Transports []Transport
	// Instances are the compose service names when the service runs as a
	// fleet (moviedb-1..3); empty means one service named Name.
	Instances []string
	// HostPorts are the 127.0.0.1 ports compose publishes, one per instance
	// (one for a single service); empty when nothing is published.
	HostPorts []int
	// EnvPrefix prefixes the service's environment variables.
	EnvPrefix string
	// Server says Port is a socklab protocol server (loadgen, capture and
	// the tools are not).
	Server bool
	// Metrics says the container serves /metrics on MetricsPort.
	Metrics bool
	// Summary is one line for tables and the dashboard.
	Summary string
}

// Image is the service's image name.
func (s Service) Image() string { return "socklab/" + s.Name + ":dev" }

// Names returns the compose service names of s: its instances, or Name.
func (s Service) Names() []string {
	if len(s.Instances) > 0 {
		return s.Instances
	}
	return []string{s.Name}
}

// Has reports whether s serves t.
func (s Service) Has(t Transport) bool { return slices.Contains(s.Transports, t) }

// ListenAddr is the server's default listen address, ":PORT".
func (s Service) ListenAddr() string { return ":" + strconv.Itoa(s.Port) }

// IsDefaultListen reports whether a server's default listen setting, an
// address ":PORT" or "HOST:PORT" or a port list whose first port is it
// ("5000-5009", "5000,5001"), starts on the lab map's port: each server's
// config test holds its default to the map with it.
func (s Service) IsDefaultListen(def string) bool {
	port := strconv.Itoa(s.Port)
	if _, p, err := net.SplitHostPort(def); err == nil {
		return p == port
	}
	first, _, _ := strings.Cut(def, ",")
	first, _, _ = strings.Cut(first, "-")
	return first == port
}

// Target is the address of the service's first instance inside the lab,
// "NAME:PORT".
func (s Service) Target() string { return net.JoinHostPort(s.Names()[0], strconv.Itoa(s.Port)) }

// Targets lists the in-lab addresses of every instance.
func (s Service) Targets() []string {
	var out []string
	for _, n := range s.Names() {
		out = append(out, net.JoinHostPort(n, strconv.Itoa(s.Port)))
	}
	return out
}

// HostAddrs lists the published addresses on the host, "127.0.0.1:PORT".
func (s Service) HostAddrs() []string {
	var out []string
	for _, p := range s.HostPorts {
		out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	return out
}

// The lab's services. Their order is the order of tables.
var (
	Autoreply = Service{
		Name: "autoreply", Port: 9000, Transports: []Transport{TCP, UDP}, HostPorts: []int{9000},
		EnvPrefix: "AUTOREPLY_", Server: true, Metrics: true,
		Summary: "AutoReplyNet: a unique, somewhat random reply to every message",
	}
	TinyTCP = Service{
		Name: "tinytcp", Port: 40000, Transports: []Transport{TCP}, HostPorts: []int{40000},
		EnvPrefix: "TINYTCP_", Server: true, Metrics: true,
		Summary: "the TinyTCP line protocol: WELCOME, TIME, ECHO, HELP, QUIT",
	}
	Filestream = Service{
		Name: "filestream", Port: 9001, Transports: []Transport{TCP, UDP}, HostPorts: []int{9001},
		EnvPrefix: "FILESTREAM_", Server: true, Metrics: true,
		Summary: "echo, files of N characters, timed packet streams",
	}
	ConnID = Service{
		Name: "connid", Port: 9002, Transports: []Transport{UDP, TCP}, HostPorts: []int{9002},
		EnvPrefix: "CONNID_", Server: true, Metrics: true,
		Summary: "the connection-ID handshake: HELLO, OK, RESET",
	}
	MovieDB = Service{
		Name: "moviedb", Port: 5000, Transports: []Transport{TCP},
		Instances: []string{"moviedb-1", "moviedb-2", "moviedb-3"}, HostPorts: []int{5000, 5001, 5002},
		EnvPrefix: "MOVIEDB_", Server: true, Metrics: true,
		Summary: "a fleet of movie databases that disagree on a few films",
	}
	Loadgen = Service{
		Name: "loadgen", EnvPrefix: "LOADGEN_", Metrics: true,
		Summary: "a gentle mix of checked traffic to every service; scales",
	}
	Capture = Service{
		Name: "capture", EnvPrefix: "CAPTURE_",
		Summary: "rotating pcap files of everything on the lab bridge",
	}
	Dashboard = Service{
		Name: "dashboard", Port: 8080, Transports: []Transport{TCP}, HostPorts: []int{8080},
		EnvPrefix: "DASHBOARD_", Metrics: true,
		Summary: "one web page of the lab working: map, live rates and latency, load, capture",
	}
)

// Services lists every service of the lab in table order.
func Services() []Service {
	return []Service{Autoreply, TinyTCP, Filestream, ConnID, MovieDB, Loadgen, Capture, Dashboard}
}

// Servers lists the protocol servers.
func Servers() []Service {
	var out []Service
	for _, s := range Services() {
		if s.Server {
			out = append(out, s)
		}
	}
	return out
}

// Lookup finds a service by its name or one of its instance names.
func Lookup(name string) (Service, bool) {
	for _, s := range Services() {
		if s.Name == name || slices.Contains(s.Instances, name) {
			return s, true
		}
	}
	return Service{}, false
}

// MustLookup is Lookup for names known at compile time.
func MustLookup(name string) Service {
	s, ok := Lookup(name)
	if !ok {
		panic(fmt.Sprintf("lab: no service %q", name))
	}
	return s
}

// DefaultMix is the load generators' default mix of scenarios and weights
// (LOADGEN_MIX): loadgen's default, and what the lab runs unless .env says
// otherwise.
const DefaultMix = "autoreply-tcp=2,autoreply-udp=2,tinytcp=2,filestream-echo=1,filestream-file=1,filestream-stream=1,connid=1,moviedb-get=2,moviedb-mix=1"

// Bridge is the Linux name of the lab's bridge on the host, and Network the
// compose network's name (the Docker network is "<project>_lab").
const (
	Bridge  = "socklab0"
	Network = "lab"
	Project = "socklab"
)
