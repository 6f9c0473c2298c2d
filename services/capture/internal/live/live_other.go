//go:build !linux

package live

import (
	"context"
	"errors"

	"github.com/gopacket/gopacket"
)

// MinRingBytes is the smallest ring Open accepts.
const MinRingBytes = 1 << 20

// ErrClosed is returned by ReadPackets after Close.
var ErrClosed = errors.New("capture handle closed")

// Handle is an open live capture; only Linux has one.
type Handle struct{}

// Stats are the kernel's counters of a Handle since Open.
type Stats struct {
	Received, Drops, QueueFreezes uint64
}

// Open fails: live capture uses AF_PACKET sockets, which only Linux has.
func Open(ctx context.Context, o Options) (*Handle, error) {
	return nil, errors.New("live capture needs Linux (AF_PACKET sockets)")
}

// ReadPackets is never reached.
func (h *Handle) ReadPackets(fn func(data []byte, ci gopacket.CaptureInfo) error) error {
	return errors.New("live capture needs Linux")
}

// Stop does nothing.
func (h *Handle) Stop() {}

// Drops returns 0.
func (h *Handle) Drops() uint64 { return 0 }

// Stats returns zeros.
func (h *Handle) Stats() Stats { return Stats{} }

// Close does nothing.
func (h *Handle) Close() error { return nil }
