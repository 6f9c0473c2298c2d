// Package shape impairs one network interface of a network namespace, in
// both directions: random loss (nftables numgen), a rate limit (tbf) and a
// delay with jitter (netem, where the kernel has it).
//
// Every packet of the interface passes through an IFB device per direction:
//
//	incoming: DEV ingress --nft fwd--> slimp-in  [nft egress: numgen drop] [qdisc: tbf, netem] --> back into DEV's receive path
//	outgoing: DEV egress  --nft fwd--> slimp-out [nft egress: numgen drop] [qdisc: tbf, netem] --> out of DEV
//
// Why this shape: a packet dropped on the sending host's own output path
// (an ip/inet output or postrouting hook, or DEV's netdev egress hook, or a
// tc action there) is reported back to the sender: sendto fails (EPERM,
// or ENOBUFS with IP_RECVERR), and TCP learns at once that the segment did
// not leave, so it never retransmits on the wire. That is an error, not
// loss. Forwarding with nft fwd hands the packet to the IFB and reports
// success to the sender (NF_STOLEN); the drop happens on the IFB, after
// the sender was told the packet left, as on a real wire. nft fwd rather
// than tc mirred because the kernel skips the netfilter egress hook for
// packets tc redirects (nf_skip_egress), so a tc redirect would leave no
// place to drop them silently. The IFB re-injects packets marked so that
// neither tc nor netfilter sees them twice.
//
// The interface itself is never changed: its qdisc stays as it was, and
// clearing (deleting the nftables table and the two IFBs) restores the
// namespace exactly. Everything lives in the namespace, so it goes away
// with it.
package shape

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Names of what Apply creates in the namespace.
const (
	Table  = "slimp"     // the nftables netdev table
	IFBIn  = "slimp-in"  // carries the incoming direction
	IFBOut = "slimp-out" // carries the outgoing direction; its alias holds the State
)

// lossModulus gives loss a resolution of 0.01%.
const lossModulus = 10000

// ErrNoNetem says the kernel cannot delay packets.
var ErrNoNetem = errors.New("delay and jitter need the netem qdisc (sch_netem, CONFIG_NET_SCH_NETEM), which this kernel does not have")

// ErrNoIFB says the kernel cannot make IFB devices.
var ErrNoIFB = errors.New("the kernel has no IFB devices (CONFIG_IFB): load the module on the host with `modprobe ifb`")

// State is an impairment in force and when it was applied.
type State struct {
	Settings
	Since time.Time
}

// stateJSON is State as stored in the IFB's alias (at most 255 bytes).
type stateJSON struct {
	Loss   float64 `json:"loss"`
	Rate   uint64  `json:"rate,omitempty"`
	Delay  int64   `json:"delay,omitempty"`
	Jitter int64   `json:"jitter,omitempty"`
	Since  string  `json:"since"`
}

// Link impairs one interface of one network namespace.
type Link struct {
	// Dev is the interface, "eth0" in a container.
	Dev string

	ns  netns.NsHandle
	nl  *netlink.Handle
	nft *nftables.Conn
}

// Open returns a Link for the interface dev in the namespace ns (an open
// namespace file; netns.None() for the caller's own).
func Open(ns netns.NsHandle, dev string) (*Link, error) {
	var (
		h   *netlink.Handle
		c   *nftables.Conn
		err error
	)
	if ns == netns.None() {
		h, err = netlink.NewHandle()
		if err == nil {
			c, err = nftables.New()
		}
	} else {
		h, err = netlink.NewHandleAt(ns)
		if err == nil {
			c, err = nftables.New(nftables.WithNetNSFd(int(ns)))
		}
	}
	if err != nil {
		if h != nil {
			h.Close()
		}
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Link{Dev: dev, ns: ns, nl: h, nft: c}, nil
}

// Close releases the netlink sockets. What Apply did stays in force.
func (l *Link) Close() error {
	l.nl.Close()
	return l.nft.CloseLasting()
}

// Apply replaces whatever impairment the interface has with s. On any
// error it leaves the interface unimpaired. A zero s clears.
func (l *Link) Apply(s Settings, since time.Time) (err error) {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := l.Clear(); err != nil {
		return err
	}
	if s.Zero() {
		return nil
	}
	defer func() {
		if err != nil {
			if cerr := l.Clear(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", cerr))
			}
		}
	}()
	dev, err := l.nl.LinkByName(l.Dev)
	if err != nil {
		return fmt.Errorf("interface %s: %w", l.Dev, err)
	}
	ifbs := map[string]int{}
	for _, name := range []string{IFBIn, IFBOut} {
		// The IFB's own queue holds a burst of the interface's packets.
		attrs := netlink.LinkAttrs{Name: name, TxQLen: 1000, MTU: dev.Attrs().MTU}
		if err := l.nl.LinkAdd(&netlink.Ifb{LinkAttrs: attrs}); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("%w (%v)", ErrNoIFB, err)
			}
			return fmt.Errorf("create %s: %w", name, err)
		}
		link, err := l.nl.LinkByName(name)
		if err != nil {
			return err
		}
		if err := l.nl.LinkSetUp(link); err != nil {
			return fmt.Errorf("%s up: %w", name, err)
		}
		if err := l.qdiscs(link.Attrs().Index, s); err != nil {
			return err
		}
		ifbs[name] = link.Attrs().Index
	}
	if err := l.rules(s); err != nil {
		return err
	}
	// The fwd rules come last: until they exist, traffic bypasses the IFBs.
	for _, fw := range []struct {
		chain string
		to    int
	}{{"in", ifbs[IFBIn]}, {"out", ifbs[IFBOut]}} {
		if err := addFwdRule(l.ns, Table, fw.chain, uint32(fw.to)); err != nil {
			return fmt.Errorf("nftables fwd to the IFB: %w", err)
		}
	}
	alias, err := json.Marshal(stateJSON{
		Loss: s.LossPercent, Rate: s.Rate, Delay: int64(s.Delay), Jitter: int64(s.Jitter),
		Since: since.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	out, err := l.nl.LinkByName(IFBOut)
	if err != nil {
		return err
	}
	return l.nl.LinkSetAlias(out, string(alias))
}

// qdiscs puts the rate limit and the delay on one IFB: tbf at the root,
// netem under it (or at the root when there is no rate).
func (l *Link) qdiscs(index int, s Settings) error {
	parent := uint32(netlink.HANDLE_ROOT)
	if s.Rate > 0 {
		bytesPerSec := s.Rate / 8
		// A burst of 10 ms of traffic, at least ten full frames (tbf
		// cannot pass a packet larger than its burst), and behind it a
		// queue of 200 ms of traffic, at least two 64 KiB GSO packets:
		// TCP hands the veth its segments in bursts that large. At 2mbit
		// with the lab's load running, a 100 ms queue dropped 649 packets
		// over three 1 MB files and TCP resent 1276 segments; this one
		// dropped 314 and TCP resent 449.
		burst := max(bytesPerSec/100, 10*1514)
		queue := max(bytesPerSec/5, 2*65536)
		tbf := &netlink.Tbf{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			Rate:       bytesPerSec,
			Buffer:     netlink.Xmittime(bytesPerSec, uint32(burst)),
			Limit:      uint32(burst + queue),
		}
		if err := l.nl.QdiscAdd(tbf); err != nil {
			return fmt.Errorf("tbf rate %s: %w", FormatRate(s.Rate), err)
		}
		parent = netlink.MakeHandle(1, 1)
	}
	if s.Delay > 0 {
		netem := netlink.NewNetem(
			netlink.QdiscAttrs{LinkIndex: index, Handle: netlink.MakeHandle(2, 0), Parent: parent},
			netlink.NetemQdiscAttrs{
				Latency: uint32(s.Delay.Microseconds()),
				Jitter:  uint32(s.Jitter.Microseconds()),
				Limit:   10000,
			})
		if err := l.nl.QdiscAdd(netem); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("%w (%v)", ErrNoNetem, err)
			}
			return fmt.Errorf("netem delay %v jitter %v: %w", s.Delay, s.Jitter, err)
		}
	}
	return nil
}

// rules adds the table, the two chains on the interface that fwd rules
// will fill, and the loss chains on the IFBs.
func (l *Link) rules(s Settings) error {
	t := l.nft.AddTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: Table})
	chain := func(name string, hook *nftables.ChainHook, dev string) *nftables.Chain {
		return l.nft.AddChain(&nftables.Chain{
			Name: name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityFilter, Device: dev,
		})
	}
	chain("in", nftables.ChainHookIngress, l.Dev)
	chain("out", nftables.ChainHookEgress, l.Dev)
	if s.LossPercent > 0 {
		threshold := uint32(s.LossPercent*lossModulus/100 + 0.5)
		for _, dev := range []string{IFBIn, IFBOut} {
			c := chain(dev+"-loss", nftables.ChainHookEgress, dev)
			// meta protocol arp accept: loss is for the packets of the
			// lab's protocols. A lost ARP exchange would hold back every
			// packet to that neighbour for a second or more, or, at 100%,
			// keep them from ever leaving the sender, so that a capture on
			// the bridge shows nothing of what the client tried.
			l.nft.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(unix.ETH_P_ARP)},
				&expr.Verdict{Kind: expr.VerdictAccept},
			}})
			// numgen random mod 10000 < threshold counter drop
			l.nft.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: []expr.Any{
				&expr.Numgen{Register: 1, Modulus: lossModulus, Type: unix.NFT_NG_RANDOM},
				&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
				&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binaryutil.BigEndian.PutUint32(threshold)},
				&expr.Counter{},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
		}
	}
	if err := l.nft.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", Table, err)
	}
	return nil
}

// Clear removes every impairment from the namespace: the table and the
// IFBs (their qdiscs go with them). Clearing a clear link does nothing.
func (l *Link) Clear() error {
	tables, err := l.nft.ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, t := range tables {
		if t.Name == Table {
			l.nft.DelTable(t)
			if err := l.nft.Flush(); err != nil {
				return fmt.Errorf("delete table %s: %w", Table, err)
			}
		}
	}
	for _, name := range []string{IFBIn, IFBOut} {
		link, err := l.nl.LinkByName(name)
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			continue
		}
		if err != nil {
			return err
		}
		if err := l.nl.LinkDel(link); err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	return nil
}

// Current returns the impairment in force, and false when there is none.
func (l *Link) Current() (State, bool, error) {
	link, err := l.nl.LinkByName(IFBOut)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, err
	}
	var j stateJSON
	if err := json.Unmarshal([]byte(link.Attrs().Alias), &j); err != nil {
		return State{}, false, fmt.Errorf("%s alias %q: %w", IFBOut, link.Attrs().Alias, err)
	}
	since, err := time.Parse(time.RFC3339, j.Since)
	if err != nil {
		return State{}, false, fmt.Errorf("%s alias: %w", IFBOut, err)
	}
	return State{
		Settings: Settings{LossPercent: j.Loss, Rate: j.Rate, Delay: time.Duration(j.Delay), Jitter: time.Duration(j.Jitter)},
		Since:    since,
	}, true, nil
}
