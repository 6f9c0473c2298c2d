package filter

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// kernelFilters are compiled and run in x/net/bpf's VM against Match.
var kernelFilters = []string{
	"",
	"tcp", "udp", "icmp", "ip", "ip6",
	"port 40000", "tcp port 40000", "udp src port 9000", "dst port 53", "port 9000",
	"host 172.28.0.5", "src host 172.28.0.5", "dst host fd00::9", "host 2001:db8::1",
	"net 172.28.0.0/16", "dst net 10.0.0.0/8", "net fd00::/8", "net 0.0.0.0/0", "net ::/0", "src net fd00::/127",
	"not icmp", "not ip", "not port 9000", "not (tcp or udp)",
	"tcp port 40000 or udp port 9000", "host 172.28.0.5 and not icmp",
	"(tcp or udp) and port 1", "not (src net 172.28.0.0/16 and dst port 53) or ip6",
}

func vmRun(t testing.TB, prog []bpf.Instruction, data []byte) int {
	t.Helper()
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	n, err := vm.Run(data)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return n
}

// TestProgramAgreesWithMatch runs every compiled filter over every test
// frame and each of its truncations: the program accepts whatever Match
// accepts, and decides exactly like Match on whole frames it can decode.
func TestProgramAgreesWithMatch(t *testing.T) {
	frames := map[string]struct {
		f     frame
		exact bool // no VLAN tag, no IPv6 extension header
	}{
		"tcp4": {tcp4, true}, "udp4": {udp4, true}, "icmp4": {icmp4, true}, "frag4": {frag4, true}, "noip4": {noip4, true},
		"tcp6plain":  {tcp6plain, true},
		"udp6plain":  {frame{v6: true, plain: true, src: "fd00::5", dst: "2001:db8::1", proto: "udp", sport: 9000, dport: 53}, true},
		"icmp6plain": {frame{v6: true, plain: true, src: "fd00::5", dst: "fd00::9", proto: "icmp"}, true},
		"tcp6":       {tcp6, false}, "udp6": {udp6, false}, "icmp6": {icmp6, false}, "frag6": {frag6, false},
		"vudp4": {vudp4, false}, "vicmp6": {vicmp6, false},
	}
	arp := build(t, tcp4)
	arp[12], arp[13] = 0x08, 0x06
	for _, expr := range kernelFilters {
		f, err := Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := f.Program(1500, false)
		if err != nil {
			t.Fatalf("Program(%q): %v", expr, err)
		}
		if got := vmRun(t, prog, arp) > 0; got != f.Match(arp) {
			t.Errorf("%q on ARP: program %v, Match %v", expr, got, f.Match(arp))
		}
		for name, fr := range frames {
			data := build(t, fr.f)
			for n := len(data); n >= 0; n-- {
				cut := data[:n]
				got, want := vmRun(t, prog, cut), f.Match(cut)
				if got != 0 && got != 1500 {
					t.Fatalf("%q on %s: program returned %d, want 0 or the snaplen", expr, name, got)
				}
				if want && got == 0 {
					t.Errorf("%q on %s cut to %d bytes: program drops what Match accepts", expr, name, n)
				}
				if fr.exact && n == len(data) && (got != 0) != want {
					t.Errorf("%q on %s: program accepts %v, Match %v", expr, name, got != 0, want)
				}
			}
		}
	}
}

func TestProgramDropOutgoing(t *testing.T) {
	f, _ := Parse("udp")
	prog, err := f.Program(100, true)
	if err != nil {
		t.Fatal(err)
	}
	if ext, ok := prog[0].(bpf.LoadExtension); !ok || ext.Num != bpf.ExtType {
		t.Errorf("program starts with %v, want the packet type", prog[0])
	}
	if _, err := bpf.Assemble(prog); err != nil {
		t.Errorf("Assemble: %v", err)
	}
	var nilFilter *Filter
	prog, err = nilFilter.Program(100, false)
	if err != nil || len(prog) != 2 || vmRun(t, prog, nil) != 100 {
		t.Errorf("nil filter program = %v, %v; want accept all", prog, err)
	}
}

func TestProgramTooLong(t *testing.T) {
	var terms []string
	for i := range 60 {
		terms = append(terms, fmt.Sprintf("port %d", i))
	}
	f, err := Parse(strings.Join(terms, " or "))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Program(100, false); !errors.Is(err, ErrProgramTooLong) {
		t.Errorf("Program of 60 ports = %v, want ErrProgramTooLong", err)
	}
}
