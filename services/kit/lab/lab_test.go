package lab

import "testing"

func TestServices(t *testing.T) {
	seen := map[string]bool{}
	ports := map[int]string{}
	for _, s := range Services() {
		for _, n := range s.Names() {
			if seen[n] {
				t.Errorf("service name %q twice", n)
			}
			seen[n] = true
		}
		if s.Server {
			if s.Port == 0 || len(s.Transports) == 0 {
				t.Errorf("%s: a server needs a port and transports", s.Name)
			}
			if len(s.HostPorts) != len(s.Names()) {
				t.Errorf("%s: %d host ports for %d instances", s.Name, len(s.HostPorts), len(s.Names()))
			}
		}
		for _, p := range s.HostPorts {
			if other, ok := ports[p]; ok {
				t.Errorf("host port %d published by %s and %s", p, other, s.Name)
			}
			ports[p] = s.Name
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		give string
		want string
		ok   bool
	}{
		{"tinytcp", "tinytcp", true},
		{"moviedb-2", "moviedb", true},
		{"moviedb", "moviedb", true},
		{"nosuch", "", false},
	}
	for _, tt := range tests {
		s, ok := Lookup(tt.give)
		if ok != tt.ok || s.Name != tt.want {
			t.Errorf("Lookup(%q) = %q, %v, want %q, %v", tt.give, s.Name, ok, tt.want, tt.ok)
		}
	}
	if got := MovieDB.Targets(); len(got) != 3 || got[2] != "moviedb-3:5000" {
		t.Errorf("MovieDB.Targets() = %v", got)
	}
	if got := Autoreply.HostAddrs(); len(got) != 1 || got[0] != "127.0.0.1:9000" {
		t.Errorf("Autoreply.HostAddrs() = %v", got)
	}
}

func TestIsDefaultListen(t *testing.T) {
	tests := []struct {
		s    Service
		give string
		want bool
	}{
		{Autoreply, ":9000", true},
		{Autoreply, "0.0.0.0:9000", true},
		{Autoreply, ":9001", false},
		{MovieDB, "5000-5009", true},
		{MovieDB, "5000,5001", true},
		{MovieDB, "5001-5009", false},
		{TinyTCP, "", false},
	}
	for _, tt := range tests {
		if got := tt.s.IsDefaultListen(tt.give); got != tt.want {
			t.Errorf("%s.IsDefaultListen(%q) = %v, want %v", tt.s.Name, tt.give, got, tt.want)
		}
	}
}
