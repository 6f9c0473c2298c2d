package filter

import (
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// tcp6plain has no hop-by-hop header, which DecodingLayerParser cannot
// step over.
var tcp6plain = frame{v6: true, plain: true, src: "fd00::5", dst: "fd00::9", proto: "tcp", sport: 40000, dport: 40001}

// BenchmarkMatch compares the hand decoder and matcher with gopacket's
// fastest decoding path (DecodingLayerParser) answering the same filter.
func BenchmarkMatch(b *testing.B) {
	flt, err := Parse("tcp port 40000 or udp port 9000")
	if err != nil {
		b.Fatal(err)
	}
	for _, fr := range []struct {
		name string
		f    frame
	}{{"udp4", udp4}, {"tcp6", tcp6plain}} {
		data := build(b, fr.f)
		b.Run("pkt="+fr.name+"/impl=ours", func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if flt.Match(data) {
					n++
				}
			}
			if n == 0 {
				b.Fatal("no match")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
		b.Run("pkt="+fr.name+"/impl=gopacket", func(b *testing.B) {
			var eth layers.Ethernet
			var ip4 layers.IPv4
			var ip6 layers.IPv6
			var tcp layers.TCP
			var udp layers.UDP
			var payload gopacket.Payload
			p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp, &udp, &payload)
			p.IgnoreUnsupported = true
			decoded := make([]gopacket.LayerType, 0, 8)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				p.DecodeLayers(data, &decoded)
				for _, lt := range decoded {
					if lt == layers.LayerTypeTCP && (tcp.SrcPort == 40000 || tcp.DstPort == 40000) ||
						lt == layers.LayerTypeUDP && (udp.SrcPort == 9000 || udp.DstPort == 9000) {
						n++
					}
				}
			}
			if n == 0 {
				b.Fatal("no match")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
