package filter

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestParseCanonical(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{"", ""},
		{"   ", ""},
		{"tcp", "tcp"},
		{"UDP", "udp"},
		{"icmp", "icmp"},
		{"ip", "ip"},
		{"ip6", "ip6"},
		{"port 5000", "port 5000"},
		{"tcp port 40000", "tcp port 40000"},
		{"udp src port 53", "udp src port 53"},
		{"dst port 0", "dst port 0"},
		{"port 65535", "port 65535"},
		{"host 172.28.0.5", "host 172.28.0.5"},
		{"src host ::1", "src host ::1"},
		{"dst host FE80::1", "dst host fe80::1"},
		{"net 172.28.0.0/16", "net 172.28.0.0/16"},
		{"src net 172.28.1.7/16", "src net 172.28.0.0/16"},
		{"net 2001:db8::/32", "net 2001:db8::/32"},
		{"tcp port 40000 or udp port 9000", "(tcp port 40000 or udp port 9000)"},
		{"a", ""}, // placeholder replaced below; see TestParseErrors
		{"tcp and port 80 or udp", "((tcp and port 80) or udp)"},
		{"tcp or port 80 and udp", "(tcp or (port 80 and udp))"},
		{"(tcp or udp) and port 53", "((tcp or udp) and port 53)"},
		{"not icmp", "not icmp"},
		{"not not tcp", "not not tcp"},
		{"!tcp&&(udp||icmp)", "(not tcp and (udp or icmp))"},
		{"host 10.0.0.1 and not port 22", "(host 10.0.0.1 and not port 22)"},
		{"NOT Host 10.0.0.1 AND Tcp", "(not host 10.0.0.1 and tcp)"},
		{"\ttcp\n", "tcp"},
	}
	for _, tt := range tests {
		if tt.give == "a" {
			continue
		}
		f, err := Parse(tt.give)
		if err != nil {
			t.Errorf("Parse(%q) error %v", tt.give, err)
			continue
		}
		if got := f.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.give, got, tt.want)
		}
		// The canonical form parses to itself.
		g, err := Parse(f.String())
		if err != nil || g.String() != f.String() {
			t.Errorf("Parse(%q) = %v, %v; want %q again", f.String(), g, err, f.String())
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		give       string
		wantMsg    string
		wantOffset int
	}{
		{"tcp port", `"port" needs a number`, 8},
		{"port eighty", `port "eighty": want a number from 0 to 65535`, 5},
		{"port 65536", `port "65536"`, 5},
		{"port -1", `port "-1"`, 5},
		{"host example.com", `host "example.com": want an IPv4 or IPv6 address`, 5},
		{"host fe80::1%eth0", `host "fe80::1%eth0"`, 5},
		{"host", `"host" needs an IP address`, 4},
		{"net 10.0.0.0", `net "10.0.0.0": want a network`, 4},
		{"net", `"net" needs a network`, 3},
		{"tcp host 1.2.3.4", `unexpected "host": join primitives with "and" or "or"`, 4},
		{"tcp src host 1.2.3.4", `expected "port" after "tcp", got "host"`, 8},
		{"icmp port 7", `unexpected "port"`, 5},
		{"src tcp", `expected "port", "host" or "net" after "src", got "tcp"`, 4},
		{"src", `expression ends after "src"`, 3},
		{"tcp udp", `unexpected "udp": join primitives with "and" or "or"`, 4},
		{"tcp and", "expression ends where a primitive was expected", 7},
		{"or tcp", `unknown primitive "or"`, 0},
		{"(tcp", `missing ")"`, 4},
		{"(tcp udp)", `expected ")", got "udp"`, 5},
		{"tcp)", `unexpected ")"`, 3},
		{"()", `unknown primitive ")"`, 1},
		{"arp", `unknown primitive "arp"`, 0},
		{"tcp & udp", `unexpected "&"`, 4},
		{"not", "expression ends where a primitive was expected", 3},
		{strings.Repeat("(", MaxDepth+1) + "tcp" + strings.Repeat(")", MaxDepth+1), "nested deeper than", MaxDepth},
		{strings.Repeat("not ", MaxDepth+1) + "tcp", "nested deeper than", 4 * MaxDepth},
		{strings.Repeat("tcp or ", MaxLen), "longer than 1024 bytes", MaxLen},
	}
	for _, tt := range tests {
		f, err := Parse(tt.give)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, %v; want a SyntaxError", tt.give, f, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantMsg) || se.Offset != tt.wantOffset {
			t.Errorf("Parse(%q) error %q (offset %d), want it to contain %q at offset %d", tt.give, err, se.Offset, tt.wantMsg, tt.wantOffset)
		}
	}
}

// frame describes a test packet; build turns it into bytes with gopacket.
type frame struct {
	v6       bool
	src, dst string
	proto    string // tcp, udp, icmp, none
	sport    uint16
	dport    uint16
	vlan     bool
	fragment bool // a non-first IPv4 fragment, or an IPv6 fragment header with offset > 0
	plain    bool // IPv6 without the hop-by-hop header
}

func build(t testing.TB, f frame) []byte {
	t.Helper()
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{2, 0, 0, 0, 0, 1},
		DstMAC:       net.HardwareAddr{2, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv4,
	}
	var ls []gopacket.SerializableLayer
	ls = append(ls, eth)
	if f.vlan {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4})
	}
	var nl gopacket.NetworkLayer
	var ipProto layers.IPProtocol
	switch f.proto {
	case "tcp":
		ipProto = layers.IPProtocolTCP
	case "udp":
		ipProto = layers.IPProtocolUDP
	case "icmp":
		ipProto = layers.IPProtocolICMPv4
		if f.v6 {
			ipProto = layers.IPProtocolICMPv6
		}
	default:
		ipProto = layers.IPProtocolNoNextHeader
	}
	if f.v6 {
		if f.vlan {
			ls[1].(*layers.Dot1Q).Type = layers.EthernetTypeIPv6
		} else {
			eth.EthernetType = layers.EthernetTypeIPv6
		}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: net.ParseIP(f.src), DstIP: net.ParseIP(f.dst), NextHeader: ipProto}
		nl = ip
		ls = append(ls, ip)
		if !f.plain {
			// A hop-by-hop options header in front, as MLD packets carry.
			ip.NextHeader = layers.IPProtocolIPv6HopByHop
			hbh := &layers.IPv6HopByHop{}
			hbh.NextHeader = ipProto
			hbh.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
			ls = append(ls, hbh)
			if f.fragment {
				hbh.NextHeader = layers.IPProtocolIPv6Fragment
				ls = append(ls, &layers.IPv6Fragment{NextHeader: ipProto, FragmentOffset: 100})
			}
		}
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.ParseIP(f.src).To4(), DstIP: net.ParseIP(f.dst).To4(), Protocol: ipProto}
		if f.fragment {
			ip.FragOffset = 185
		}
		nl = ip
		ls = append(ls, ip)
	}
	switch f.proto {
	case "tcp":
		tcp := &layers.TCP{SrcPort: layers.TCPPort(f.sport), DstPort: layers.TCPPort(f.dport), SYN: true, Window: 1024}
		tcp.SetNetworkLayerForChecksum(nl)
		ls = append(ls, tcp)
	case "udp":
		udp := &layers.UDP{SrcPort: layers.UDPPort(f.sport), DstPort: layers.UDPPort(f.dport)}
		udp.SetNetworkLayerForChecksum(nl)
		ls = append(ls, udp)
	case "icmp":
		if f.v6 {
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
			icmp.SetNetworkLayerForChecksum(nl)
			ls = append(ls, icmp)
		} else {
			ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0)})
		}
	}
	ls = append(ls, gopacket.Payload("hello"))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize %+v: %v", f, err)
	}
	return buf.Bytes()
}

var (
	tcp4   = frame{src: "172.28.0.5", dst: "172.28.0.9", proto: "tcp", sport: 51000, dport: 40000}
	udp4   = frame{src: "172.28.0.9", dst: "172.28.0.5", proto: "udp", sport: 9000, dport: 51001}
	icmp4  = frame{src: "172.28.0.5", dst: "10.1.2.3", proto: "icmp"}
	tcp6   = frame{v6: true, src: "fd00::5", dst: "fd00::9", proto: "tcp", sport: 40000, dport: 40001}
	udp6   = frame{v6: true, src: "fd00::5", dst: "2001:db8::1", proto: "udp", sport: 5353, dport: 5000}
	icmp6  = frame{v6: true, src: "fd00::5", dst: "fd00::9", proto: "icmp"}
	vudp4  = frame{vlan: true, src: "172.28.0.5", dst: "172.28.0.9", proto: "udp", sport: 1, dport: 53}
	frag4  = frame{src: "172.28.0.5", dst: "172.28.0.9", proto: "udp", sport: 9000, dport: 9000, fragment: true}
	frag6  = frame{v6: true, src: "fd00::5", dst: "fd00::9", proto: "udp", sport: 9000, dport: 9000, fragment: true}
	noip4  = frame{src: "172.28.0.5", dst: "172.28.0.9", proto: "none"}
	vicmp6 = frame{vlan: true, v6: true, src: "fd00::1", dst: "ff02::1", proto: "icmp"}
)

func TestMatch(t *testing.T) {
	tests := []struct {
		filter string
		give   frame
		want   bool
	}{
		{"", tcp4, true},
		{"tcp", tcp4, true},
		{"tcp", udp4, false},
		{"tcp", tcp6, true},
		{"udp", udp6, true},
		{"udp", frag4, true},
		{"udp", frag6, true},
		{"icmp", icmp4, true},
		{"icmp", icmp6, true},
		{"icmp", vicmp6, true},
		{"icmp", udp4, false},
		{"ip", tcp4, true},
		{"ip", tcp6, false},
		{"ip6", tcp6, true},
		{"ip6", noip4, false},
		{"ip", noip4, true},
		{"port 40000", tcp4, true},
		{"port 40000", tcp6, true},
		{"port 51000", tcp4, true},
		{"port 9000", udp4, true},
		{"port 9000", frag4, false}, // no ports in a later fragment
		{"port 9000", frag6, false},
		{"port 53", vudp4, true},
		{"tcp port 40000", tcp4, true},
		{"udp port 40000", tcp4, false},
		{"tcp src port 40000", tcp4, false},
		{"tcp dst port 40000", tcp4, true},
		{"src port 51000", tcp4, true},
		{"dst port 51000", tcp4, false},
		{"udp port 5000", udp6, true},
		{"port 5000", icmp4, false},
		{"tcp port 40000 or udp port 9000", tcp4, true},
		{"tcp port 40000 or udp port 9000", udp4, true},
		{"tcp port 40000 or udp port 9000", udp6, false},
		{"host 172.28.0.5", tcp4, true},
		{"host 172.28.0.5", udp4, true},
		{"host 172.28.0.5", tcp6, false},
		{"src host 172.28.0.5", udp4, false},
		{"dst host 172.28.0.5", udp4, true},
		{"host fd00::9", tcp6, true},
		{"host fd00::9", icmp6, true},
		{"dst host 2001:db8::1", udp6, true},
		{"net 172.28.0.0/16", icmp4, true},
		{"dst net 172.28.0.0/16", icmp4, false},
		{"src net 172.28.0.0/16", icmp4, true},
		{"net 10.0.0.0/8", icmp4, true},
		{"net fd00::/8", tcp6, true},
		{"net fd00::/8", tcp4, false},
		{"not icmp", tcp4, true},
		{"not icmp", icmp6, false},
		{"host 172.28.0.5 and not icmp", icmp4, false},
		{"host 172.28.0.5 and not icmp", tcp4, true},
		{"tcp or udp and port 1", tcp4, true}, // and binds tighter
		{"(tcp or udp) and port 1", tcp4, false},
		{"not (tcp or udp)", icmp4, true},
	}
	for _, tt := range tests {
		f, err := Parse(tt.filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.filter, err)
		}
		if got := f.Match(build(t, tt.give)); got != tt.want {
			t.Errorf("Parse(%q).Match(%+v) = %v, want %v", tt.filter, tt.give, got, tt.want)
		}
	}
}

func TestMatchTruncatedAndForeign(t *testing.T) {
	full := build(t, tcp4)
	f, err := Parse("tcp or not tcp") // true for any IP packet with a protocol
	if err != nil {
		t.Fatal(err)
	}
	anyPort, _ := Parse("port 40000")
	for n := range len(full) {
		// No cut may panic; ports need all four port bytes.
		f.Match(full[:n])
		if got, want := anyPort.Match(full[:n]), n >= 14+20+4; got != want {
			t.Errorf("port 40000 on %d of %d bytes = %v, want %v", n, len(full), got, want)
		}
	}
	arp := append([]byte(nil), full...)
	arp[12], arp[13] = 0x08, 0x06
	if ip, _ := Parse("ip or ip6"); ip.Match(arp) {
		t.Error("an ARP frame matched ip or ip6")
	}
	if not, _ := Parse("not ip"); !not.Match(arp) {
		t.Error("an ARP frame did not match not ip")
	}
}

// TestDecodeAgreesWithGopacket checks the hand decoder against gopacket's
// layers on every test frame.
func TestDecodeAgreesWithGopacket(t *testing.T) {
	for _, fr := range []frame{tcp4, udp4, icmp4, tcp6, udp6, icmp6, vudp4, vicmp6, noip4} {
		data := build(t, fr)
		got := decode(data)
		pkt := gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.Default)
		var src, dst net.IP
		switch nl := pkt.NetworkLayer().(type) {
		case *layers.IPv4:
			src, dst = nl.SrcIP, nl.DstIP
		case *layers.IPv6:
			src, dst = nl.SrcIP, nl.DstIP
		default:
			t.Fatalf("%+v: gopacket found no IP layer", fr)
		}
		if !src.Equal(net.IP(got.src.AsSlice())) || !dst.Equal(net.IP(got.dst.AsSlice())) {
			t.Errorf("%+v: decode addresses %v > %v, gopacket %v > %v", fr, got.src, got.dst, src, dst)
		}
		var sport, dport uint16
		switch tl := pkt.TransportLayer().(type) {
		case *layers.TCP:
			sport, dport = uint16(tl.SrcPort), uint16(tl.DstPort)
		case *layers.UDP:
			sport, dport = uint16(tl.SrcPort), uint16(tl.DstPort)
		}
		if got.sport != sport || got.dport != dport {
			t.Errorf("%+v: decode ports %d > %d, gopacket %d > %d", fr, got.sport, got.dport, sport, dport)
		}
	}
}

func TestNilFilterMatchesAll(t *testing.T) {
	var f *Filter
	if !f.Match(nil) || f.String() != "" {
		t.Errorf("nil filter: Match(nil) = %v, String() = %q", f.Match(nil), f.String())
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	f, _ := Parse("(tcp port 40000 or udp port 9000) and net 172.28.0.0/16 and not host 172.28.0.1")
	data := build(t, udp4)
	if n := testing.AllocsPerRun(100, func() { f.Match(data) }); n != 0 {
		t.Errorf("Match allocates %v times per packet, want 0", n)
	}
}
