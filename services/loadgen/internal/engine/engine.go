// Package engine drives load against a target, independently of its
// protocol: workers that each hold their own connections issue requests
// either in an open loop (a fixed rate, paced by a Pacer, latency measured
// from when each request was due) or in a closed loop (each worker sends its
// next request when the previous answer arrives), until a duration or a
// request count is reached. Outcomes are counted by error kind and the
// latencies of successful requests go into an HdrHistogram.
package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socklab/socklab/services/kit/latency"
)

// A Scenario makes workers for one kind of request.
type Scenario interface {
	// NewWorker sets up one worker's connection (or socket). ctx ends when
	// the run is interrupted; a worker may watch it to unblock its reads.
	// An error is counted as KindConnect unless it is an *Error.
	NewWorker(ctx context.Context) (Worker, error)
}

// A Worker does requests one at a time on its connection. The engine never
// calls a Worker from two goroutines at once.
type Worker interface {
	// Do sends one request, waits for its answer within the scenario's
	// timeout and checks it. A non-nil error is classified by KindOf; after
	// one the engine closes the worker and makes a new one for the next
	// request, since the connection may be out of step.
	Do(ctx context.Context) error
	// Close releases the connection.
	Close() error
}

// Part is one scenario of a run with its share of the requests.
type Part struct {
	Name     string
	Weight   int
	Scenario Scenario
}

// Config describes a run.
type Config struct {
	// Parts are the scenarios; requests are dealt out among them in
	// proportion to their weights, in a fixed interleaved order.
	Parts []Part
	// Rate selects the open loop when > 0: requests per second over all
	// workers together.
	Rate float64
	// Workers is the number of connections (open loop) or the concurrency
	// (closed loop).
	Workers int
	// Duration bounds the run: no request is started (closed loop) or due
	// (open loop) after it. 0 means no bound by time.
	Duration time.Duration
	// Requests bounds the number of requests. 0 means no bound by count.
	// At least one of Duration and Requests must be set.
	Requests int64
	// Tick is the interval of OnTick calls; 0 means one second.
	Tick time.Duration
	// OnTick, when set, is called every Tick and once at the end from one
	// goroutine, with the progress so far.
	OnTick func(Progress)
	// Sleep, when set, replaces the open loop's precise sleep (tests give
	// time.Sleep, to run on synctest's fake clock).
	Sleep func(time.Duration)
}

// Limits on a Config.
const (
	MaxWorkers     = 100_000
	MaxTotalWeight = 10_000
)

// Validate reports a Config that cannot run.
func (c Config) Validate() error {
	if len(c.Parts) == 0 {
		return errors.New("no scenario")
	}
	total := 0
	for _, p := range c.Parts {
		if p.Weight < 1 {
			return fmt.Errorf("scenario %s: weight must be at least 1", p.Name)
		}
		if p.Scenario == nil {
			return fmt.Errorf("scenario %s: nil", p.Name)
		}
		total += p.Weight
		if total > MaxTotalWeight {
			return fmt.Errorf("weights add up to more than %d", MaxTotalWeight)
		}
	}
	if c.Rate < 0 {
		return errors.New("rate must not be negative")
	}
	if c.Workers < 1 || c.Workers > MaxWorkers {
		return fmt.Errorf("workers (connections or concurrency) must be from 1 to %d", MaxWorkers)
	}
	if c.Duration < 0 || c.Requests < 0 {
		return errors.New("duration and requests must not be negative")
	}
	if c.Duration == 0 && c.Requests == 0 {
		return errors.New("a run needs a duration or a number of requests to stop by itself")
	}
	return nil
}

// Counts are the outcomes of requests.
type Counts struct {
	Requests  int64            `json:"requests"`
	Successes int64            `json:"successes"`
	Errors    map[string]int64 `json:"errors,omitempty"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Requests += o.Requests
	c.Successes += o.Successes
	for k, v := range o.Errors {
		if c.Errors == nil {
			c.Errors = map[string]int64{}
		}
		c.Errors[k] += v
	}
}

// Clone returns a copy of c that shares no map with it.
func (c Counts) Clone() Counts {
	c.Errors = maps.Clone(c.Errors)
	return c
}

// PartCounts are the outcomes of one scenario of a run.
type PartCounts struct {
	Name string
	Counts
}

// Stats are the outcome of a run.
type Stats struct {
	// Start is when the first request was due or sent (after the
	// connections were set up); End is when the last answer came.
	Start, End time.Time
	Total      Counts
	Parts      []PartCounts
	// Latency holds the latencies of successful requests, and PartLatency
	// those of each part (in the order of Parts; they add up to Latency).
	Latency     *latency.Recorder
	PartLatency []*latency.Recorder
}

// Progress is what OnTick is told.
type Progress struct {
	// Elapsed is the time since the start.
	Elapsed time.Duration
	Total   Counts
	Parts   []PartCounts
	// Interval is the time since the previous call, and Requests, Successes
	// and Latency are what finished in it.
	Interval            time.Duration
	Requests, Successes int64
	Latency             latency.Summary
	// Overall summarises the latencies since the start.
	Overall latency.Summary
	// Rate is the open loop's target rate in requests/s (0: closed loop).
	Rate float64
	// Run is the run so far, as Run would return it if it ended now (End
	// is now). Its recorders belong to the engine: they may be read during
	// the OnTick call only, and never changed.
	Run *Stats
	// Final is set on the last call, after every worker stopped.
	Final bool
}

// Run runs the load described by cfg until its bound is reached or ctx
// ends, and returns the counts and latencies. Requests cut short by the end
// of ctx are not counted.
func Run(ctx context.Context, cfg Config) (*Stats, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	r := &run{
		cfg:      cfg,
		sched:    schedule(cfg.Parts),
		total:    latency.New(),
		tick:     latency.New(),
		spares:   recorders(len(cfg.Parts)),
		partTick: recorders(len(cfg.Parts)),
		partAll:  recorders(len(cfg.Parts)),
	}
	if cfg.Rate > 0 {
		r.pacer = Pacer{Rate: cfg.Rate}
		r.tickets = make(chan int64)
	}
	nshards := min(cfg.Workers, 4*runtime.GOMAXPROCS(0))
	r.shards = make([]*shard, nshards)
	for i := range r.shards {
		r.shards[i] = &shard{recs: recorders(len(cfg.Parts)), counts: make([]Counts, len(cfg.Parts))}
	}

	// Every worker connects first, so that the schedule starts with the
	// connections up rather than counting their set-up against the first
	// requests.
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range cfg.Workers {
		ready.Add(1)
		done.Go(func() { r.worker(ctx, i, &ready, start) })
	}
	ready.Wait()
	r.start = time.Now()
	close(start)
	if cfg.Rate > 0 {
		done.Go(func() { r.dispatch(ctx) })
	}

	collected := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(collected)
		r.collector(stop)
	}()
	done.Wait()
	r.end = time.Now()
	close(stop)
	<-collected

	st := &Stats{Start: r.start, End: r.end, Latency: r.total, PartLatency: r.partAll}
	st.Parts, st.Total = r.counts()
	return st, nil
}

func recorders(n int) []*latency.Recorder {
	out := make([]*latency.Recorder, n)
	for i := range out {
		out[i] = latency.New()
	}
	return out
}

type run struct {
	cfg   Config
	sched []int
	pacer Pacer
	// tickets carries the open loop's request numbers from the dispatcher;
	// next counts the closed loop's.
	tickets chan int64
	next    atomic.Int64
	start   time.Time
	end     time.Time
	shards  []*shard

	// Owned by the collector: since the start (total, partAll) and since
	// the last tick (tick, partTick), overall and by part.
	total, tick               *latency.Recorder
	partAll, partTick, spares []*latency.Recorder
	last                      time.Time
	lastCounts                Counts
}

// shard collects the outcomes of some workers; shards keep the lock of each
// short and uncontended.
type shard struct {
	mu     sync.Mutex
	recs   []*latency.Recorder // by part
	counts []Counts
}

func (s *shard) record(part int, err error, d time.Duration) {
	s.mu.Lock()
	c := &s.counts[part]
	c.Requests++
	if err == nil {
		c.Successes++
		s.recs[part].Record(d)
	} else {
		if c.Errors == nil {
			c.Errors = map[string]int64{}
		}
		c.Errors[KindOf(err)]++
	}
	s.mu.Unlock()
}

func (r *run) worker(ctx context.Context, id int, ready *sync.WaitGroup, start <-chan struct{}) {
	sh := r.shards[id%len(r.shards)]
	ws := make([]Worker, len(r.cfg.Parts))
	defer func() {
		for _, w := range ws {
			if w != nil {
				w.Close()
			}
		}
	}()
	for i, p := range r.cfg.Parts {
		if w, err := p.Scenario.NewWorker(ctx); err == nil {
			ws[i] = w
		}
	}
	ready.Done()
	select {
	case <-start:
	case <-ctx.Done():
		return
	}

	if r.cfg.Rate > 0 {
		r.openLoop(ctx, ws, sh)
	} else {
		r.closedLoop(ctx, ws, sh)
	}
}

// openLoop does the requests the dispatcher hands out, each timed from
// when it was due.
func (r *run) openLoop(ctx context.Context, ws []Worker, sh *shard) {
	for n := range r.tickets {
		begin := r.start.Add(r.pacer.At(n))
		part := r.sched[n%int64(len(r.sched))]
		err := r.do(ctx, ws, part)
		if err != nil && ctx.Err() != nil {
			return
		}
		sh.record(part, err, time.Since(begin))
	}
}

// closedLoop does one request after another, each timed from its sending.
func (r *run) closedLoop(ctx context.Context, ws []Worker, sh *shard) {
	for {
		n := r.next.Add(1) - 1
		if r.cfg.Requests > 0 && n >= r.cfg.Requests {
			return
		}
		begin := time.Now()
		if r.cfg.Duration > 0 && begin.Sub(r.start) >= r.cfg.Duration {
			return
		}
		select {
		case <-ctx.Done():
			return
		default:
		}
		part := r.sched[n%int64(len(r.sched))]
		err := r.do(ctx, ws, part)
		if err != nil && ctx.Err() != nil {
			return
		}
		sh.record(part, err, time.Since(begin))
	}
}

// dispatch hands request numbers to the workers of an open loop, each when
// it is due. One goroutine keeps the schedule so that it can sleep precisely
// (see preciseSleeper): Go's timers may fire a millisecond late, which the
// latency of every request would include. When every worker is busy the
// send blocks, and the requests that fall due meanwhile go out as soon as
// workers free up, their latency still counted from when they were due.
// Those still waiting when the duration is over are never sent: they are
// counted as KindUnsent, so that a target that cannot keep up with the rate
// shows as failures rather than as a run that never ends.
func (r *run) dispatch(ctx context.Context) {
	defer close(r.tickets)
	sleep := r.cfg.Sleep
	if sleep == nil {
		sleep = preciseSleeper()
	}
	var end <-chan time.Time
	if r.cfg.Duration > 0 {
		t := time.NewTimer(time.Until(r.start.Add(r.cfg.Duration)))
		defer t.Stop()
		end = t.C
	}
	for n := int64(0); r.cfg.Requests == 0 || n < r.cfg.Requests; n++ {
		at := r.pacer.At(n)
		if r.cfg.Duration > 0 && at >= r.cfg.Duration {
			return
		}
		due := r.start.Add(at)
		for {
			d := time.Until(due)
			if d <= 0 {
				break
			}
			if ctx.Err() != nil {
				return
			}
			// In slices, so that an interruption is seen soon.
			sleep(min(d, 10*time.Millisecond))
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case r.tickets <- n:
		case <-end:
			r.unsent(n)
			return
		case <-ctx.Done():
			return
		}
		// Let the worker just handed n run now on this P, rather than wait
		// in its run queue while the dispatcher sleeps in a system call.
		runtime.Gosched()
	}
}

// unsent counts the requests from n on that were due within the duration
// (and the request bound) as KindUnsent.
func (r *run) unsent(n int64) {
	last := r.pacer.Due(r.cfg.Duration - 1) // requests due before the end
	if r.cfg.Requests > 0 {
		last = min(last, r.cfg.Requests)
	}
	sh := r.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for ; n < last; n++ {
		c := &sh.counts[r.sched[n%int64(len(r.sched))]]
		c.Requests++
		if c.Errors == nil {
			c.Errors = map[string]int64{}
		}
		c.Errors[KindUnsent]++
	}
}

// do runs one request of part, connecting first when needed.
func (r *run) do(ctx context.Context, ws []Worker, part int) error {
	w := ws[part]
	if w == nil {
		var err error
		w, err = r.cfg.Parts[part].Scenario.NewWorker(ctx)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				err = &Error{Kind: KindConnect, Err: err}
			}
			return err
		}
		ws[part] = w
	}
	err := w.Do(ctx)
	if err != nil {
		w.Close()
		ws[part] = nil
	}
	return err
}

func (r *run) collector(stop <-chan struct{}) {
	r.last = r.start
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.collect(time.Now(), false)
		case <-stop:
			// A tick may have fired between the end of the last worker
			// and stop, and been reported at a later time than r.end:
			// the final report must not go back in time before it.
			end := r.end
			if end.Before(r.last) {
				end = r.last
			}
			r.collect(end, true)
			return
		}
	}
}

// collect moves what the shards recorded since the last call into the total
// and reports it.
func (r *run) collect(now time.Time, final bool) {
	// Each shard's recorders and counts are taken together, so that the
	// histograms hold exactly the successes counted.
	parts := r.names()
	for _, s := range r.shards {
		s.mu.Lock()
		for i := range s.recs {
			s.recs[i], r.spares[i] = r.spares[i], s.recs[i]
		}
		for i := range parts {
			parts[i].Add(s.counts[i])
		}
		s.mu.Unlock()
		for i, sp := range r.spares {
			r.partTick[i].Merge(sp)
			sp.Histogram().Reset()
		}
	}
	for i, t := range r.partTick {
		r.tick.Merge(t)
		r.partAll[i].Merge(t)
		t.Histogram().Reset()
	}
	r.total.Merge(r.tick)
	var total Counts
	for _, p := range parts {
		total.Add(p.Counts)
	}
	if r.cfg.OnTick != nil {
		r.cfg.OnTick(Progress{
			Elapsed:   now.Sub(r.start),
			Total:     total,
			Parts:     parts,
			Interval:  now.Sub(r.last),
			Requests:  total.Requests - r.lastCounts.Requests,
			Successes: total.Successes - r.lastCounts.Successes,
			Latency:   r.tick.Summary(),
			Overall:   r.total.Summary(),
			Rate:      r.cfg.Rate,
			Run: &Stats{Start: r.start, End: now, Total: total, Parts: parts,
				Latency: r.total, PartLatency: r.partAll},
			Final: final,
		})
	}
	r.tick.Histogram().Reset()
	r.last, r.lastCounts = now, total
}

// names returns zero counts named after the parts.
func (r *run) names() []PartCounts {
	parts := make([]PartCounts, len(r.cfg.Parts))
	for i, p := range r.cfg.Parts {
		parts[i].Name = p.Name
	}
	return parts
}

// counts sums the shards' counts.
func (r *run) counts() ([]PartCounts, Counts) {
	parts := r.names()
	for _, s := range r.shards {
		s.mu.Lock()
		for i := range parts {
			parts[i].Add(s.counts[i])
		}
		s.mu.Unlock()
	}
	var total Counts
	for _, p := range parts {
		total.Add(p.Counts)
	}
	return parts, total
}

// schedule deals out the parts by weight in a smooth interleaved order
// (nginx's weighted round robin): weights 3 and 1 give 0 0 1 0, not 0 0 0 1.
func schedule(parts []Part) []int {
	total := 0
	for _, p := range parts {
		total += p.Weight
	}
	cur := make([]int, len(parts))
	out := make([]int, 0, total)
	for range total {
		best := 0
		for i, p := range parts {
			cur[i] += p.Weight
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, best)
	}
	return out
}
