package wireshark

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// capture builds a pcap file packet by packet: Ethernet, IPv4, then TCP
// segments of whole conversations or UDP datagrams, with timestamps that
// advance by step per packet so goldens are stable.
type capture struct {
	t    *testing.T
	pkts [][]byte
	ts   []time.Time
	now  time.Time
	step time.Duration
}

func newCapture(t *testing.T) *capture {
	return &capture{t: t, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), step: time.Millisecond}
}

// wait moves the clock on before the next packet.
func (c *capture) wait(d time.Duration) { c.now = c.now.Add(d) }

func (c *capture) packet(src, dst netip.AddrPort, transport gopacket.SerializableLayer, payload []byte) {
	c.t.Helper()
	ip := &layers.IPv4{
		Version: 4, TTL: 64, SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice()),
		Flags: layers.IPv4DontFragment,
	}
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{0x02, 0x42, 0xac, 0x1e, 0, src.Addr().As4()[3]},
		DstMAC:       net.HardwareAddr{0x02, 0x42, 0xac, 0x1e, 0, dst.Addr().As4()[3]},
		EthernetType: layers.EthernetTypeIPv4,
	}
	switch l := transport.(type) {
	case *layers.TCP:
		ip.Protocol = layers.IPProtocolTCP
		if err := l.SetNetworkLayerForChecksum(ip); err != nil {
			c.t.Fatal(err)
		}
	case *layers.UDP:
		ip.Protocol = layers.IPProtocolUDP
		if err := l.SetNetworkLayerForChecksum(ip); err != nil {
			c.t.Fatal(err)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, transport, gopacket.Payload(payload)); err != nil {
		c.t.Fatal(err)
	}
	c.pkts = append(c.pkts, append([]byte(nil), buf.Bytes()...))
	c.ts = append(c.ts, c.now)
	c.now = c.now.Add(c.step)
}

// udp adds one datagram.
func (c *capture) udp(src, dst string, payload []byte) {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	c.packet(s, d, &layers.UDP{SrcPort: layers.UDPPort(s.Port()), DstPort: layers.UDPPort(d.Port())}, payload)
}

// tcpConn is one TCP connection of a capture, opened with a handshake.
type tcpConn struct {
	c          *capture
	cli, srv   netip.AddrPort
	cseq, sseq uint32
}

// tcp opens a connection from client to server (SYN, SYN-ACK, ACK).
func (c *capture) tcp(client, server string) *tcpConn {
	tc := &tcpConn{c: c, cli: netip.MustParseAddrPort(client), srv: netip.MustParseAddrPort(server), cseq: 1000, sseq: 5000}
	tc.segment(true, layers.TCP{SYN: true}, nil)
	tc.segment(false, layers.TCP{SYN: true, ACK: true}, nil)
	tc.segment(true, layers.TCP{ACK: true}, nil)
	return tc
}

// tcpJoined is a connection already open when the recording began: no
// handshake.
func (c *capture) tcpJoined(client, server string) *tcpConn {
	return &tcpConn{c: c, cli: netip.MustParseAddrPort(client), srv: netip.MustParseAddrPort(server), cseq: 1000, sseq: 5000}
}

func (tc *tcpConn) segment(fromClient bool, flags layers.TCP, payload []byte) {
	src, dst := tc.cli, tc.srv
	seq, ack := &tc.cseq, &tc.sseq
	if !fromClient {
		src, dst = dst, src
		seq, ack = ack, seq
	}
	l := flags
	l.SrcPort, l.DstPort = layers.TCPPort(src.Port()), layers.TCPPort(dst.Port())
	l.Seq, l.Window = *seq, 65535
	if l.ACK {
		l.Ack = *ack
	}
	tc.c.packet(src, dst, &l, payload)
	*seq += uint32(len(payload))
	if l.SYN || l.FIN {
		*seq++
	}
}

// client sends each payload as one segment from the client.
func (tc *tcpConn) client(payloads ...[]byte) {
	for _, p := range payloads {
		tc.segment(true, layers.TCP{ACK: true, PSH: true}, p)
	}
}

// server sends each payload as one segment from the server.
func (tc *tcpConn) server(payloads ...[]byte) {
	for _, p := range payloads {
		tc.segment(false, layers.TCP{ACK: true, PSH: true}, p)
	}
}

// close ends the connection: FIN from the client, FIN-ACK, ACK.
func (tc *tcpConn) close() {
	tc.segment(true, layers.TCP{FIN: true, ACK: true}, nil)
	tc.segment(false, layers.TCP{FIN: true, ACK: true}, nil)
	tc.segment(true, layers.TCP{ACK: true}, nil)
}

// write saves the capture as a pcap file in a test directory.
func (c *capture) write() string {
	c.t.Helper()
	path := filepath.Join(c.t.TempDir(), "test.pcap")
	f, err := os.Create(path)
	if err != nil {
		c.t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		c.t.Fatal(err)
	}
	for i, p := range c.pkts {
		ci := gopacket.CaptureInfo{Timestamp: c.ts[i], CaptureLength: len(p), Length: len(p)}
		if err := w.WritePacket(ci, p); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// split cuts s into pieces at the given byte offsets.
func split(s string, at ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, a := range at {
		out = append(out, []byte(s[prev:a]))
		prev = a
	}
	return append(out, []byte(s[prev:]))
}
