package netserve_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/socklab/socklab/services/kit/config"
	"github.com/socklab/socklab/services/kit/netserve"
)

// svcConfig is a service's Config as the servers write it: the shared
// settings embedded, the listen port preset.
type svcConfig struct {
	netserve.Settings
	Extra int `env:"EXTRA" envDefault:"3" flag:"extra" help:"the service's own"`
}

func (c *svcConfig) SetDefaults() { c.Addr = ":9999" }

// TestSettingsLoad: the embedded settings read the service's prefix, take
// their defaults (MaxConnsPerSource: Server's own default, so that a server
// whose Config leaves it out limits alike) and the service's preset address,
// which --help shows, and which a variable and a flag override.
func TestSettingsLoad(t *testing.T) {
	want := svcConfig{Settings: netserve.Settings{
		Protocol: "both", Addr: ":9999", UDPReaders: 1,
		Limits: netserve.Limits{MaxConns: 1000, MaxConnsPerSource: netserve.DefaultMaxConnsPerSource},
	}, Extra: 3}
	var got svcConfig
	var help bytes.Buffer
	set := config.NewSet("svc", "usage: svc", nil, &help)
	if err := set.Add("SVC_", &got); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Parse([]string{"-h"}); !config.IsHelp(err) {
		t.Fatalf("Parse(-h) = %v, want flag.ErrHelp", err)
	}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	for _, w := range []string{
		`-protocol string`, `(default "both") [$SVC_PROTOCOL]`, `(default ":9999") [$SVC_ADDR]`,
		`(default 1000) [$SVC_MAX_CONNS]`, `(default 256) [$SVC_MAX_CONNS_PER_SOURCE]`, `(default 1) [$SVC_UDP_READERS]`,
	} {
		if !strings.Contains(help.String(), w) {
			t.Errorf("help lacks %q:\n%s", w, help.String())
		}
	}

	environ := []string{"SVC_PROTOCOL=udp", "SVC_ADDR=:1", "SVC_MAX_CONNS=5", "SVC_MAX_CONNS_PER_SOURCE=-1", "SVC_UDP_READERS=4"}
	got = svcConfig{}
	set = config.NewSet("svc", "usage: svc", environ, &help)
	if err := set.Add("SVC_", &got); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Parse([]string{"-addr", "127.0.0.1:2", "-max-conns", "6"}); err != nil {
		t.Fatal(err)
	}
	want.Protocol, want.Addr, want.MaxConns, want.MaxConnsPerSource, want.UDPReaders = "udp", "127.0.0.1:2", 6, -1, 4
	if got != want {
		t.Errorf("env %q, flags = %+v, want %+v", environ, got, want)
	}
}

func TestSettingsValidate(t *testing.T) {
	good := netserve.Settings{Protocol: "both", Addr: ":0", UDPReaders: 1, Limits: netserve.Limits{MaxConns: 0, MaxConnsPerSource: -1}}
	tests := []struct {
		name string
		give func(*netserve.Settings)
		want []string // lines of the error; none: valid
	}{
		{"good", func(*netserve.Settings) {}, nil},
		{"tcp", func(s *netserve.Settings) { s.Protocol = "tcp" }, nil},
		{"udp, 64 readers", func(s *netserve.Settings) { s.Protocol, s.UDPReaders = "udp", 64 }, nil},
		{"per source 1", func(s *netserve.Settings) { s.MaxConnsPerSource = 1 }, nil},
		{"protocol", func(s *netserve.Settings) { s.Protocol = "sctp" }, []string{`protocol must be tcp, udp or both, not "sctp"`}},
		{"max-conns", func(s *netserve.Settings) { s.MaxConns = -1 }, []string{"max-conns must not be negative"}},
		{"per source 0", func(s *netserve.Settings) { s.MaxConnsPerSource = 0 }, []string{"max-conns-per-source must be -1 (no limit) or at least 1"}},
		{"per source -2", func(s *netserve.Settings) { s.MaxConnsPerSource = -2 }, []string{"max-conns-per-source must be -1 (no limit) or at least 1"}},
		{"no readers", func(s *netserve.Settings) { s.UDPReaders = 0 }, []string{"udp-readers must be from 1 to 64"}},
		{"65 readers", func(s *netserve.Settings) { s.UDPReaders = 65 }, []string{"udp-readers must be from 1 to 64"}},
		{"all", func(s *netserve.Settings) { s.Protocol, s.MaxConns, s.MaxConnsPerSource, s.UDPReaders = "", -1, 0, 0 }, []string{
			`protocol must be tcp, udp or both, not ""`, "max-conns must not be negative",
			"max-conns-per-source must be -1 (no limit) or at least 1", "udp-readers must be from 1 to 64",
		}},
	}
	for _, tt := range tests {
		s := good
		tt.give(&s)
		err := s.Validate()
		var got []string
		if err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
		// Limits alone checks the same limits.
		lerr := s.Limits.Validate()
		for _, line := range tt.want {
			if strings.HasPrefix(line, "max-conns") && (lerr == nil || !strings.Contains(lerr.Error(), line)) {
				t.Errorf("%s: Limits.Validate() = %v, want %q", tt.name, lerr, line)
			}
		}
	}
}

func TestLimitsApply(t *testing.T) {
	srv := &netserve.Server{MaxLineBytes: 7}
	if got := (netserve.Limits{MaxConns: 3, MaxConnsPerSource: -1}).Apply(srv); got != srv {
		t.Fatalf("Apply returned %p, want its argument %p", got, srv)
	}
	if srv.MaxConns != 3 || srv.MaxConnsPerSource != -1 || srv.MaxLineBytes != 7 {
		t.Errorf("after Apply: MaxConns %d, MaxConnsPerSource %d, MaxLineBytes %d; want 3, -1, 7", srv.MaxConns, srv.MaxConnsPerSource, srv.MaxLineBytes)
	}
}
