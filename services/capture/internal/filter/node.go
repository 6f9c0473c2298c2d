package filter

import (
	"net/netip"
	"strconv"
)

// op is what a node does. One concrete node type, evaluated by a switch,
// lets the packet be passed by pointer without escaping to the heap (an
// interface method would make it escape, or force a copy per node).
type op uint8

const (
	opOr op = iota
	opAnd
	opNot
	opProto // kind, proto
	opPort  // proto (0: TCP or UDP), dir, port
	opNet   // dir, prefix, host
)

type protoKind uint8

const (
	kindTransport protoKind = iota // TCP or UDP, in proto
	kindICMP                       // ICMP over IPv4 or ICMPv6 over IPv6
	kindIPv4
	kindIPv6
)

type dir uint8

const (
	dirAny dir = iota
	dirSrc
	dirDst
)

// node is one operator or primitive of a parsed expression.
type node struct {
	op     op
	a, b   *node // operands of or, and (both) and not (a)
	kind   protoKind
	proto  uint8
	dir    dir
	port   uint16
	prefix netip.Prefix
	host   bool // prefix is one address, written "host"
}

func (n *node) eval(p *packet) bool {
	switch n.op {
	case opOr:
		return n.a.eval(p) || n.b.eval(p)
	case opAnd:
		return n.a.eval(p) && n.b.eval(p)
	case opNot:
		return !n.a.eval(p)
	case opProto:
		switch n.kind {
		case kindTransport:
			return p.version != 0 && p.proto == n.proto
		case kindICMP:
			return (p.version == 4 && p.proto == protoICMP) || (p.version == 6 && p.proto == protoICMPv6)
		case kindIPv4:
			return p.version == 4
		case kindIPv6:
			return p.version == 6
		}
	case opPort:
		if !p.ports || (n.proto != 0 && p.proto != n.proto) {
			return false
		}
		switch n.dir {
		case dirSrc:
			return p.sport == n.port
		case dirDst:
			return p.dport == n.port
		}
		return p.sport == n.port || p.dport == n.port
	case opNet:
		if p.version == 0 {
			return false
		}
		switch n.dir {
		case dirSrc:
			return n.prefix.Contains(p.src)
		case dirDst:
			return n.prefix.Contains(p.dst)
		}
		return n.prefix.Contains(p.src) || n.prefix.Contains(p.dst)
	}
	return false
}

func (n *node) String() string {
	switch n.op {
	case opOr:
		return "(" + n.a.String() + " or " + n.b.String() + ")"
	case opAnd:
		return "(" + n.a.String() + " and " + n.b.String() + ")"
	case opNot:
		return "not " + n.a.String()
	case opProto:
		switch n.kind {
		case kindTransport:
			return protoName(n.proto)
		case kindICMP:
			return "icmp"
		case kindIPv4:
			return "ip"
		}
		return "ip6"
	case opPort:
		s := n.dir.prefix() + "port " + strconv.Itoa(int(n.port))
		if n.proto != 0 {
			s = protoName(n.proto) + " " + s
		}
		return s
	}
	if n.host {
		return n.dir.prefix() + "host " + n.prefix.Addr().String()
	}
	return n.dir.prefix() + "net " + n.prefix.String()
}

func protoName(proto uint8) string {
	if proto == protoTCP {
		return "tcp"
	}
	return "udp"
}

func (d dir) prefix() string {
	switch d {
	case dirSrc:
		return "src "
	case dirDst:
		return "dst "
	}
	return ""
}
