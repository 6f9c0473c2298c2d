package filter

import (
	"encoding/binary"
	"net/netip"
)

// packet holds what the filter looks at, decoded by hand from the frame so
// that matching allocates nothing.
type packet struct {
	version      uint8 // 4 or 6; 0 when the frame carries no IP packet
	src, dst     netip.Addr
	proto        uint8 // transport protocol, after IPv6 extension headers
	ports        bool  // sport and dport are set (TCP/UDP, first fragment)
	sport, dport uint16
}

// EtherTypes and IPv6 extension headers the decoder follows.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	etherVLAN   = 0x8100
	etherQinQ   = 0x88a8
	etherQinQv1 = 0x9100

	ip6HopByHop = 0
	ip6Routing  = 43
	ip6Fragment = 44
	ip6AH       = 51
	ip6DestOpts = 60

	maxVLANTags  = 2
	maxExtHeader = 8
)

// decode reads the Ethernet, optional VLAN, IPv4 or IPv6 and TCP/UDP
// headers of frame. A truncated or foreign frame yields what could be read.
func decode(frame []byte) (p packet) {
	if len(frame) < 14 {
		return p
	}
	etype := binary.BigEndian.Uint16(frame[12:14])
	b := frame[14:]
	for range maxVLANTags {
		if etype != etherVLAN && etype != etherQinQ && etype != etherQinQv1 {
			break
		}
		if len(b) < 4 {
			return p
		}
		etype = binary.BigEndian.Uint16(b[2:4])
		b = b[4:]
	}
	var l4 []byte
	first := true // the first fragment, which carries the ports
	switch etype {
	case etherIPv4:
		if len(b) < 20 || b[0]>>4 != 4 {
			return p
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return p
		}
		p.version = 4
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.proto = b[9]
		first = binary.BigEndian.Uint16(b[6:8])&0x1fff == 0
		l4 = b[ihl:]
	case etherIPv6:
		if len(b) < 40 || b[0]>>4 != 6 {
			return p
		}
		p.version = 6
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		next, off := b[6], 40
	ext:
		for range maxExtHeader {
			switch next {
			case ip6HopByHop, ip6Routing, ip6DestOpts, ip6AH, ip6Fragment:
			default:
				break ext
			}
			if len(b) < off+8 {
				p.proto = next
				return p
			}
			n := (int(b[off+1]) + 1) * 8
			switch next {
			case ip6Fragment:
				n = 8
				first = binary.BigEndian.Uint16(b[off+2:off+4])>>3 == 0
			case ip6AH:
				n = (int(b[off+1]) + 2) * 4
			}
			next = b[off]
			off += n
		}
		p.proto = next
		if off > len(b) {
			return p
		}
		l4 = b[off:]
	default:
		return p
	}
	if first && (p.proto == protoTCP || p.proto == protoUDP) && len(l4) >= 4 {
		p.ports = true
		p.sport = binary.BigEndian.Uint16(l4[0:2])
		p.dport = binary.BigEndian.Uint16(l4[2:4])
	}
	return p
}
