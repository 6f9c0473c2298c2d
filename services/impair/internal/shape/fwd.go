package shape

import (
	"fmt"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// addFwdRule appends `fwd to <ifindex>` to a netdev chain. google/nftables
// (v0.3.0) has no fwd expression, so this one rule is sent as its own
// nf_tables batch on mdlayher/netlink, the library google/nftables runs
// on; the immediate expression is still marshalled by google/nftables.
// The rule is what `nft add rule netdev T C fwd to DEV` sends
// (nft --debug=netlink: "[ immediate reg 1 IFINDEX ] [ fwd sreg_dev 1 ]").
func addFwdRule(ns netns.NsHandle, table, chain string, ifindex uint32) error {
	imm, err := expr.Marshal(unix.NFPROTO_NETDEV, &expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(ifindex)})
	if err != nil {
		return err
	}
	fwdData, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_FWD_SREG_DEV, Data: binaryutil.BigEndian.PutUint32(1)},
	})
	if err != nil {
		return err
	}
	fwd, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_EXPR_NAME, Data: []byte("fwd\x00")},
		{Type: unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, Data: fwdData},
	})
	if err != nil {
		return err
	}
	exprs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: imm},
		{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: fwd},
	})
	if err != nil {
		return err
	}
	rule, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(table + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(chain + "\x00")},
		{Type: unix.NLA_F_NESTED | unix.NFTA_RULE_EXPRESSIONS, Data: exprs},
	})
	if err != nil {
		return err
	}
	cfg := &netlink.Config{}
	if ns != netns.None() {
		cfg.NetNS = int(ns)
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	// nfgenmsg: family, version, resource id (big endian).
	batch := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES}
	msgs := []netlink.Message{
		{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request}, Data: batch},
		{
			Header: netlink.Header{
				Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWRULE),
				Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Append,
			},
			Data: append([]byte{unix.NFPROTO_NETDEV, unix.NFNETLINK_V0, 0, 0}, rule...),
		},
		{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request}, Data: batch},
	}
	if _, err := c.SendMessages(msgs); err != nil {
		return err
	}
	if _, err := c.Receive(); err != nil {
		return fmt.Errorf("add rule %s %s: %w", table, chain, err)
	}
	return nil
}
