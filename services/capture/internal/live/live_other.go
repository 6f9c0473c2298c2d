//go:build !linux

package live

import (
	"context"
	"errors"

	"github.com/gopacket/gopacket"
)

// Handle is an open live capture; only Linux has one.
type Handle struct{}

// Open fails: live capture uses AF_PACKET sockets, which only Linux has.
func Open(ctx context.Context, o Options) (*Handle, error) {
	return nil, errors.New("live capture needs Linux (AF_PACKET sockets)")
}

// ReadPacket is never reached.
func (h *Handle) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	return nil, gopacket.CaptureInfo{}, errors.New("live capture needs Linux")
}

// Drops returns 0.
func (h *Handle) Drops() uint64 { return 0 }

// Close does nothing.
func (h *Handle) Close() error { return nil }
