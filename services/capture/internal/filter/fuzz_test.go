package filter

import (
	"testing"

	"golang.org/x/net/bpf"
)

// FuzzParse checks that no expression panics the parser, that an accepted
// expression's canonical form parses to the same canonical form, and that
// both halves of any input parse (or fail) cleanly too.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"tcp port 40000 or udp port 9000",
		"port 5000",
		"host 172.28.0.5",
		"not (src net 172.28.0.0/16 && !icmp) || dst host ::1",
		"ip6 and udp dst port 53",
		"((((tcp))))",
		"tcp port",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(s string) {
			flt, err := Parse(s)
			if err != nil {
				if flt != nil {
					t.Fatalf("Parse(%q) returned a filter and an error", s)
				}
				return
			}
			canon := flt.String()
			again, err := Parse(canon)
			if err != nil {
				t.Fatalf("Parse(%q) ok, but its canonical form %q fails: %v", s, canon, err)
			}
			if again.String() != canon {
				t.Fatalf("canonical form of %q is unstable: %q then %q", s, canon, again.String())
			}
		}
		check(s)
		check(s[:len(s)/2])
		check(s[len(s)/2:])
	})
}

// FuzzMatch feeds arbitrary frames (captured packets are untrusted input)
// through the decoder and a filter that reads every field.
func FuzzMatch(f *testing.F) {
	for _, fr := range []frame{tcp4, udp6, vudp4, frag6, vicmp6} {
		f.Add(build(f, fr))
	}
	f.Add([]byte{})
	flt, err := Parse("(tcp src port 1 or udp dst port 2 or port 3) and (host 10.0.0.1 or net fd00::/8 or icmp or ip or ip6)")
	if err != nil {
		f.Fatal(err)
	}
	neg, _ := Parse("not (" + flt.String() + ")")
	progs := map[*Filter][]bpf.Instruction{}
	for _, x := range []*Filter{flt, neg} {
		p, err := x.Program(262144, false)
		if err != nil {
			f.Fatal(err)
		}
		progs[x] = p
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, data[:len(data)/2], data[len(data)/2:]} {
			// The kernel program never drops what Match accepts.
			for x, p := range progs {
				if x.Match(d) && vmRun(t, p, d) == 0 {
					t.Fatalf("program of %q drops %x, which Match accepts", x, d)
				}
			}
			p := decode(d)
			if p.ports && p.version == 0 {
				t.Fatalf("decode(%x) found ports without an IP header", d)
			}
			if p.version != 0 && (p.src.BitLen() != 32 && p.src.BitLen() != 128) {
				t.Fatalf("decode(%x) = %+v: bad address", d, p)
			}
		}
	})
}
