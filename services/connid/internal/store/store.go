// Package store keeps the connection IDs in use in a go-memdb table. One
// goroutine, Run, owns every write. It commits claims in batches, one write
// transaction for all the claims waiting (group commit), so a burst of
// handshakes does not cost a transaction each. It also removes IDs as they
// expire: it sleeps until the earliest expiry time in the table's expiry
// index, so IDs leave the table on time even when no request arrives.
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/kit/netserve"
)

const (
	// maxBatch bounds the claims of one write transaction.
	maxBatch = 256
	// queueLen bounds the claims waiting for the writer. Submit blocks
	// beyond it, which slows the reader down to the writer's pace.
	queueLen = 1024
	// sweepBatch bounds the deletions of one write transaction, so a mass
	// expiry does not hold up claims for long.
	sweepBatch = 1024
	// sweepGap is the least time between two sweeps. Under steady load IDs
	// expire microseconds apart; waking for each would cost a timer and a
	// write transaction per ID. Removal may lag expiry by up to sweepGap;
	// claims do not, since a claim treats an expired record as absent.
	sweepGap = 10 * time.Millisecond
)

// ErrStopped is returned for claims made after Run has returned.
var ErrStopped = errors.New("store: stopped")

// Claims refused for want of room (see Store.Limit): the ID is free, but
// the table holds its limit of IDs, or the claiming address its share.
var (
	ErrFull       = errors.New("store: table full")
	ErrSourceFull = errors.New("store: address holds its share of the table")
)

// A Request asks for ID on behalf of From at At.
type Request struct {
	ID   string
	From netip.AddrPort
	At   time.Time
	// Done receives the outcome.
	Done Done
}

// Done receives the outcome of a Request, once, on the writer goroutine,
// after the claim is committed: ok when the ID was granted, err when the
// store failed. ClaimDone must not block.
type Done interface {
	ClaimDone(r *Request, ok bool, err error)
}

// Store is the set of connection IDs in use. Its methods are safe for
// concurrent use; claims are decided while Run runs.
type Store struct {
	db    *memdb.MemDB
	clock clock.Clock
	ttl   int64 // nanoseconds

	live    atomic.Int64
	expired atomic.Uint64
	claims  atomic.Uint64 // decided
	commits atomic.Uint64 // write transactions of claims
	queue   chan Request
	stopped chan struct{}

	// wmu is held for every write transaction: the writer's, and a claim
	// decided at once by TryClaim on its caller's goroutine. memdb admits
	// one write transaction at a time anyway; wmu lets TryClaim see that
	// one is under way and queue its claim instead of waiting.
	wmu sync.Mutex
	// armed mirrors the writer's next sweep time (math.MaxInt64: none).
	// A claim decided by TryClaim that expires before it kicks the writer
	// to set its timer again.
	armed atomic.Int64
	kick  chan struct{}

	// Limits of the table (see Limit), and the IDs each source holds;
	// held is written under wmu, like the table.
	maxIDs, maxPerSource int
	held                 map[netip.Addr]int
	// peak is the most IDs held since the memory was last given back.
	peak atomic.Int64

	// The writer's scratch.
	batch   []Request
	results []result
	dead    []*Record
}

type result struct {
	ok  bool
	err error
}

// New returns an empty store whose IDs expire ttl after their claim, timed
// by c.
func New(c clock.Clock, ttl time.Duration) (*Store, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("store: ttl %v is not positive", ttl)
	}
	primary, err := memdb.NewMemDB(Schema())
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// The table lives in a snapshot of the new database: a MemDB like any
	// other (write transactions, snapshots for readers, the same schema),
	// but one that does not track mutations for watch sets. A primary
	// MemDB records, on every insert, the notify channel of each radix node
	// it copies, in a map per transaction, and closes them all at commit;
	// nobody here watches, and that bookkeeping cost 4 allocations and
	// about 4% of the bytes of a claim.
	db := primary.Snapshot()
	s := &Store{
		db:      db,
		clock:   c,
		ttl:     int64(ttl),
		queue:   make(chan Request, queueLen),
		stopped: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		batch:   make([]Request, 0, maxBatch),
		results: make([]result, maxBatch),
		dead:    make([]*Record, 0, sweepBatch),
		held:    map[netip.Addr]int{},
	}
	s.armed.Store(math.MaxInt64)
	return s, nil
}

// Limit bounds the IDs in use to total, and those claimed from one source
// address (an IPv4 address or IPv6 /64, netserve.Source) to perSource; 0
// means no bound. A claim beyond them fails with ErrFull or ErrSourceFull.
// Call it before Run.
func (s *Store) Limit(total, perSource int) {
	s.maxIDs, s.maxPerSource = total, perSource
}

// TTL returns how long a claimed ID stays in use.
func (s *Store) TTL() time.Duration { return time.Duration(s.ttl) }

// InUse reports whether id is held, unexpired, at now. It reads a snapshot
// and never waits for the writer: an ID in use stays in use until it
// expires, so "true" is final, and a RESET needs no write. "false" must be
// confirmed by a claim.
func (s *Store) InUse(id string, now time.Time) (bool, error) {
	r, err := s.get(s.db.Txn(false), id)
	return r != nil && r.ExpiresAt > now.UnixNano(), err
}

// Submit queues a claim for the writer; r.Done is told the outcome. It
// blocks while the queue is full and returns ErrStopped once Run has
// returned.
func (s *Store) Submit(r Request) error {
	select {
	case <-s.stopped:
		return ErrStopped
	default:
	}
	select {
	case s.queue <- r:
		return nil
	case <-s.stopped:
		return ErrStopped
	}
}

// Waiter turns the asynchronous outcome of a claim into a return value. One
// waiter serves one claim at a time; a connection keeps one for all its
// claims.
type Waiter struct{ ch chan result }

// NewWaiter returns a Waiter.
func NewWaiter() *Waiter { return &Waiter{ch: make(chan result, 1)} }

// ClaimDone implements Done.
func (w *Waiter) ClaimDone(_ *Request, ok bool, err error) { w.ch <- result{ok, err} }

// Claim claims id for from at now and waits for the outcome: true when the
// ID was free and is now from's. Of concurrent claims of one free ID
// exactly one succeeds. An ID whose expiry time has come is free even if it
// is still in the table.
func (s *Store) Claim(w *Waiter, id string, from netip.AddrPort, now time.Time) (bool, error) {
	if err := s.Submit(Request{ID: id, From: from, At: now, Done: w}); err != nil {
		return false, err
	}
	select {
	case r := <-w.ch:
		return r.ok, r.err
	case <-s.stopped:
		// The writer drains the queue before it stops, but a claim
		// queued in the meantime is never decided.
		select {
		case r := <-w.ch:
			return r.ok, r.err
		default:
			return false, ErrStopped
		}
	}
}

// TryClaim decides a claim of id for from at now on the calling goroutine,
// when no write transaction is under way and no claim is queued; done
// reports whether it did. Then ok and err are the outcome, as from Claim;
// otherwise the claim must go through Submit or Claim. It saves the
// hand-off to the writer goroutine and back, which costs a claim's
// latency two goroutine wake-ups when the writer is idle. A busy writer
// still decides claims in batches. It never waits for a lock.
func (s *Store) TryClaim(id string, from netip.AddrPort, now time.Time) (ok bool, err error, done bool) {
	if len(s.queue) > 0 || !s.wmu.TryLock() {
		return false, nil, false
	}
	select {
	case <-s.stopped:
		s.wmu.Unlock()
		return false, ErrStopped, true
	default:
	}
	one := [1]Request{{ID: id, From: from, At: now}}
	var res [1]result
	first := s.decide(one[:], res[:])
	s.wmu.Unlock()
	if first < s.armed.Load() {
		// The writer's timer is set later than this claim expires, or
		// not at all: it must look at the expiry index again.
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return res[0].ok, res[0].err, true
}

func (s *Store) get(txn *memdb.Txn, id string) (*Record, error) {
	raw, err := txn.First(TableIDs, IndexID, id)
	if err != nil {
		return nil, fmt.Errorf("store: lookup %q: %w", id, err)
	}
	r, _ := raw.(*Record)
	return r, nil
}

// Get returns the record of id, expired or not, while it is in the table.
func (s *Store) Get(id string) (Record, bool) {
	r, err := s.get(s.db.Txn(false), id)
	if err != nil || r == nil {
		return Record{}, false
	}
	return *r, true
}

// Len reports how many IDs the table holds, including expired ones the
// writer is about to remove.
func (s *Store) Len() int { return int(s.live.Load()) }

// Expired reports how many IDs have expired since the store was made.
func (s *Store) Expired() uint64 { return s.expired.Load() }

// Commits reports how many claims the writer has decided, and in how many
// write transactions: the ratio is the mean batch size.
func (s *Store) Commits() (claims, commits uint64) { return s.claims.Load(), s.commits.Load() }

// Run decides claims and removes expired IDs until ctx ends. Then it
// decides the claims still queued, refuses new ones with ErrStopped, and
// returns ctx's error. Call it once: it is the only goroutine that writes
// to the table.
func (s *Store) Run(ctx context.Context) error {
	timer := s.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	const idle = math.MaxInt64
	armed := int64(idle) // the time the timer is set for
	// disarm forgets the timer before the expiry index is read again, so
	// that a TryClaim committed meanwhile sees s.armed idle and kicks.
	disarm := func() {
		armed = idle
		s.armed.Store(idle)
	}
	var swept int64 // when the last sweep ran
	for {
		if armed == idle {
			next, ok, err := s.earliest()
			if err != nil {
				return err
			}
			if ok {
				now := s.clock.Now().UnixNano()
				due := max(next, swept+int64(sweepGap))
				if due <= now {
					if err := s.sweep(now); err != nil {
						return err
					}
					s.giveBack()
					swept = now
					continue
				}
				armed = due
				s.armed.Store(due)
				timer.Reset(time.Duration(due - now))
			}
		}
		select {
		case <-ctx.Done():
			close(s.stopped)
			for range queueLen {
				select {
				case r := <-s.queue:
					s.commit(r)
				default:
					return ctx.Err()
				}
			}
			return ctx.Err()
		case r := <-s.queue:
			// IDs normally expire after all those in the table (one
			// TTL for all); a claim timed earlier needs a new deadline.
			if first := s.commit(r); first < armed {
				timer.Stop()
				disarm()
			}
		case <-s.kick:
			timer.Stop()
			disarm()
		case <-timer.C():
			disarm()
		}
	}
}

// commit decides r and every claim queued behind it, up to maxBatch, in one
// write transaction, then tells each its outcome. It returns the earliest
// expiry time it inserted.
func (s *Store) commit(r Request) (first int64) {
	batch := append(s.batch[:0], r)
gather:
	for len(batch) < maxBatch {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			break gather
		}
	}
	results := s.results[:len(batch)]
	s.wmu.Lock()
	first = s.decide(batch, results)
	s.wmu.Unlock()
	for i := range batch {
		batch[i].Done.ClaimDone(&batch[i], results[i].ok, results[i].err)
	}
	clear(batch) // drop the references to Done values and IDs
	return first
}

// decide decides the claims of batch in one write transaction, with their
// outcomes in results, and returns the earliest expiry time it inserted.
// The caller holds wmu.
func (s *Store) decide(batch []Request, results []result) (first int64) {
	first = math.MaxInt64
	var added, replaced int64
	txn := s.db.Txn(true)
	defer txn.Abort()
	for i := range batch {
		r := &batch[i]
		at := r.At.UnixNano()
		old, err := s.get(txn, r.ID)
		if err != nil || (old != nil && old.ExpiresAt > at) {
			results[i] = result{false, err}
			continue
		}
		src := netserve.Source(r.From.Addr())
		if old == nil && s.maxIDs > 0 && s.live.Load()+added >= int64(s.maxIDs) {
			results[i] = result{false, ErrFull}
			continue
		}
		if s.maxPerSource > 0 && s.held[src] >= s.maxPerSource {
			results[i] = result{false, ErrSourceFull}
			continue
		}
		// A new Record: inserted records are never modified.
		rec := &Record{ID: r.ID, Client: r.From, ClaimedAt: at, ExpiresAt: at + s.ttl}
		if err := txn.Insert(TableIDs, rec); err != nil {
			results[i] = result{false, fmt.Errorf("store: insert %q: %w", r.ID, err)}
			continue
		}
		results[i] = result{true, nil}
		first = min(first, rec.ExpiresAt)
		s.held[src]++
		if old != nil {
			s.release(old)
			replaced++ // expired, and not yet swept
		} else {
			added++
		}
	}
	txn.Commit()
	if l := s.live.Add(added); l > s.peak.Load() {
		s.peak.Store(l) // only under wmu
	}
	s.expired.Add(uint64(replaced))
	s.claims.Add(uint64(len(batch)))
	s.commits.Add(1)
	return first
}

// giveBackMin is the least fall in IDs held after which the memory they
// took is handed back to the system at once.
const giveBackMin = 4096

// giveBack returns the memory of a flood of IDs to the system once most of
// them have expired. With no claims after a flood the runtime has no
// reason to collect (nothing allocates) and would keep the flood's heap for
// minutes; a forced collection here costs one pause per flood.
func (s *Store) giveBack() {
	peak, live := s.peak.Load(), s.live.Load()
	if peak-live < giveBackMin || live > peak/4 {
		return
	}
	s.peak.Store(live)
	debug.FreeOSMemory()
}

// release forgets that r's source holds r. The caller holds wmu.
func (s *Store) release(r *Record) {
	src := netserve.Source(r.Client.Addr())
	if s.held[src] <= 1 {
		// Deleted rather than kept at zero, so the map shrinks after a
		// flood from many addresses.
		delete(s.held, src)
	} else {
		s.held[src]--
	}
}

// earliest returns the first expiry time in the table.
func (s *Store) earliest() (int64, bool, error) {
	it, err := s.db.Txn(false).LowerBound(TableIDs, IndexExpires, int64(math.MinInt64))
	if err != nil {
		return 0, false, fmt.Errorf("store: expiry index: %w", err)
	}
	if raw := it.Next(); raw != nil {
		return raw.(*Record).ExpiresAt, true, nil
	}
	return 0, false, nil
}

// sweep deletes every record expired at now, in batches.
func (s *Store) sweep(now int64) error {
	for {
		n, err := s.sweepBatch(now)
		if err != nil || n < sweepBatch {
			return err
		}
	}
}

func (s *Store) sweepBatch(now int64) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	txn := s.db.Txn(true)
	defer txn.Abort()
	it, err := txn.LowerBound(TableIDs, IndexExpires, int64(math.MinInt64))
	if err != nil {
		return 0, fmt.Errorf("store: expiry index: %w", err)
	}
	// memdb iterators must not outlive changes to the tree they walk:
	// collect first, then delete.
	dead := s.dead[:0]
	for raw := it.Next(); raw != nil && len(dead) < sweepBatch; raw = it.Next() {
		r := raw.(*Record)
		if r.ExpiresAt > now {
			break
		}
		dead = append(dead, r)
	}
	for _, r := range dead {
		if err := txn.Delete(TableIDs, r); err != nil {
			return 0, fmt.Errorf("store: delete %q: %w", r.ID, err)
		}
		s.release(r)
	}
	txn.Commit()
	n := len(dead)
	s.live.Add(-int64(n))
	s.expired.Add(uint64(n))
	clear(dead)
	return n, nil
}
