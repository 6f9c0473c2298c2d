package store

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-memdb"
	"go.uber.org/goleak"

	"github.com/socklab/socklab/services/connid/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	t0     = time.Date(2023, 1, 16, 6, 6, 6, 123456000, time.UTC)
	client = netip.MustParseAddrPort("10.0.0.7:12345")
)

func TestSchema(t *testing.T) {
	s := Schema()
	if err := s.Validate(); err != nil {
		t.Fatalf("Schema().Validate() = %v", err)
	}
	db, err := memdb.NewMemDB(s)
	if err != nil {
		t.Fatalf("NewMemDB(Schema()) = %v", err)
	}
	table := s.Tables[TableIDs]
	if table == nil || table.Indexes[IndexID] == nil || !table.Indexes[IndexID].Unique || table.Indexes[IndexExpires] == nil {
		t.Fatalf("schema lacks %s with unique %s and %s: %+v", TableIDs, IndexID, IndexExpires, table)
	}
	// The expiry index must order by time, negative and positive alike,
	// whatever the insertion order.
	txn := db.Txn(true)
	for i, at := range []int64{30, -5, 10, 1 << 40, 0, 10} {
		if err := txn.Insert(TableIDs, &Record{ID: fmt.Sprint(i), ExpiresAt: at}); err != nil {
			t.Fatalf("Insert: %v", err)
		}
	}
	txn.Commit()
	it, err := db.Txn(false).LowerBound(TableIDs, IndexExpires, int64(-1<<63))
	if err != nil {
		t.Fatalf("LowerBound: %v", err)
	}
	var got []int64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		got = append(got, raw.(*Record).ExpiresAt)
	}
	want := []int64{-5, 0, 10, 10, 30, 1 << 40}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("expiry index order = %v, want %v", got, want)
	}
}

// newStore returns a store with its writer running until the end of the
// test.
func newStore(t *testing.T, c clock.Clock) *Store {
	t.Helper()
	s, err := New(c, 30*time.Second)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	runWriter(t, s)
	return s
}

// claim claims id with a waiter of its own.
func (s *Store) claim(id string, from netip.AddrPort, at time.Time) (bool, error) {
	return s.Claim(NewWaiter(), id, from, at)
}

// runWriter runs s.Run until the end of the test.
func runWriter(t *testing.T, s *Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

func TestNewRejectsTTL(t *testing.T) {
	if _, err := New(clock.Real{}, 0); err == nil {
		t.Error("New with ttl 0 succeeded")
	}
}

func TestClaim(t *testing.T) {
	s := newStore(t, clock.NewFake(t0))
	other := netip.MustParseAddrPort("[::1]:999")
	tests := []struct {
		at   time.Duration
		id   string
		from netip.AddrPort
		want bool
	}{
		{0, "9876", client, true},
		{0, "9876", other, false},
		{0, "2678", other, true},
		{29*time.Second + 999999999, "9876", other, false},
		// Expiry is exact: at TTL the ID is free again, swept or not.
		{30 * time.Second, "9876", other, true},
		{30 * time.Second, "9876", client, false},
		{30 * time.Second, "2678", client, true},
	}
	for _, tt := range tests {
		got, err := s.claim(tt.id, tt.from, t0.Add(tt.at))
		if err != nil || got != tt.want {
			t.Errorf("Claim(%q) at +%v = %v, %v; want %v", tt.id, tt.at, got, err, tt.want)
		}
	}
	r, ok := s.Get("9876")
	if !ok || r.Client != other || !r.Claimed().Equal(t0.Add(30*time.Second)) || !r.Expires().Equal(t0.Add(time.Minute)) {
		t.Errorf("Get(9876) = %+v, %v; want claimed by %v at +30s, expiring at +60s", r, ok, other)
	}
	if s.Len() != 2 || s.Expired() != 2 {
		t.Errorf("Len, Expired = %d, %d; want 2, 2", s.Len(), s.Expired())
	}
	if _, ok := s.Get("nope"); ok {
		t.Error("Get of an unknown ID succeeded")
	}
	if s.TTL() != 30*time.Second {
		t.Errorf("TTL() = %v", s.TTL())
	}
}

// TestSweeperExpiresByTime checks that IDs leave the table when their time
// comes, with no request to trigger it.
func TestSweeperExpiresByTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, clock.Real{})
		start := time.Now()
		claim := func(id string) {
			if ok, err := s.claim(id, client, time.Now()); !ok || err != nil {
				t.Fatalf("Claim(%q) = %v, %v", id, ok, err)
			}
		}
		claim("a")
		time.Sleep(10 * time.Second)
		claim("b")
		claim("c")

		steps := []struct {
			until   time.Duration
			wantLen int
			wantExp uint64
			gone    string
		}{
			{29 * time.Second, 3, 0, ""},
			{30 * time.Second, 2, 1, "a"},
			{39 * time.Second, 2, 1, ""},
			{40 * time.Second, 0, 3, "c"},
		}
		for _, st := range steps {
			time.Sleep(time.Until(start.Add(st.until)))
			synctest.Wait()
			if s.Len() != st.wantLen || s.Expired() != st.wantExp {
				t.Errorf("at +%v: Len, Expired = %d, %d; want %d, %d", st.until, s.Len(), s.Expired(), st.wantLen, st.wantExp)
			}
			if _, ok := s.Get(st.gone); st.gone != "" && ok {
				t.Errorf("at +%v: %q still in the table", st.until, st.gone)
			}
		}
		// After an idle spell with an empty table, a new claim still
		// expires on time.
		time.Sleep(time.Hour)
		claim("d")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if s.Len() != 0 || s.Expired() != 4 {
			t.Errorf("after idle: Len, Expired = %d, %d; want 0, 4", s.Len(), s.Expired())
		}
	})
}

// TestSweepInBatches expires more IDs at once than one transaction deletes.
func TestSweepInBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, clock.Real{})
		const n = 3*sweepBatch + 7
		now := time.Now()
		for i := range n {
			if ok, err := s.claim(fmt.Sprint(i), client, now); !ok || err != nil {
				t.Fatalf("Claim(%d) = %v, %v", i, ok, err)
			}
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if s.Len() != 0 || s.Expired() != n {
			t.Errorf("Len, Expired = %d, %d; want 0, %d", s.Len(), s.Expired(), n)
		}
	})
}

// TestConcurrentClaims races many claimers over a few IDs, half of them
// trying TryClaim first as the server does: exactly one claim of each ID
// may win.
func TestConcurrentClaims(t *testing.T) {
	s := newStore(t, clock.NewFake(t0))
	const workers, ids = 32, 50
	wins := make([][ids]int, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range ids {
				id := fmt.Sprint((i + w) % ids)
				ok, err, done := false, error(nil), false
				if w%2 == 0 {
					ok, err, done = s.TryClaim(id, client, t0)
				}
				if !done {
					ok, err = s.claim(id, client, t0)
				}
				if err != nil {
					errs <- err
					return
				}
				if ok {
					wins[w][(i+w)%ids]++
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Claim: %v", err)
	}
	for i := range ids {
		total := 0
		for w := range workers {
			total += wins[w][i]
		}
		if total != 1 {
			t.Errorf("ID %d claimed %d times, want exactly once", i, total)
		}
	}
	if s.Len() != ids {
		t.Errorf("Len() = %d, want %d", s.Len(), ids)
	}
}

// TestSweepsCoalesce: IDs expiring close together are removed by one sweep
// up to sweepGap late, while claims of them are exact.
func TestSweepsCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, clock.Real{})
		start := time.Now()
		s.claim("a", client, start)
		s.claim("b", client, start.Add(time.Millisecond))
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if s.Len() != 1 {
			t.Fatalf("at +30s: Len = %d, want 1", s.Len())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if _, ok := s.Get("b"); !ok {
			t.Fatal("b removed 1ms after the last sweep; sweeps should be sweepGap apart")
		}
		if ok, _ := s.claim("b", client, time.Now()); !ok {
			t.Fatal("claim of b refused at its expiry time")
		}
		time.Sleep(sweepGap)
		synctest.Wait()
		if s.Len() != 1 || s.Expired() != 2 {
			t.Errorf("Len, Expired = %d, %d; want 1 (the new b), 2", s.Len(), s.Expired())
		}
	})
}

// TestBatchDecidesInOrder: claims queued together are decided in one
// transaction, in order, the later ones seeing the earlier ones.
func TestBatchDecidesInOrder(t *testing.T) {
	s, err := New(clock.NewFake(t0), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"x", "y", "x", "z", "y"}
	waiters := make([]*Waiter, len(ids))
	for i, id := range ids {
		waiters[i] = NewWaiter()
		if err := s.Submit(Request{ID: id, From: client, At: t0, Done: waiters[i]}); err != nil {
			t.Fatal(err)
		}
	}
	runWriter(t, s) // only now: all five are queued
	want := []bool{true, true, false, true, false}
	for i, w := range waiters {
		if r := <-w.ch; r.ok != want[i] || r.err != nil {
			t.Errorf("claim %d of %q = %v, %v; want %v", i, ids[i], r.ok, r.err, want[i])
		}
	}
}

// TestStopped: claims after Run returned are refused; claims queued before
// are decided.
func TestStopped(t *testing.T) {
	s, err := New(clock.NewFake(t0), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWaiter()
	s.Submit(Request{ID: "queued", From: client, At: t0, Done: w})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != context.Canceled {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if r := <-w.ch; !r.ok {
		t.Errorf("claim queued before the stop = %v, %v; want granted", r.ok, r.err)
	}
	if ok, err := s.claim("late", client, t0); ok || err != ErrStopped {
		t.Errorf("claim after the stop = %v, %v; want ErrStopped", ok, err)
	}
	if in, err := s.InUse("queued", t0); !in || err != nil {
		t.Errorf("InUse(queued) = %v, %v", in, err)
	}
}

// TestTryClaim: a claim decided on the caller's goroutine counts as one
// decided by the writer, and the writer still removes it on time, even when
// it expires before everything else in the table.
func TestTryClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, clock.Real{})
		synctest.Wait() // the writer is idle
		start := time.Now()
		try := func(id string, at time.Time, want bool) {
			t.Helper()
			ok, err, done := s.TryClaim(id, client, at)
			if !done || ok != want || err != nil {
				t.Fatalf("TryClaim(%q) = %v, %v, done %v; want %v, decided", id, ok, err, done, want)
			}
		}
		// Into an empty table: the writer has no timer and must be told.
		try("a", start, true)
		try("a", start, false)
		if claims, commits := s.Commits(); claims != 2 || commits != 2 || s.Len() != 1 {
			t.Errorf("Commits, Len = %d, %d, %d; want 2, 2, 1", claims, commits, s.Len())
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if s.Len() != 0 || s.Expired() != 1 {
			t.Fatalf("at +30s: Len, Expired = %d, %d; want 0, 1", s.Len(), s.Expired())
		}
		// Earlier than the writer's timer: it must set it again.
		try("far", time.Now().Add(time.Hour), true)
		synctest.Wait()
		try("near", time.Now(), true)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if _, ok := s.Get("near"); ok || s.Len() != 1 {
			t.Errorf("30s after its claim: near still in the table (Len %d)", s.Len())
		}
		try("near", time.Now(), true) // expired, and free again
	})
}

// TestTryClaimDefers: TryClaim leaves a claim to the writer while claims
// are queued or a write is under way, and refuses it once Run returned.
func TestTryClaimDefers(t *testing.T) {
	s, err := New(clock.NewFake(t0), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWaiter()
	s.Submit(Request{ID: "queued", From: client, At: t0, Done: w})
	if _, _, done := s.TryClaim("x", client, t0); done {
		t.Error("TryClaim decided a claim while another was queued")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx)
	<-w.ch
	s.wmu.Lock()
	if _, _, done := s.TryClaim("x", client, t0); done {
		t.Error("TryClaim decided a claim during a write")
	}
	s.wmu.Unlock()
	if ok, err, done := s.TryClaim("x", client, t0); !done || ok || err != ErrStopped {
		t.Errorf("TryClaim after the stop = %v, %v, done %v; want ErrStopped", ok, err, done)
	}
}
