package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a Scenario whose workers take a fixed time (fake time under
// synctest) and fail as told; it notes when each request was sent.
type fake struct {
	took    func(n int64) time.Duration // how long request n takes
	fail    func(n int64) error         // the error of request n
	connErr error

	mu      sync.Mutex
	n       int64
	sent    []time.Time
	workers atomic.Int64
	closed  atomic.Int64
}

func (f *fake) NewWorker(ctx context.Context) (Worker, error) {
	if f.connErr != nil {
		return nil, f.connErr
	}
	f.workers.Add(1)
	return &fakeWorker{f: f}, nil
}

type fakeWorker struct{ f *fake }

func (w *fakeWorker) Do(ctx context.Context) error {
	f := w.f
	f.mu.Lock()
	n := f.n
	f.n++
	f.sent = append(f.sent, time.Now())
	f.mu.Unlock()
	if f.took != nil {
		if d := f.took(n); d > 0 {
			time.Sleep(d) // simulated service time, in fake time
		}
	}
	if f.fail != nil {
		return f.fail(n)
	}
	return nil
}

func (w *fakeWorker) Close() error { w.f.closed.Add(1); return nil }

func one(s Scenario) []Part { return []Part{{Name: "fake", Weight: 1, Scenario: s}} }

func TestOpenLoopPacing(t *testing.T) {
	tests := []struct {
		rate     float64
		workers  int
		duration time.Duration
		requests int64
		want     int64
	}{
		{rate: 1000, workers: 4, duration: time.Second, want: 1000},
		{rate: 333, workers: 7, duration: 3 * time.Second, want: 999},
		{rate: 10, workers: 1, duration: 1500 * time.Millisecond, want: 15},
		{rate: 50_000, workers: 16, duration: 100 * time.Millisecond, want: 5000},
		{rate: 100, workers: 3, requests: 42, want: 42},
		{rate: 100, workers: 3, duration: time.Second, requests: 42, want: 42},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("rate=%v/workers=%d/duration=%v/requests=%d", tt.rate, tt.workers, tt.duration, tt.requests)
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fake{took: func(int64) time.Duration { return 100 * time.Microsecond }}
				st, err := Run(t.Context(), Config{
					Parts: one(f), Rate: tt.rate, Workers: tt.workers, Sleep: time.Sleep,
					Duration: tt.duration, Requests: tt.requests,
				})
				if err != nil {
					t.Fatal(err)
				}
				if st.Total.Requests != tt.want || st.Total.Successes != tt.want {
					t.Fatalf("requests, successes = %d, %d; want %d", st.Total.Requests, st.Total.Successes, tt.want)
				}
				// Every request went out exactly when the pacer said it was
				// due: the clock is fake, so there is no jitter to allow for.
				slices.SortFunc(f.sent, func(a, b time.Time) int { return a.Compare(b) })
				p := Pacer{Rate: tt.rate}
				for i, s := range f.sent {
					if got, want := s.Sub(st.Start), p.At(int64(i)); got != want {
						t.Fatalf("request %d sent at %v, want %v", i, got, want)
					}
				}
				// Each took 100µs from when it was due.
				if s := st.Latency.Summary(); s.Min != 100*time.Microsecond || s.Max != 100*time.Microsecond {
					t.Errorf("latency min/max = %v/%v, want 100µs", s.Min, s.Max)
				}
			})
		})
	}
}

// A server that stalls once for a second holds up the requests due during
// the stall; measured from when they were due, they must show in the p99.
func TestOpenLoopCorrectsCoordinatedOmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{took: func(n int64) time.Duration {
			if n == 100 {
				return time.Second
			}
			return time.Millisecond
		}}
		st, err := Run(t.Context(), Config{Parts: one(f), Rate: 100, Workers: 1, Duration: 5 * time.Second, Sleep: time.Sleep})
		if err != nil {
			t.Fatal(err)
		}
		if st.Total.Requests != 500 {
			t.Fatalf("requests = %d, want 500 (the stall must not skip due requests)", st.Total.Requests)
		}
		s := st.Latency.Summary()
		// About 100 of 500 requests waited behind the stall, from 1s down.
		if s.P99 < 900*time.Millisecond {
			t.Errorf("p99 = %v, want the stall to show (>= 900ms)", s.P99)
		}
		if s.P90 < 100*time.Millisecond {
			t.Errorf("p90 = %v, want >= 100ms: a fifth of the requests were held up", s.P90)
		}
		if s.P50 > 2*time.Millisecond {
			t.Errorf("p50 = %v, want about the 1ms service time", s.P50)
		}
		// A closed loop would have hidden it: one slow sample in 400.
		f2 := &fake{took: f.took}
		st2, err := Run(t.Context(), Config{Parts: one(f2), Workers: 1, Requests: 400})
		if err != nil {
			t.Fatal(err)
		}
		if p99 := st2.Latency.Summary().P99; p99 > 2*time.Millisecond {
			t.Errorf("closed-loop p99 = %v; the test's premise is that it hides the stall", p99)
		}
	})
}

// A target slower than the rate: the run still ends with its duration (and
// the answer in flight), and the requests it could not take are unsent.
func TestOpenLoopFallsBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{took: func(int64) time.Duration { return 95 * time.Millisecond }}
		st, err := Run(t.Context(), Config{Parts: one(f), Rate: 100, Workers: 1, Duration: time.Second, Sleep: time.Sleep})
		if err != nil {
			t.Fatal(err)
		}
		// Sent at 0, 95ms, ... 950ms; the last answer comes at 1045ms.
		want := Counts{Requests: 100, Successes: 11, Errors: map[string]int64{KindUnsent: 89}}
		if !equalCounts(st.Total, want) {
			t.Errorf("counts = %+v, want %+v", st.Total, want)
		}
		if got := st.End.Sub(st.Start); got != 1045*time.Millisecond {
			t.Errorf("ended after %v, want 1.045s", got)
		}
		// The 11th was due at 100ms and answered at 1045ms.
		if max := st.Latency.Summary().Max; !near(max, 945*time.Millisecond) {
			t.Errorf("max latency = %v, want 945ms", max)
		}
	})
}

func TestClosedLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{took: func(int64) time.Duration { return 10 * time.Millisecond }}
		st, err := Run(t.Context(), Config{Parts: one(f), Workers: 4, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if st.Total.Requests != 400 {
			t.Errorf("requests = %d, want 4 workers x 100", st.Total.Requests)
		}
		if got := st.End.Sub(st.Start); got != time.Second {
			t.Errorf("elapsed = %v, want 1s", got)
		}
		if s := st.Latency.Summary(); !near(s.P50, 10*time.Millisecond) {
			t.Errorf("p50 = %v, want 10ms", s.P50)
		}
	})
}

func TestClosedLoopRequests(t *testing.T) {
	f := &fake{}
	st, err := Run(t.Context(), Config{Parts: one(f), Workers: 8, Requests: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total.Requests != 1000 || st.Latency.Count() != 1000 {
		t.Errorf("requests = %d, latencies = %d, want 1000", st.Total.Requests, st.Latency.Count())
	}
	if f.workers.Load() != 8 || f.closed.Load() != 8 {
		t.Errorf("workers made/closed = %d/%d, want 8/8", f.workers.Load(), f.closed.Load())
	}
}

func TestErrorsCountedByKind(t *testing.T) {
	f := &fake{fail: func(n int64) error {
		switch n % 10 {
		case 1:
			return Errorf(KindWrongReply, "got %q", "nonsense")
		case 2:
			return os.ErrDeadlineExceeded
		case 3:
			return fmt.Errorf("read: %w", syscall.ECONNRESET)
		case 4:
			return &Error{Kind: KindServerError, Err: errors.New("ERROR busy")}
		}
		return nil
	}}
	st, err := Run(t.Context(), Config{Parts: one(f), Workers: 1, Requests: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Requests: 100, Successes: 60, Errors: map[string]int64{
		KindWrongReply: 10, KindTimeout: 10, KindClosed: 10, KindServerError: 10,
	}}
	if !equalCounts(st.Total, want) {
		t.Errorf("counts = %+v, want %+v", st.Total, want)
	}
	if st.Latency.Count() != 60 {
		t.Errorf("latencies = %d, want only the 60 successes", st.Latency.Count())
	}
	// Each error costs the worker its connection: one at the start plus
	// one per error.
	if got := f.workers.Load(); got != 41 {
		t.Errorf("workers made = %d, want 41", got)
	}
}

func TestConnectErrors(t *testing.T) {
	f := &fake{connErr: fmt.Errorf("dial: %w", syscall.ECONNREFUSED)}
	st, err := Run(t.Context(), Config{Parts: one(f), Workers: 2, Requests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total.Requests != 10 || st.Total.Errors[KindConnect] != 10 {
		t.Errorf("counts = %+v, want 10 connect errors", st.Total)
	}
}

func TestMixDealsByWeight(t *testing.T) {
	a, b := &fake{}, &fake{}
	st, err := Run(t.Context(), Config{
		Parts:   []Part{{Name: "a", Weight: 3, Scenario: a}, {Name: "b", Weight: 1, Scenario: b}},
		Workers: 3, Requests: 400,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Parts) != 2 || st.Parts[0].Requests != 300 || st.Parts[1].Requests != 100 {
		t.Errorf("parts = %+v, want a:300 b:100", st.Parts)
	}
}

// TestPartLatency: each part of a mix has its own histogram, they add up
// to the overall one, and a tick sees the run so far the same way.
func TestPartLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fast := &fake{took: func(int64) time.Duration { return time.Millisecond }}
		slow := &fake{took: func(int64) time.Duration { return 40 * time.Millisecond }}
		var mid *Stats
		var midCount [2]int64
		st, err := Run(t.Context(), Config{
			Parts:   []Part{{Name: "fast", Weight: 1, Scenario: fast}, {Name: "slow", Weight: 1, Scenario: slow}},
			Workers: 4, Duration: 2500 * time.Millisecond,
			OnTick: func(p Progress) {
				if p.Elapsed == 2*time.Second && !p.Final {
					mid = p.Run
					midCount = [2]int64{p.Run.PartLatency[0].Count(), p.Run.PartLatency[1].Count()}
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.PartLatency) != 2 {
			t.Fatalf("%d part histograms, want 2", len(st.PartLatency))
		}
		for i, want := range []time.Duration{time.Millisecond, 40 * time.Millisecond} {
			s := st.PartLatency[i].Summary()
			if !near(s.P50, want) || !near(s.Max, want) {
				t.Errorf("part %s: p50 %v max %v, want %v", st.Parts[i].Name, s.P50, s.Max, want)
			}
			if s.Count != st.Parts[i].Successes {
				t.Errorf("part %s: %d latencies, %d successes", st.Parts[i].Name, s.Count, st.Parts[i].Successes)
			}
		}
		if sum := st.PartLatency[0].Count() + st.PartLatency[1].Count(); sum != st.Latency.Count() {
			t.Errorf("parts hold %d latencies, overall %d", sum, st.Latency.Count())
		}
		if mid == nil {
			t.Fatal("no tick at 2s")
		}
		for i := range midCount {
			if midCount[i] != mid.Parts[i].Successes {
				t.Errorf("tick at 2s: part %s holds %d latencies for %d successes", mid.Parts[i].Name, midCount[i], mid.Parts[i].Successes)
			}
		}
		if mid.End.Sub(mid.Start) != 2*time.Second || midCount[0] == 0 || midCount[1] == 0 ||
			midCount[0] >= st.PartLatency[0].Count() {
			t.Errorf("tick at 2s: run of %v with %v latencies (final %d)", mid.End.Sub(mid.Start), midCount, st.PartLatency[0].Count())
		}
	})
}

func TestInterrupt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		f := &fake{took: func(int64) time.Duration { return time.Millisecond }}
		time.AfterFunc(1505*time.Millisecond, cancel)
		st, err := Run(ctx, Config{Parts: one(f), Rate: 100, Workers: 2, Duration: time.Hour, Sleep: time.Sleep})
		if err != nil {
			t.Fatal(err)
		}
		// The dispatcher sleeps in slices of at most 10ms.
		if got := st.End.Sub(st.Start); got < 1505*time.Millisecond || got > 1515*time.Millisecond {
			t.Errorf("stopped after %v, want within 10ms of the interruption at 1.505s", got)
		}
		if st.Total.Requests != 151 {
			t.Errorf("requests = %d, want 151 (0s to 1.5s)", st.Total.Requests)
		}
	})
}

func TestProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{took: func(int64) time.Duration { return 2 * time.Millisecond }}
		var ticks []Progress
		st, err := Run(t.Context(), Config{
			Parts: one(f), Rate: 100, Workers: 2, Duration: 3500 * time.Millisecond, Sleep: time.Sleep,
			OnTick: func(p Progress) { ticks = append(ticks, p) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ticks) != 4 {
			t.Fatalf("%d progress calls, want 3 ticks and the final one", len(ticks))
		}
		var sum int64
		for i, p := range ticks {
			sum += p.Requests
			if final := i == len(ticks)-1; p.Final != final {
				t.Errorf("tick %d: Final = %v", i, p.Final)
			}
			if p.Total.Requests != sum {
				t.Errorf("tick %d: total %d, want the sum of intervals %d", i, p.Total.Requests, sum)
			}
		}
		if ticks[0].Requests != 100 || ticks[0].Interval != time.Second || !near(ticks[0].Latency.P50, 2*time.Millisecond) {
			t.Errorf("first tick = %+v, want 100 requests in 1s at 2ms", ticks[0])
		}
		if sum != st.Total.Requests || st.Total.Requests != 350 {
			t.Errorf("ticks add up to %d, total %d, want 350", sum, st.Total.Requests)
		}
	})
}

func TestValidate(t *testing.T) {
	ok := one(&fake{})
	tests := []struct {
		give Config
		want string // "" for valid
	}{
		{give: Config{Parts: ok, Workers: 1, Requests: 1}},
		{give: Config{Parts: ok, Workers: 1, Duration: time.Second, Rate: 5}},
		{give: Config{Workers: 1, Requests: 1}, want: "no scenario"},
		{give: Config{Parts: ok, Workers: 0, Requests: 1}, want: "workers"},
		{give: Config{Parts: ok, Workers: 1}, want: "stop by itself"},
		{give: Config{Parts: ok, Workers: 1, Requests: 1, Rate: -1}, want: "rate"},
		{give: Config{Parts: []Part{{Name: "x", Scenario: &fake{}}}, Workers: 1, Requests: 1}, want: "weight"},
	}
	for _, tt := range tests {
		err := tt.give.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", tt.give, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Validate(%+v) = %v, want an error about %q", tt.give, err, tt.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		give error
		want string
	}{
		{give: nil, want: ""},
		{give: Errorf(KindWrongReply, "x"), want: KindWrongReply},
		{give: fmt.Errorf("ctx: %w", Errorf(KindLoss, "x")), want: KindLoss},
		{give: os.ErrDeadlineExceeded, want: KindTimeout},
		{give: io.EOF, want: KindClosed},
		{give: io.ErrUnexpectedEOF, want: KindClosed},
		{give: syscall.EPIPE, want: KindClosed},
		{give: syscall.ECONNREFUSED, want: KindConnect},
		{give: errors.New("odd"), want: KindIO},
	}
	for _, tt := range tests {
		if got := KindOf(tt.give); got != tt.want {
			t.Errorf("KindOf(%v) = %q, want %q", tt.give, got, tt.want)
		}
		if w := Wrap(tt.give); KindOf(w) != tt.want {
			t.Errorf("KindOf(Wrap(%v)) = %q, want %q", tt.give, KindOf(w), tt.want)
		}
	}
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		give []int
		want []int
	}{
		{give: []int{1}, want: []int{0}},
		{give: []int{3, 1}, want: []int{0, 0, 1, 0}},
		{give: []int{1, 1, 1}, want: []int{0, 1, 2}},
		{give: []int{2, 1, 1}, want: []int{0, 1, 2, 0}},
	}
	for _, tt := range tests {
		var parts []Part
		for _, w := range tt.give {
			parts = append(parts, Part{Weight: w})
		}
		if got := schedule(parts); !slices.Equal(got, tt.want) {
			t.Errorf("schedule(weights %v) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func equalCounts(a, b Counts) bool {
	if a.Requests != b.Requests || a.Successes != b.Successes || len(a.Errors) != len(b.Errors) {
		return false
	}
	for k, v := range a.Errors {
		if b.Errors[k] != v {
			return false
		}
	}
	return true
}

// near reports whether an HdrHistogram value is want to its three
// significant figures.
func near(got, want time.Duration) bool {
	d := got - want
	return -want/1000 <= d && d <= want/1000
}
