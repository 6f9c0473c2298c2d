// Package cookie mints and checks the address-validation cookies of
// filestream over UDP, in the spirit of QUIC's Retry tokens: the server
// keeps no state; a cookie is the time of issue and an HMAC-SHA256 over the
// client's address and that time, so only a client that received the
// server's RETRY at that address can present it.
package cookie

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
)

// Layout: issued (u32, Unix seconds) followed by the first 16 bytes of the
// MAC.
const macLen = proto.CookieLen - 4

// skew is how far in the future an issue time may lie (a clock step).
const skew = 2 * time.Second

// Minter mints and checks cookies. It is safe for concurrent use.
type Minter struct {
	key [32]byte
	ttl time.Duration
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

// New returns a Minter with a random key whose cookies are valid for ttl.
func New(ttl time.Duration) *Minter {
	m := &Minter{ttl: ttl}
	rand.Read(m.key[:])
	return m
}

// NewWithKey returns a Minter with the given key, for tests.
func NewWithKey(key [32]byte, ttl time.Duration, now func() time.Time) *Minter {
	return &Minter{key: key, ttl: ttl, Now: now}
}

func (m *Minter) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Mint appends a cookie for addr to dst.
func (m *Minter) Mint(dst []byte, addr netip.AddrPort) []byte {
	issued := uint32(m.now().Unix())
	dst = binary.BigEndian.AppendUint32(dst, issued)
	return append(dst, m.mac(addr, issued)...)
}

// Valid reports whether c is a cookie this Minter issued for addr within
// its lifetime.
func (m *Minter) Valid(addr netip.AddrPort, c []byte) bool {
	if len(c) != proto.CookieLen {
		return false
	}
	issued := binary.BigEndian.Uint32(c)
	at := time.Unix(int64(issued), 0)
	now := m.now()
	if at.After(now.Add(skew)) || now.Sub(at) > m.ttl {
		return false
	}
	return hmac.Equal(c[4:], m.mac(addr, issued))
}

func (m *Minter) mac(addr netip.AddrPort, issued uint32) []byte {
	var msg [16 + 2 + 4]byte
	a16 := addr.Addr().Unmap().As16()
	copy(msg[:], a16[:])
	binary.BigEndian.PutUint16(msg[16:], addr.Port())
	binary.BigEndian.PutUint32(msg[18:], issued)
	h := hmac.New(sha256.New, m.key[:])
	h.Write([]byte("filestream cookie v1"))
	h.Write(msg[:])
	return h.Sum(nil)[:macLen]
}
