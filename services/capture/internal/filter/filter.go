// Package filter parses and evaluates capture's packet filter: a small,
// pure-Go subset of the tcpdump (pcap-filter) language that selects packets
// by transport protocol, port, address and network.
//
// Grammar (keywords are case-insensitive; "and" binds tighter than "or",
// "not" tighter than both; parentheses group):
//
//	expr    = term { ("or" | "||") term }
//	term    = factor { ("and" | "&&") factor }
//	factor  = ("not" | "!") factor | "(" expr ")" | prim
//	prim    = "tcp" | "udp" | "icmp" | "ip" | "ip6"
//	        | [ "tcp" | "udp" ] [ "src" | "dst" ] "port" NUMBER
//	        | [ "src" | "dst" ] "host" ADDRESS
//	        | [ "src" | "dst" ] "net" CIDR
//
// Examples: "tcp port 40000 or udp port 9000", "port 5000",
// "host 172.28.0.5 and not icmp", "src net 172.28.0.0/16 and dst port 53".
package filter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Limits keep a hostile or mistaken filter from costing much: the input is
// bounded, and so is the nesting the recursive parser follows.
const (
	MaxLen   = 1024
	MaxDepth = 32
)

// IP protocol numbers the filter knows.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// Filter is a parsed filter expression. A nil *Filter matches every packet.
type Filter struct {
	root *node
}

// SyntaxError describes why a filter expression does not parse.
type SyntaxError struct {
	Input  string // the whole expression
	Offset int    // byte offset of the offending token
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter %q: %s (at offset %d)", e.Input, e.Msg, e.Offset)
}

// Parse compiles expr. An expression of only blanks gives a nil Filter,
// which matches everything.
func Parse(expr string) (*Filter, error) {
	if len(expr) > MaxLen {
		return nil, &SyntaxError{Input: expr[:40] + "...", Offset: MaxLen, Msg: fmt.Sprintf("longer than %d bytes", MaxLen)}
	}
	p := &parser{input: expr, toks: tokenize(expr)}
	if len(p.toks) == 0 {
		return nil, nil
	}
	root, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t, ok := p.peek(); ok {
		return nil, p.errAt(t, fmt.Sprintf("unexpected %q: join primitives with \"and\" or \"or\"", t.text))
	}
	return &Filter{root: root}, nil
}

// String returns the expression in canonical form: fully parenthesised,
// lowercase, one space between words. Parse(f.String()) is equivalent to f.
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	return f.root.String()
}

// Match reports whether an Ethernet frame (link type EN10MB, as captured on a
// Linux bridge or lo) passes the filter.
func (f *Filter) Match(frame []byte) bool {
	if f == nil {
		return true
	}
	p := decode(frame)
	return f.root.eval(&p)
}

type token struct {
	text string
	off  int
}

// tokenize splits on blanks and around the operators ( ) ! && ||.
func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{s[i : i+1], i})
			i++
		case c == '!':
			toks = append(toks, token{"!", i})
			i++
		case strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			toks = append(toks, token{s[i : i+2], i})
			i += 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()!&|", rune(s[j])) {
				j++
			}
			if j == i { // a lone & or |
				j++
			}
			toks = append(toks, token{s[i:j], i})
			i = j
		}
	}
	return toks
}

type parser struct {
	input string
	toks  []token
	pos   int
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

// is reports whether the next token is one of words (case-insensitively).
func (p *parser) is(words ...string) bool {
	t, ok := p.peek()
	if !ok {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(t.text, w) {
			return true
		}
	}
	return false
}

func (p *parser) errAt(t token, msg string) error {
	return &SyntaxError{Input: p.input, Offset: t.off, Msg: msg}
}

func (p *parser) errEnd(msg string) error {
	return &SyntaxError{Input: p.input, Offset: len(p.input), Msg: msg}
}

func (p *parser) expr(depth int) (*node, error) {
	left, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	for p.is("or", "||") {
		p.pos++
		right, err := p.term(depth)
		if err != nil {
			return nil, err
		}
		left = &node{op: opOr, a: left, b: right}
	}
	return left, nil
}

func (p *parser) term(depth int) (*node, error) {
	left, err := p.factor(depth)
	if err != nil {
		return nil, err
	}
	for p.is("and", "&&") {
		p.pos++
		right, err := p.factor(depth)
		if err != nil {
			return nil, err
		}
		left = &node{op: opAnd, a: left, b: right}
	}
	return left, nil
}

func (p *parser) factor(depth int) (*node, error) {
	t, ok := p.peek()
	if !ok {
		return nil, p.errEnd("expression ends where a primitive was expected")
	}
	if depth >= MaxDepth {
		return nil, p.errAt(t, fmt.Sprintf("nested deeper than %d", MaxDepth))
	}
	switch {
	case p.is("not", "!"):
		p.pos++
		n, err := p.factor(depth + 1)
		if err != nil {
			return nil, err
		}
		return &node{op: opNot, a: n}, nil
	case t.text == "(":
		p.pos++
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.is(")") {
			if t, ok := p.peek(); ok {
				return nil, p.errAt(t, fmt.Sprintf("expected \")\", got %q", t.text))
			}
			return nil, p.errEnd("missing \")\"")
		}
		p.pos++
		return n, nil
	}
	return p.prim()
}

func (p *parser) prim() (*node, error) {
	first, _ := p.peek()
	var proto uint8
	switch {
	case p.is("tcp"):
		proto = protoTCP
	case p.is("udp"):
		proto = protoUDP
	case p.is("icmp"):
		p.pos++
		return &node{op: opProto, kind: kindICMP}, nil
	case p.is("ip"):
		p.pos++
		return &node{op: opProto, kind: kindIPv4}, nil
	case p.is("ip6"):
		p.pos++
		return &node{op: opProto, kind: kindIPv6}, nil
	}
	if proto != 0 {
		p.pos++
		if !p.is("src", "dst", "port") {
			return &node{op: opProto, kind: kindTransport, proto: proto}, nil
		}
	}
	d := dirAny
	switch {
	case p.is("src"):
		d = dirSrc
		p.pos++
	case p.is("dst"):
		d = dirDst
		p.pos++
	}
	kw, ok := p.peek()
	if !ok {
		return nil, p.errEnd(fmt.Sprintf("expression ends after %q", first.text))
	}
	switch {
	case p.is("port"):
		p.pos++
		v, ok := p.peek()
		if !ok {
			return nil, p.errEnd("\"port\" needs a number")
		}
		n, err := strconv.ParseUint(v.text, 10, 16)
		if err != nil {
			return nil, p.errAt(v, fmt.Sprintf("port %q: want a number from 0 to 65535", v.text))
		}
		p.pos++
		return &node{op: opPort, proto: proto, dir: d, port: uint16(n)}, nil
	case proto != 0:
		return nil, p.errAt(kw, fmt.Sprintf("expected \"port\" after %q, got %q", first.text, kw.text))
	case p.is("host"):
		p.pos++
		v, ok := p.peek()
		if !ok {
			return nil, p.errEnd("\"host\" needs an IP address")
		}
		a, err := netip.ParseAddr(v.text)
		if err != nil || a.Zone() != "" {
			return nil, p.errAt(v, fmt.Sprintf("host %q: want an IPv4 or IPv6 address (names are not resolved)", v.text))
		}
		p.pos++
		return &node{op: opNet, dir: d, prefix: netip.PrefixFrom(a, a.BitLen()), host: true}, nil
	case p.is("net"):
		p.pos++
		v, ok := p.peek()
		if !ok {
			return nil, p.errEnd("\"net\" needs a network such as 172.28.0.0/16")
		}
		pf, err := netip.ParsePrefix(v.text)
		if err != nil {
			return nil, p.errAt(v, fmt.Sprintf("net %q: want a network such as 172.28.0.0/16", v.text))
		}
		p.pos++
		return &node{op: opNet, dir: d, prefix: pf.Masked()}, nil
	case d != dirAny:
		return nil, p.errAt(kw, fmt.Sprintf("expected \"port\", \"host\" or \"net\" after %q, got %q", first.text, kw.text))
	}
	return nil, p.errAt(kw, fmt.Sprintf("unknown primitive %q: want tcp, udp, icmp, ip, ip6, port, host, net, not or (", kw.text))
}
