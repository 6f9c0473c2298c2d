package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"

	"golang.org/x/net/bpf"
)

// Scratch memory slots the compiled program decodes a frame into. Every
// slot is zeroed first: the kernel refuses a program that may read a slot
// before writing it.
const (
	mVersion = 0  // 4, 6 or 0
	mProto   = 1  // IP protocol
	mPorts   = 2  // 1 when sport and dport are set
	mSport   = 3  // TCP/UDP source port
	mDport   = 4  // TCP/UDP destination port
	mSrc4    = 5  // IPv4 source
	mDst4    = 6  // IPv4 destination
	mSrc6    = 7  // IPv6 source, 4 words: 7-10
	mDst6    = 11 // IPv6 destination, 4 words: 11-14
	mSlots   = 15
)

// packetOutgoing is Linux's PACKET_OUTGOING, the packet type (skb->pkt_type)
// of a frame the host sends.
const packetOutgoing = 4

// ErrProgramTooLong is returned by Program when a jump would not fit a
// classic BPF instruction; the caller then filters in user space only.
var ErrProgramTooLong = errors.New("filter too long for a kernel socket filter")

// Program compiles f into a classic BPF program for a Linux packet socket,
// so that the kernel drops what f rejects before queueing it. An accepted
// frame is cut to snaplen bytes. The program decides exactly for the frames
// it can decode like Match does (Ethernet with IPv4, IPv6 without extension
// headers, or another EtherType) and accepts the rest (VLAN tags, IPv6
// extension headers, malformed or cut headers), which Match then decides:
// it never drops a frame that Match accepts. With dropOutgoing it also
// drops the frames the host sends (on lo, where each packet would
// otherwise be seen twice). A nil f gives a program that accepts all.
func (f *Filter) Program(snaplen uint32, dropOutgoing bool) ([]bpf.Instruction, error) {
	c := &compiler{}
	accept, reject := c.newLabel(), c.newLabel()
	if dropOutgoing {
		c.emit(bpf.LoadExtension{Num: bpf.ExtType})
		next := c.newLabel()
		c.jumpIf(bpf.JumpEqual, packetOutgoing, reject, next)
		c.mark(next)
	}
	if f != nil {
		eval := c.newLabel()
		c.decode(snaplen, eval)
		c.mark(eval)
		c.node(f.root, accept, reject)
	}
	c.mark(accept)
	c.emit(bpf.RetConstant{Val: snaplen})
	c.mark(reject)
	c.emit(bpf.RetConstant{Val: 0})
	return c.link()
}

type label int

// insn is an instruction whose jumps still name labels.
type insn struct {
	ins    bpf.Instruction
	kind   insnKind
	jt, jf label // for a conditional jump
	ja     label // for a Jump
}

type insnKind uint8

const (
	plain   insnKind = iota
	jumpIf           // bpf.JumpIf, A <cond> constant
	jumpIfX          // bpf.JumpIfX, A <cond> X
	jump             // bpf.Jump
)

type compiler struct {
	code   []insn
	labels []int // label -> instruction index, -1 until marked
}

func (c *compiler) newLabel() label {
	c.labels = append(c.labels, -1)
	return label(len(c.labels) - 1)
}

func (c *compiler) mark(l label) { c.labels[l] = len(c.code) }

func (c *compiler) emit(ins ...bpf.Instruction) {
	for _, i := range ins {
		c.code = append(c.code, insn{ins: i})
	}
}

func (c *compiler) jumpIf(cond bpf.JumpTest, val uint32, t, f label) {
	c.code = append(c.code, insn{ins: bpf.JumpIf{Cond: cond, Val: val}, kind: jumpIf, jt: t, jf: f})
}

// ifScratch jumps to t when scratch slot holds val, to f when not; A
// keeps the slot's value.
func (c *compiler) ifScratch(slot int, val uint32, t, f label) {
	c.emit(bpf.LoadScratch{Dst: bpf.RegA, N: slot})
	c.jumpIf(bpf.JumpEqual, val, t, f)
}

func (c *compiler) jumpIfX(cond bpf.JumpTest, t, f label) {
	c.code = append(c.code, insn{ins: bpf.JumpIfX{Cond: cond}, kind: jumpIfX, jt: t, jf: f})
}

func (c *compiler) jump(l label) {
	c.code = append(c.code, insn{ins: bpf.Jump{}, kind: jump, ja: l})
}

// link resolves the labels into forward skips.
func (c *compiler) link() ([]bpf.Instruction, error) {
	out := make([]bpf.Instruction, len(c.code))
	skip := func(i int, l label) (int, error) {
		d := c.labels[l] - (i + 1)
		if c.labels[l] < 0 || d < 0 {
			return 0, fmt.Errorf("bpf: unresolved or backward label %d at %d", l, i)
		}
		return d, nil
	}
	for i, in := range c.code {
		switch in.kind {
		case jumpIf, jumpIfX:
			t, err := skip(i, in.jt)
			if err != nil {
				return nil, err
			}
			f, err := skip(i, in.jf)
			if err != nil {
				return nil, err
			}
			if t > math.MaxUint8 || f > math.MaxUint8 {
				return nil, ErrProgramTooLong
			}
			if in.kind == jumpIf {
				j := in.ins.(bpf.JumpIf)
				j.SkipTrue, j.SkipFalse = uint8(t), uint8(f)
				out[i] = j
			} else {
				j := in.ins.(bpf.JumpIfX)
				j.SkipTrue, j.SkipFalse = uint8(t), uint8(f)
				out[i] = j
			}
		case jump:
			d, err := skip(i, in.ja)
			if err != nil {
				return nil, err
			}
			out[i] = bpf.Jump{Skip: uint32(d)}
		default:
			out[i] = in.ins
		}
	}
	if len(out) > 4096 { // BPF_MAXINSNS
		return nil, ErrProgramTooLong
	}
	return out, nil
}

// need jumps to short unless the frame holds at least n bytes: reading
// past the end would end the program with a reject.
func (c *compiler) need(n uint32, short label) {
	ok := c.newLabel()
	c.emit(bpf.LoadExtension{Num: bpf.ExtLen})
	c.jumpIf(bpf.JumpGreaterOrEqual, n, ok, short)
	c.mark(ok)
}

// decode fills the scratch slots like decode in decode.go, and jumps to
// eval when done. It accepts any frame it cannot decode exactly with a
// return of its own, which keeps its jumps short.
func (c *compiler) decode(snaplen uint32, eval label) {
	accept := c.newLabel()
	defer func() {
		c.mark(accept)
		c.emit(bpf.RetConstant{Val: snaplen})
	}()
	c.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
	for m := range mSlots {
		c.emit(bpf.StoreScratch{Src: bpf.RegA, N: m})
	}
	ip4, ip6, other := c.newLabel(), c.newLabel(), c.newLabel()
	c.need(14, accept)
	c.emit(bpf.LoadAbsolute{Off: 12, Size: 2})
	n1, n2, n3, n4 := c.newLabel(), c.newLabel(), c.newLabel(), c.newLabel()
	c.jumpIf(bpf.JumpEqual, etherIPv4, ip4, n1)
	c.mark(n1)
	c.jumpIf(bpf.JumpEqual, etherIPv6, ip6, n2)
	c.mark(n2)
	c.jumpIf(bpf.JumpEqual, etherVLAN, accept, n3)
	c.mark(n3)
	c.jumpIf(bpf.JumpEqual, etherQinQ, accept, n4)
	c.mark(n4)
	c.jumpIf(bpf.JumpEqual, etherQinQv1, accept, other)
	c.mark(other)
	c.jump(eval) // not IP: version 0

	// IPv4: version 4, a header of 20 to 60 bytes, all present.
	c.mark(ip4)
	c.need(14+20, accept)
	v4, ihlOK := c.newLabel(), c.newLabel()
	c.emit(bpf.LoadAbsolute{Off: 14, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	c.jumpIf(bpf.JumpEqual, 0x40, v4, accept)
	c.mark(v4)
	c.emit(bpf.LoadAbsolute{Off: 14, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
	c.jumpIf(bpf.JumpGreaterOrEqual, 5, ihlOK, accept)
	c.mark(ihlOK)
	// The whole header must be there: X = its length.
	hdrOK := c.newLabel()
	c.emit(
		bpf.LoadMemShift{Off: 14},
		bpf.TXA{},
		bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 14},
		bpf.TAX{},
		bpf.LoadExtension{Num: bpf.ExtLen},
	)
	c.jumpIfX(bpf.JumpGreaterOrEqual, hdrOK, accept)
	c.mark(hdrOK)
	c.emit(
		bpf.LoadConstant{Dst: bpf.RegA, Val: 4}, bpf.StoreScratch{Src: bpf.RegA, N: mVersion},
		bpf.LoadAbsolute{Off: 14 + 9, Size: 1}, bpf.StoreScratch{Src: bpf.RegA, N: mProto},
		bpf.LoadAbsolute{Off: 14 + 12, Size: 4}, bpf.StoreScratch{Src: bpf.RegA, N: mSrc4},
		bpf.LoadAbsolute{Off: 14 + 16, Size: 4}, bpf.StoreScratch{Src: bpf.RegA, N: mDst4},
		bpf.LoadAbsolute{Off: 14 + 6, Size: 2}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x1fff},
	)
	first, tcpudp4, t4 := c.newLabel(), c.newLabel(), c.newLabel()
	c.jumpIf(bpf.JumpEqual, 0, first, eval) // a later fragment has no ports
	c.mark(first)
	c.ifScratch(mProto, protoTCP, tcpudp4, t4)
	c.mark(t4)
	c.jumpIf(bpf.JumpEqual, protoUDP, tcpudp4, eval)
	c.mark(tcpudp4)
	// The ports follow the header; without them, no ports (Match agrees).
	portsOK := c.newLabel()
	c.emit(
		bpf.LoadMemShift{Off: 14},
		bpf.TXA{},
		bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 14 + 4},
		bpf.TAX{},
		bpf.LoadExtension{Num: bpf.ExtLen},
	)
	c.jumpIfX(bpf.JumpGreaterOrEqual, portsOK, eval)
	c.mark(portsOK)
	c.emit(
		bpf.LoadMemShift{Off: 14},
		bpf.LoadIndirect{Off: 14, Size: 2}, bpf.StoreScratch{Src: bpf.RegA, N: mSport},
		bpf.LoadIndirect{Off: 16, Size: 2}, bpf.StoreScratch{Src: bpf.RegA, N: mDport},
		bpf.LoadConstant{Dst: bpf.RegA, Val: 1}, bpf.StoreScratch{Src: bpf.RegA, N: mPorts},
	)
	c.jump(eval)

	// IPv6: version 6 and a fixed header, no extension header.
	c.mark(ip6)
	c.need(14+40, accept)
	v6 := c.newLabel()
	c.emit(bpf.LoadAbsolute{Off: 14, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	c.jumpIf(bpf.JumpEqual, 0x60, v6, accept)
	c.mark(v6)
	c.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 6}, bpf.StoreScratch{Src: bpf.RegA, N: mVersion})
	for w := range 4 {
		c.emit(
			bpf.LoadAbsolute{Off: uint32(14 + 8 + 4*w), Size: 4}, bpf.StoreScratch{Src: bpf.RegA, N: mSrc6 + w},
			bpf.LoadAbsolute{Off: uint32(14 + 24 + 4*w), Size: 4}, bpf.StoreScratch{Src: bpf.RegA, N: mDst6 + w},
		)
	}
	c.emit(bpf.LoadAbsolute{Off: 14 + 6, Size: 1}, bpf.StoreScratch{Src: bpf.RegA, N: mProto})
	for _, ext := range []uint32{ip6HopByHop, ip6Routing, ip6Fragment, ip6AH, ip6DestOpts} {
		next := c.newLabel()
		c.jumpIf(bpf.JumpEqual, ext, accept, next)
		c.mark(next)
	}
	tcpudp6, t6 := c.newLabel(), c.newLabel()
	c.jumpIf(bpf.JumpEqual, protoTCP, tcpudp6, t6)
	c.mark(t6)
	c.jumpIf(bpf.JumpEqual, protoUDP, tcpudp6, eval)
	c.mark(tcpudp6)
	c.need(14+40+4, eval)
	c.emit(
		bpf.LoadAbsolute{Off: 14 + 40, Size: 2}, bpf.StoreScratch{Src: bpf.RegA, N: mSport},
		bpf.LoadAbsolute{Off: 14 + 42, Size: 2}, bpf.StoreScratch{Src: bpf.RegA, N: mDport},
		bpf.LoadConstant{Dst: bpf.RegA, Val: 1}, bpf.StoreScratch{Src: bpf.RegA, N: mPorts},
	)
	c.jump(eval)
}

// node compiles n to jump to t when it holds and to f when not.
func (c *compiler) node(n *node, t, f label) {
	switch n.op {
	case opOr:
		next := c.newLabel()
		c.node(n.a, t, next)
		c.mark(next)
		c.node(n.b, t, f)
	case opAnd:
		next := c.newLabel()
		c.node(n.a, next, f)
		c.mark(next)
		c.node(n.b, t, f)
	case opNot:
		c.node(n.a, f, t)
	case opProto:
		c.proto(n, t, f)
	case opPort:
		c.port(n, t, f)
	case opNet:
		c.net(n, t, f)
	}
}

func (c *compiler) proto(n *node, t, f label) {
	switch n.kind {
	case kindTransport:
		// A frame without IP keeps proto 0, never TCP or UDP.
		c.ifScratch(mProto, uint32(n.proto), t, f)
	case kindIPv4:
		c.ifScratch(mVersion, 4, t, f)
	case kindIPv6:
		c.ifScratch(mVersion, 6, t, f)
	case kindICMP:
		is4, not4, is6 := c.newLabel(), c.newLabel(), c.newLabel()
		c.ifScratch(mVersion, 4, is4, not4)
		c.mark(not4)
		c.jumpIf(bpf.JumpEqual, 6, is6, f)
		c.mark(is4)
		c.ifScratch(mProto, protoICMP, t, f)
		c.mark(is6)
		c.ifScratch(mProto, protoICMPv6, t, f)
	}
}

// either compiles test for the source (src true), the destination, or
// either of them, as d says.
func (c *compiler) either(d dir, test func(src bool, t, f label), t, f label) {
	switch d {
	case dirSrc:
		test(true, t, f)
	case dirDst:
		test(false, t, f)
	default:
		dst := c.newLabel()
		test(true, t, dst)
		c.mark(dst)
		test(false, t, f)
	}
}

func (c *compiler) port(n *node, t, f label) {
	ports := c.newLabel()
	c.ifScratch(mPorts, 1, ports, f)
	c.mark(ports)
	if n.proto != 0 {
		ok := c.newLabel()
		c.ifScratch(mProto, uint32(n.proto), ok, f)
		c.mark(ok)
	}
	c.either(n.dir, func(src bool, t, f label) {
		slot := mDport
		if src {
			slot = mSport
		}
		c.ifScratch(slot, uint32(n.port), t, f)
	}, t, f)
}

func (c *compiler) net(n *node, t, f label) {
	v := uint32(6)
	if n.prefix.Addr().Is4() {
		v = 4
	}
	ok := c.newLabel()
	c.ifScratch(mVersion, v, ok, f)
	c.mark(ok)
	c.either(n.dir, func(src bool, t, f label) { c.addr(n.prefix, src, t, f) }, t, f)
}

// addr compares the source or destination address with prefix word by
// word, the version being already checked.
func (c *compiler) addr(prefix netip.Prefix, src bool, t, f label) {
	b := prefix.Addr().AsSlice()
	slot := mDst6
	if src {
		slot = mSrc6
	}
	if len(b) == 4 {
		slot = mDst4
		if src {
			slot = mSrc4
		}
	}
	bits := prefix.Bits()
	for w := 0; w*32 < len(b)*8; w++ {
		n := min(max(bits-32*w, 0), 32)
		if n == 0 {
			break
		}
		mask := uint32(math.MaxUint32) << (32 - n)
		want := binary.BigEndian.Uint32(b[4*w:]) & mask
		next := c.newLabel()
		c.emit(bpf.LoadScratch{Dst: bpf.RegA, N: slot + w})
		if n < 32 {
			c.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask})
		}
		c.jumpIf(bpf.JumpEqual, want, next, f)
		c.mark(next)
	}
	c.jump(t)
}
