package netserve

import (
	"net"
	"net/netip"
	"sync"
)

// Source returns the key a per-source limit counts addr under: the IPv4
// address, or the /64 prefix of an IPv6 address (one host usually holds a
// whole /64, so counting single IPv6 addresses would limit nothing).
func Source(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is6() {
		p, err := addr.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return addr.WithZone("")
}

// sourceOfConn returns the per-source key of a connection's remote address;
// ok is false for addresses that are not IP (net.Pipe in tests).
func sourceOfConn(nc net.Conn) (netip.Addr, bool) {
	ta, ok := nc.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	return Source(a), true
}

// SourceQuota counts work per source address (see Source) against a limit
// per source and a limit in total, so that one source cannot take every
// slot: a server of UDP work that outlives a datagram (a stream, a claimed
// ID) asks it before starting the work and releases after. The zero value
// has no limits; set the fields before first use. It is safe for concurrent
// use.
type SourceQuota struct {
	// PerSource bounds the work of one source; 0 or less means no bound.
	PerSource int
	// Total bounds the work of all sources; 0 or less means no bound.
	Total int

	mu    sync.Mutex
	n     map[netip.Addr]int
	total int
}

// Quota refusals.
const (
	QuotaOK = iota
	// QuotaSource: the source already holds PerSource.
	QuotaSource
	// QuotaTotal: Total is held.
	QuotaTotal
)

// Acquire takes one unit for addr's source and returns QuotaOK, or, when
// a limit is reached, QuotaSource or QuotaTotal and takes nothing.
func (q *SourceQuota) Acquire(addr netip.Addr) int {
	key := Source(addr)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.PerSource > 0 && q.n[key] >= q.PerSource {
		return QuotaSource
	}
	if q.Total > 0 && q.total >= q.Total {
		return QuotaTotal
	}
	if q.n == nil {
		q.n = map[netip.Addr]int{}
	}
	q.n[key]++
	q.total++
	return QuotaOK
}

// Release gives back one unit taken for addr.
func (q *SourceQuota) Release(addr netip.Addr) {
	key := Source(addr)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n[key] <= 1 {
		// Deleting the key (rather than keeping a zero) lets a flood of
		// sources give its memory back once their work is done.
		delete(q.n, key)
	} else {
		q.n[key]--
	}
	q.total--
}

// Held reports the units held by addr's source and in total.
func (q *SourceQuota) Held(addr netip.Addr) (source, total int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n[Source(addr)], q.total
}
