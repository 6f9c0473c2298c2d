package server

import (
	"net/netip"
	"sync"
	"time"

	"github.com/socklab/socklab/services/kit/netserve"
)

// Amplification is how many times the bytes a UDP source sent it may
// receive, beyond its credit: QUIC's rule for an unvalidated address (RFC
// 9000 §8.1). autoreply's UDP side has no address validation (a reply per
// datagram is the protocol), so the rule is all that stops a forged source
// address from turning the server into an amplifier.
const Amplification = 3

// maxAccounts bounds the sources with an account. Forged addresses are
// free, so their number must not grow the server's memory: at the bound,
// accounts at full credit (the same as none) are dropped, and a source
// that still finds no room gets only 3 times what it sent, no credit.
const maxAccounts = 1 << 16

// budget keeps, per source address (netserve.Source), a byte balance: each
// datagram adds Amplification times its length, each reply takes its
// length, and the balance refills at Rate bytes/s up to Credit, which is
// also where a new source starts. A reply the balance cannot pay is not
// sent. A person typing lines into nc -u spends a little of the credit per
// line and never runs out; a flood of tiny datagrams gets 3 times its bytes
// back, plus Rate.
type budget struct {
	credit, rate float64

	mu       sync.Mutex
	accounts map[netip.Addr]*account
}

type account struct {
	balance float64
	at      time.Time
}

func newBudget(credit, rate int) *budget {
	return &budget{credit: float64(credit), rate: float64(rate), accounts: map[netip.Addr]*account{}}
}

// allow records a datagram of in bytes from from at now and reports whether
// a reply of out bytes may be sent for it; if so it is paid for.
func (b *budget) allow(from netip.Addr, now time.Time, in, out int) bool {
	key := netserve.Source(from)
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.accounts[key]
	if a == nil {
		if len(b.accounts) >= maxAccounts {
			b.prune(now)
		}
		start := b.credit
		if len(b.accounts) >= maxAccounts {
			start = 0 // no room to remember a credit given
		} else {
			a = &account{}
			b.accounts[key] = a
		}
		if a == nil {
			return Amplification*float64(in)+start >= float64(out)
		}
		a.balance, a.at = start, now
	} else if a.balance < b.credit {
		a.balance = min(b.credit, a.balance+b.rate*now.Sub(a.at).Seconds())
	}
	a.at = now
	a.balance += Amplification * float64(in)
	if a.balance < float64(out) {
		return false
	}
	a.balance -= float64(out)
	return true
}

// prune drops the accounts that have refilled to the full credit by now:
// a new account starts there, so forgetting them changes nothing.
func (b *budget) prune(now time.Time) {
	for k, a := range b.accounts {
		if a.balance+b.rate*now.Sub(a.at).Seconds() >= b.credit {
			delete(b.accounts, k)
		}
	}
}

// size reports the accounts held.
func (b *budget) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.accounts)
}
