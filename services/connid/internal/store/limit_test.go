package store

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/socklab/socklab/services/connid/internal/clock"

	"github.com/socklab/socklab/services/kit/nettest"
)

func TestLimit(t *testing.T) {
	clk := clock.NewFake(t0)
	s, err := New(clk, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.Limit(5, 3)
	runWriter(t, s)
	a := netip.MustParseAddrPort("192.0.2.1:1000")
	a2 := netip.MustParseAddrPort("192.0.2.1:2000") // the same address
	b := netip.MustParseAddrPort("[2001:db8::1]:1000")
	b2 := netip.MustParseAddrPort("[2001:db8::ffff]:1000") // the same /64
	c := netip.MustParseAddrPort("198.51.100.3:1000")
	steps := []struct {
		from netip.AddrPort
		want error
	}{
		{a, nil}, {a2, nil}, {a, nil},
		{a2, ErrSourceFull},
		{b, nil}, {b2, nil},
		{c, ErrFull},
	}
	for i, st := range steps {
		ok, err := s.claim(fmt.Sprint("id", i), st.from, clk.Now())
		if !errors.Is(err, st.want) || ok != (st.want == nil) {
			t.Errorf("claim %d from %v = %v, %v; want %v", i, st.from, ok, err, st.want)
		}
	}
	// An ID in use is still answered RESET, not full.
	if ok, err := s.claim("id0", c, clk.Now()); ok || err != nil {
		t.Errorf("claim of an ID in use = %v, %v; want false, nil (RESET)", ok, err)
	}

	clk.Advance(30 * time.Second)
	if ok, err := s.claim("fresh", c, clk.Now()); !ok || err != nil {
		t.Errorf("claim after the TTL = %v, %v; want OK", ok, err)
	}
	nettest.Until(t, "the sweeper to remove the expired IDs", func() bool { return s.Len() <= 1 })
	s.wmu.Lock()
	held := len(s.held)
	s.wmu.Unlock()
	if s.Len() != 1 || held != 1 {
		t.Errorf("after the TTL: %d IDs, %d sources counted; want 1 and 1", s.Len(), held)
	}
}
