//go:build linux

package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket"
	"go.uber.org/zap"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/socklab/socklab/services/capture/internal/filter"
)

// Ring geometry. The kernel hands the ring to user space a block at a time:
// a block is one batch of packets, released back in one store.
const (
	// maxBlockSize is the block size of rings of 8 blocks and more: few
	// wake-ups under load, and a block is still one contiguous allocation
	// the kernel can usually make (order 8 pages).
	maxBlockSize = 1 << 20
	// minBlocks is the fewest blocks a ring has: while user space empties
	// one, the kernel fills the others.
	minBlocks = 8
	// frameSize only sets how the kernel counts frames in a TPACKET_V3
	// ring (packets take what they need in a block); it must be a multiple
	// of 16 that holds a packet header.
	frameSize = 2048
	// retireTimeout is how long the kernel leaves a partly filled block
	// to fill before handing it over: the most a packet waits on a quiet
	// interface.
	retireTimeout = 50 * time.Millisecond
	// drainWait is how long Stop waits for the kernel to time out the
	// block it is filling: its timer may need two periods.
	drainWait = 3 * retireTimeout
)

// MinRingBytes is the smallest ring Open accepts.
const MinRingBytes = 1 << 20

// ErrClosed is returned by ReadPackets after Close.
var ErrClosed = errors.New("capture handle closed")

// Handle is an open live capture: an AF_PACKET socket with a TPACKET_V3
// ring. ReadPackets must be called from one goroutine; Close, Drops and
// Stats may be called from any.
type Handle struct {
	fd   int
	wake int // eventfd: Stop and Close write it to end a ReadPackets blocked in poll
	ring []byte
	// blockSize and blocks describe ring; next is the block ReadPackets
	// looks at next. Only ReadPackets uses next.
	blockSize, blocks, next int
	ifindex                 int
	drained                 bool // ReadPackets drained the ring after Stop

	closing  atomic.Bool
	stopping atomic.Bool // Stop was called: drain, then io.EOF
	// readMu is held by ReadPackets for its whole call, so that Close
	// unmaps the ring only when no packet of it is being handed out.
	readMu sync.Mutex

	mu       sync.Mutex // guards the counters, closed and the socket's stats
	closed   bool
	received uint64 // passed the socket filter: queued in the ring, or dropped
	drops    uint64 // dropped because the ring was full
	freezes  uint64
}

// Stats are the kernel's counters of a Handle since Open.
type Stats struct {
	// Received counts the packets that passed the socket filter, those
	// dropped included: what the kernel tried to put in the ring.
	Received uint64
	// Drops counts the packets the kernel dropped because the ring had no
	// free block.
	Drops uint64
	// QueueFreezes counts how often the ring was full.
	QueueFreezes uint64
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
	blockSize, blocks, err := geometry(o.RingBytes)
	if err != nil {
		return nil, err
	}
	// Protocol 0: the socket receives nothing until bind, which comes
	// after the filter and the ring, so no packet reaches the ring
	// unfiltered or from another interface.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, permissionHint(fmt.Errorf("couldn't open packet socket: %w", err))
	}
	h := &Handle{fd: fd, wake: -1, blockSize: blockSize, blocks: blocks, ifindex: ifi.Index}
	if err := h.setup(ifi, o); err != nil {
		h.release()
		return nil, err
	}
	return h, nil
}

// geometry splits a ring of ringBytes into blocks: maxBlockSize each, or
// smaller ones (a power of two) so that there are at least minBlocks.
func geometry(ringBytes int) (blockSize, blocks int, err error) {
	if ringBytes < MinRingBytes {
		return 0, 0, fmt.Errorf("ring of %d bytes: want at least %d", ringBytes, MinRingBytes)
	}
	blockSize = maxBlockSize
	for blockSize > unix.Getpagesize() && ringBytes/blockSize < minBlocks {
		blockSize /= 2
	}
	return blockSize, ringBytes / blockSize, nil
}

func (h *Handle) setup(ifi *net.Interface, o Options) error {
	if err := unix.SetsockoptInt(h.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("TPACKET_V3 on the packet socket: %w", err)
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
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(h.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach socket filter on %s: %w", o.Iface, err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(h.blockSize),
		Block_nr:       uint32(h.blocks),
		Frame_size:     frameSize,
		Frame_nr:       uint32(h.blockSize / frameSize * h.blocks),
		Retire_blk_tov: uint32(retireTimeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(h.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("ring of %d blocks of %d bytes: %w", h.blocks, h.blockSize, err)
	}
	h.ring, err = unix.Mmap(h.fd, 0, h.blockSize*h.blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("map the ring (%d bytes): %w", h.blockSize*h.blocks, err)
	}
	if h.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	sll := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
	if err := unix.Bind(h.fd, &sll); err != nil {
		return fmt.Errorf("bind to %s: %w", o.Iface, err)
	}
	if o.Promisc && !loopback {
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(h.fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return permissionHint(fmt.Errorf("promiscuous mode on %s: %w", o.Iface, err))
		}
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

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

// The block header (struct tpacket_block_desc with tpacket_hdr_v1) and
// packet header (struct tpacket3_hdr) of the ring, as x/sys/unix lays
// them out.
type blockHeader struct {
	version uint32
	toPriv  uint32
	hdr     unix.TpacketHdrV1
}

// ReadPackets waits for the next block of packets in the ring, calls fn
// with each of them in order, and gives the block back to the kernel. data
// is valid only during fn. When fn returns an error, the rest of the block
// is skipped and ReadPackets returns the error. After Stop it hands over
// what the kernel still holds, then returns io.EOF; after Close it returns
// ErrClosed. fn must not call Close, which waits for ReadPackets to return.
func (h *Handle) ReadPackets(fn func(data []byte, ci gopacket.CaptureInfo) error) error {
	h.readMu.Lock()
	defer h.readMu.Unlock()
	for {
		switch {
		case h.closing.Load():
			return ErrClosed
		case h.drained:
			return io.EOF
		case h.stopping.Load():
			h.drained = true
			if err := h.drain(fn); err != nil {
				return err
			}
			return io.EOF
		}
		if ok, err := h.take(fn); ok {
			return err
		}
		if err := h.poll(); err != nil {
			return err
		}
	}
}

// take hands the next block to fn if the kernel has handed it over, and
// gives it back. readMu is held.
func (h *Handle) take(fn func([]byte, gopacket.CaptureInfo) error) (ok bool, err error) {
	block := h.ring[h.next*h.blockSize : (h.next+1)*h.blockSize]
	bh := (*blockHeader)(unsafe.Pointer(&block[0]))
	if atomic.LoadUint32(&bh.hdr.Block_status)&unix.TP_STATUS_USER == 0 {
		return false, nil
	}
	err = h.walk(block, bh, fn)
	// The store hands the block back; the kernel reads the status with
	// its own barrier.
	atomic.StoreUint32(&bh.hdr.Block_status, unix.TP_STATUS_KERNEL)
	h.next = (h.next + 1) % h.blocks
	return true, err
}

// drain hands fn the blocks the kernel holds, waiting drainWait for the
// block being filled when Stop came to time out: a stop loses nothing the
// interface received before it. Under a flood it ends all the same: after
// drainWait it takes at most one ring's worth of blocks more. readMu is
// held.
func (h *Handle) drain(fn func([]byte, gopacket.CaptureInfo) error) error {
	deadline := time.Now().Add(drainWait)
	for left := time.Until(deadline); left > 0 && !h.closing.Load(); left = time.Until(deadline) {
		ok, err := h.take(fn)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		fds := []unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll: %w", err)
		}
	}
	for range h.blocks {
		if ok, err := h.take(fn); !ok || err != nil {
			return err
		}
	}
	return nil
}

// walk calls fn with each packet of a block the kernel handed over.
func (h *Handle) walk(block []byte, bh *blockHeader, fn func([]byte, gopacket.CaptureInfo) error) error {
	off := int(bh.hdr.Offset_to_first_pkt)
	for range bh.hdr.Num_pkts {
		if off <= 0 || off+unix.SizeofTpacket3Hdr > len(block) {
			return fmt.Errorf("ring block: packet header at %d of %d bytes", off, len(block))
		}
		ph := (*unix.Tpacket3Hdr)(unsafe.Pointer(&block[off]))
		start := off + int(ph.Mac)
		end := start + int(ph.Snaplen)
		if end > len(block) {
			return fmt.Errorf("ring block: packet of %d bytes at %d of %d", ph.Snaplen, start, len(block))
		}
		ci := gopacket.CaptureInfo{
			Timestamp:      time.Unix(int64(ph.Sec), int64(ph.Nsec)),
			CaptureLength:  int(ph.Snaplen),
			Length:         int(ph.Len),
			InterfaceIndex: h.ifindex,
		}
		if err := fn(block[start:end:end], ci); err != nil {
			return err
		}
		if ph.Next_offset == 0 {
			break
		}
		off += int(ph.Next_offset)
	}
	return nil
}

// poll waits until the kernel hands over a block or Close is called.
func (h *Handle) poll() error {
	fds := []unix.PollFd{
		{Fd: int32(h.fd), Events: unix.POLLIN | unix.POLLERR},
		{Fd: int32(h.wake), Events: unix.POLLIN},
	}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if fds[1].Revents != 0 {
			return nil // Stop or Close: the caller looks which
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			// A socket error (the interface went away): read it.
			if serr, err := unix.GetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && serr != 0 {
				return fmt.Errorf("packet socket: %w", unix.Errno(serr))
			}
			if fds[0].Revents&unix.POLLNVAL != 0 {
				return ErrClosed
			}
		}
		return nil
	}
}

// Stop makes ReadPackets hand over what the kernel still holds, waiting a
// moment for the block being filled, and then return io.EOF, now and on
// every later call. It does not release anything: Close does. It may be
// called from any goroutine, and twice.
func (h *Handle) Stop() {
	if !h.stopping.Swap(true) {
		h.wakeReader()
	}
}

func (h *Handle) wakeReader() {
	one := [8]byte{1}
	unix.Write(h.wake, one[:])
}

// Drops returns how many packets the kernel dropped since Open because the
// ring was full.
func (h *Handle) Drops() uint64 { return h.Stats().Drops }

// Stats returns the kernel's counters since Open (PACKET_STATISTICS).
func (h *Handle) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.collect()
	return Stats{Received: h.received, Drops: h.drops, QueueFreezes: h.freezes}
}

// collect adds the kernel's counters, which reset on every read, to the
// totals. h.mu is held.
func (h *Handle) collect() {
	if h.closed {
		return
	}
	// tp_packets counts the dropped packets too.
	if st, err := unix.GetsockoptTpacketStatsV3(h.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		h.received += uint64(st.Packets)
		h.drops += uint64(st.Drops)
		h.freezes += uint64(st.Freeze_q_cnt)
	}
}

// Close ends a ReadPackets blocked in poll, waits for a running one to
// return, reads the counters a last time, and releases the socket and the
// ring. It is safe to call twice and from any goroutine.
func (h *Handle) Close() error {
	if h.closing.Swap(true) {
		h.readMu.Lock() // a first Close may still be releasing
		h.readMu.Unlock()
		return nil
	}
	h.wakeReader()
	h.readMu.Lock()
	defer h.readMu.Unlock()
	return h.release()
}

// release reads the counters a last time, then unmaps the ring and closes
// the descriptors. readMu is held, or the Handle was never shared.
func (h *Handle) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.collect()
	h.closed = true
	var err error
	if h.ring != nil {
		err = unix.Munmap(h.ring)
		h.ring = nil
	}
	if h.wake >= 0 {
		unix.Close(h.wake)
		h.wake = -1
	}
	if cerr := unix.Close(h.fd); err == nil {
		err = cerr
	}
	return err
}
