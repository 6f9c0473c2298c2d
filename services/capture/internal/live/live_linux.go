//go:build linux

package live

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
	"go.uber.org/zap"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/socklab/socklab/services/capture/internal/filter"
)

// Handle is an open live capture. ReadPacket must be called from one
// goroutine; Close and Drops may be called from any.
type Handle struct {
	h *pcapgo.EthernetHandle
	// The socket receives from every interface between socket() and
	// bind(), and unfiltered until the socket filter is attached: skip is
	// how many packets it queued before that, which ReadPacket discards,
	// and ifindex catches another interface's packet should one remain.
	// Only ReadPacket uses them after Open.
	ifindex int
	skip    uint64

	mu      sync.Mutex
	closed  bool
	drops   uint64
	packets uint64
}

// Open waits for the interface (see WaitInterface), then opens it.
func Open(ctx context.Context, o Options) (*Handle, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if err := WaitInterface(ctx, o.Iface, o.Wait, o.Retry, o.Log, lookupInterface); err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(o.Iface)
	if err != nil {
		return nil, err
	}
	eh, err := pcapgo.NewEthernetHandle(o.Iface)
	if err != nil {
		return nil, permissionHint(err)
	}
	h := &Handle{h: eh, ifindex: ifi.Index}
	if err := h.setup(ifi, o); err != nil {
		eh.Close()
		return nil, err
	}
	return h, nil
}

func (h *Handle) setup(ifi *net.Interface, o Options) error {
	if err := h.h.SetCaptureLength(o.Snaplen); err != nil {
		return err
	}
	loopback := ifi.Flags&net.FlagLoopback != 0
	flt := o.Filter
	if o.UserFilterOnly {
		flt = nil
	}
	prog, err := kernelFilter(flt, loopback, uint32(o.Snaplen))
	if errors.Is(err, filter.ErrProgramTooLong) {
		o.Log.Warn("filter too long for the kernel: filtering in user space only", zap.String("filter", flt.String()))
		prog, err = kernelFilter(nil, loopback, uint32(o.Snaplen))
	}
	if err != nil {
		return err
	}
	if err := h.h.SetBPF(prog); err != nil {
		return fmt.Errorf("attach socket filter on %s: %w", o.Iface, err)
	}
	if o.Promisc && !loopback {
		if err := h.h.SetPromiscuous(true); err != nil {
			return permissionHint(fmt.Errorf("promiscuous mode on %s: %w", o.Iface, err))
		}
	}
	// The kernel's counters, which restart at each read, say how many
	// packets wait in the queue from before: all received, less dropped.
	st, err := h.h.Stats()
	if err != nil {
		return err
	}
	h.skip = queued(st.Packets, st.Drops)
	return nil
}

// queued returns how many packets the socket holds from the counters of
// PACKET_STATISTICS, whose received count includes the dropped ones.
func queued(packets, drops uint32) uint64 {
	if drops > packets {
		return 0
	}
	return uint64(packets - drops)
}

// kernelFilter builds the classic BPF program attached to the socket. It
// drops what flt rejects, cuts packets to snaplen in the kernel, and on a
// loopback interface drops the outgoing copy of each packet, which the
// socket would otherwise see a second time as it comes back in (libpcap
// does the same in user space).
func kernelFilter(flt *filter.Filter, loopback bool, snaplen uint32) ([]bpf.RawInstruction, error) {
	prog, err := flt.Program(snaplen, loopback)
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(prog)
}

func permissionHint(err error) error {
	if errors.Is(err, unix.EPERM) || strings.Contains(err.Error(), "operation not permitted") {
		return fmt.Errorf("%w (capturing needs CAP_NET_RAW: run as root with cap_add NET_RAW, or as root on the host)", err)
	}
	return err
}

// ReadPacket returns the next packet. data is valid until the next call.
func (h *Handle) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	for {
		data, ci, err := h.h.ZeroCopyReadPacketData()
		if err != nil {
			return data, ci, err
		}
		if h.skip > 0 {
			h.skip--
			continue
		}
		if ci.InterfaceIndex == h.ifindex {
			return data, ci, nil
		}
	}
}

// Drops returns how many packets the kernel dropped since Open because the
// socket's queue was full (PACKET_STATISTICS).
func (h *Handle) Drops() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.collect()
	return h.drops
}

// collect adds the kernel's counters, which reset on every read, to the
// totals. h.mu is held.
func (h *Handle) collect() {
	if h.closed {
		return
	}
	if st, err := h.h.Stats(); err == nil {
		h.drops += uint64(st.Drops)
		h.packets += uint64(st.Packets)
	}
}

// Close reads the counters a last time and closes the socket, which makes a
// blocked ReadPacket return an error. It is safe to call twice.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.collect()
	h.closed = true
	return h.h.Close()
}
