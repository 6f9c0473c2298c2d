package cookie

import (
	"net/netip"
	"testing"
	"time"
)

func TestValid(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	m := NewWithKey([32]byte{1}, time.Minute, clock)
	other := NewWithKey([32]byte{2}, time.Minute, clock)
	a := netip.MustParseAddrPort("192.0.2.1:4000")
	c := m.Mint(nil, a)

	tests := []struct {
		name   string
		minter *Minter
		addr   string
		cookie []byte
		at     time.Duration // after minting
		want   bool
	}{
		{"same address", m, "192.0.2.1:4000", c, 0, true},
		{"mapped form of the address", m, "[::ffff:192.0.2.1]:4000", c, 0, true},
		{"near the end of life", m, "192.0.2.1:4000", c, time.Minute, true},
		{"expired", m, "192.0.2.1:4000", c, time.Minute + time.Second, false},
		{"from the future", m, "192.0.2.1:4000", c, -3 * time.Second, false},
		{"other port", m, "192.0.2.1:4001", c, 0, false},
		{"other host", m, "192.0.2.2:4000", c, 0, false},
		{"other key", other, "192.0.2.1:4000", c, 0, false},
		{"short", m, "192.0.2.1:4000", c[:10], 0, false},
		{"flipped bit", m, "192.0.2.1:4000", flip(c, 10), 0, false},
		{"moved issue time", m, "192.0.2.1:4000", flip(c, 3), 0, false},
	}
	for _, tt := range tests {
		now = time.Unix(1_700_000_000, 0).Add(tt.at)
		if got := tt.minter.Valid(netip.MustParseAddrPort(tt.addr), tt.cookie); got != tt.want {
			t.Errorf("%s: Valid = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func flip(c []byte, i int) []byte {
	d := append([]byte(nil), c...)
	d[i] ^= 1
	return d
}

func TestRandomKeys(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:1")
	m1, m2 := New(time.Minute), New(time.Minute)
	if c := m1.Mint(nil, a); !m1.Valid(a, c) || m2.Valid(a, c) {
		t.Fatal("a cookie must be valid for its own Minter only")
	}
}
