package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/capture/internal/filter"
	"github.com/socklab/socklab/services/capture/internal/pcapfile"
)

// Source delivers captured packets: a live interface, or a list in tests.
type Source interface {
	// ReadPackets waits for packets, then calls fn with each of a batch of
	// them (one or more; a live source hands over a block of its ring) and
	// returns. data is valid only during fn. An error from fn ends the
	// batch and is returned. io.EOF means the source has no more packets.
	ReadPackets(fn func(data []byte, ci gopacket.CaptureInfo) error) error
	// Close makes a blocked ReadPackets return. It may be called from
	// another goroutine, and twice.
	Close() error
}

// Stopper is a Source that can end gracefully: after Stop, ReadPackets
// hands over what it still holds, then returns io.EOF. A Source without
// Stop is closed instead, which may lose what it holds.
type Stopper interface {
	Stop()
}

// Dropper is a Source that knows how many packets the kernel dropped.
type Dropper interface {
	Drops() uint64
}

// Why a bounded capture stopped by itself.
var (
	ErrCountReached    = errors.New("packet count reached")
	ErrDurationReached = errors.New("duration reached")
)

// Recorder copies packets from Source, through Filter, into Out. Set the
// fields, then call Run once.
type Recorder struct {
	Source Source
	Filter *filter.Filter // nil records everything
	// Out receives the packets. Run sets its OnRotate and OnRemove hooks to
	// count files, opens it and closes it.
	Out   *pcapfile.Rotator
	Iface string // for logs and the heartbeat

	Count    int64         // stop after this many packets written; 0: no limit
	Duration time.Duration // stop after this long; 0: no limit

	FlushEvery     time.Duration // write buffered packets to the file
	HeartbeatEvery time.Duration
	HeartbeatPath  string        // empty: no heartbeat
	LogEvery       time.Duration // log a summary; 0: only at the end
	// StatusPath, when set, is rewritten every StatusEvery (1s when zero)
	// with a Status for the dashboard.
	StatusPath  string
	StatusEvery time.Duration

	Metrics *Metrics
	Log     *zap.Logger

	mu       sync.Mutex // guards Out, written by Run's loop and flushed by its ticker
	start    time.Time
	packets  atomic.Int64
	bytes    atomic.Int64
	filtered atomic.Int64
	drops    atomic.Uint64 // as last read from a Dropper
	rotated  atomic.Bool   // a new file was opened: the heartbeat must name it
}

// Summary is what a Recorder has done so far.
type Summary struct {
	Packets  int64 // written
	Bytes    int64 // captured bytes written
	Filtered int64 // rejected by the filter
	Drops    uint64
	Files    int    // opened
	File     string // being written, or the last one
	Elapsed  time.Duration
}

func (s Summary) fields() []zap.Field {
	return []zap.Field{
		zap.Int64("packets", s.Packets), zap.Int64("bytes", s.Bytes), zap.Int64("filtered", s.Filtered),
		zap.Uint64("drops", s.Drops), zap.Int("files", s.Files), zap.String("file", s.File),
		zap.Duration("elapsed", s.Elapsed.Round(time.Millisecond)),
	}
}

// Summary returns the totals. It is safe to call while Run runs.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	files, cur, start := r.Out.Files(), r.Out.Current().Name, r.start
	r.mu.Unlock()
	return Summary{
		Packets: r.packets.Load(), Bytes: r.bytes.Load(), Filtered: r.filtered.Load(),
		Drops: r.drops.Load(), Files: files, File: cur, Elapsed: time.Since(start),
	}
}

// Run records until ctx ends, Count or Duration is reached, the source ends
// or an error occurs, then closes the source and the file, removes the
// heartbeat and logs a summary. It returns nil for a stop as asked (ctx, a
// bound, the source's io.EOF) and the error otherwise.
func (r *Recorder) Run(ctx context.Context) error {
	r.mu.Lock()
	r.start = time.Now()
	r.Out.OnRotate = func(pcapfile.File) {
		r.Metrics.Rotated.Inc()
		r.rotated.Store(true)
	}
	r.Out.OnRemove = func(string) { r.Metrics.Deleted.Inc() }
	err := r.Out.Open()
	r.mu.Unlock()
	if err != nil {
		r.Source.Close()
		return fmt.Errorf("open capture file: %w", err)
	}
	r.beat()
	r.status()
	r.Log.Info("capturing", zap.String("iface", r.Iface), zap.String("dir", r.Out.Dir),
		zap.String("file", r.Out.Current().Name), zap.String("filter", r.Filter.String()))

	if r.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, r.Duration, ErrDurationReached)
		defer cancel()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { r.tick(ctx, stop) })
	err = r.loop(ctx)
	close(stop)
	wg.Wait()

	r.Source.Close()
	r.mu.Lock()
	if cerr := r.Out.Close(); cerr != nil && (err == nil || errors.Is(err, ErrCountReached)) {
		err = cerr
	}
	r.mu.Unlock()
	if r.HeartbeatPath != "" {
		if herr := RemoveHeartbeat(r.HeartbeatPath); herr != nil {
			r.Log.Warn("removing heartbeat", zap.Error(herr))
		}
	}
	r.countDrops()
	r.status() // the final figures stay for the dashboard

	cause := err
	switch {
	case errors.Is(err, ErrCountReached):
		err = nil
	case err == nil && ctx.Err() != nil:
		cause = context.Cause(ctx)
	case err == nil:
		cause = io.EOF
	}
	fields := append(r.Summary().fields(), zap.String("cause", cause.Error()))
	if err != nil {
		r.Log.Error("capture stopped", fields...)
	} else {
		r.Log.Info("capture stopped", fields...)
	}
	return err
}

// loop reads, filters and writes packets until something stops it. It
// takes the file's lock once per batch, and counts once per batch.
func (r *Recorder) loop(ctx context.Context) error {
	var (
		locked                   bool
		werr                     error // from the file, not the source
		packets, bytes, filtered int64
		written                  = r.packets.Load()
		snaplen                  = r.Out.SnapLen()
	)
	record := func(data []byte, ci gopacket.CaptureInfo) error {
		if !r.Filter.Match(data) {
			filtered++
			return nil
		}
		if !locked {
			r.mu.Lock()
			locked = true
		}
		if werr = r.Out.Write(ci, data); werr != nil {
			return werr
		}
		packets++
		bytes += int64(min(len(data), snaplen))
		if r.Count > 0 && written+packets >= r.Count {
			return ErrCountReached
		}
		return nil
	}
	for {
		err := r.Source.ReadPackets(record)
		if locked {
			r.mu.Unlock()
			locked = false
		}
		if packets > 0 || filtered > 0 {
			written = r.packets.Add(packets)
			r.bytes.Add(bytes)
			r.filtered.Add(filtered)
			r.Metrics.Packets.Add(float64(packets))
			r.Metrics.Bytes.Add(float64(bytes))
			r.Metrics.Filtered.Add(float64(filtered))
			packets, bytes, filtered = 0, 0, 0
		}
		if r.rotated.Swap(false) {
			// With a small CAPTURE_KEEP the file the heartbeat names may
			// be gone already.
			r.beat()
		}
		switch {
		case err == nil:
		case werr != nil:
			return werr
		case errors.Is(err, ErrCountReached):
			return err
		case ctx.Err() != nil || errors.Is(err, io.EOF):
			return nil // the ticker closed the source, or it ran dry
		default:
			return fmt.Errorf("read %s: %w", r.Iface, err)
		}
	}
}

// tick flushes the file, writes the heartbeat and logs summaries until stop
// is closed; when ctx ends first it closes the source to end the loop.
func (r *Recorder) tick(ctx context.Context, stop <-chan struct{}) {
	flush := time.NewTicker(r.FlushEvery)
	defer flush.Stop()
	beat := time.NewTicker(r.HeartbeatEvery)
	defer beat.Stop()
	statusEvery := r.StatusEvery
	if statusEvery <= 0 {
		statusEvery = time.Second
	}
	// Drops are read from the kernel at this pace too, for the metric and
	// the heartbeat.
	status := time.NewTicker(statusEvery)
	defer status.Stop()
	var logC <-chan time.Time
	if r.LogEvery > 0 {
		t := time.NewTicker(r.LogEvery)
		defer t.Stop()
		logC = t.C
	}
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			if s, ok := r.Source.(Stopper); ok {
				s.Stop()
			} else {
				r.Source.Close()
			}
			return
		case <-flush.C:
			r.mu.Lock()
			err := r.Out.Flush()
			r.mu.Unlock()
			if err != nil {
				r.Log.Warn("flushing capture file", zap.Error(err))
			}
		case <-beat.C:
			r.beat()
		case <-status.C:
			r.countDrops()
			r.status()
		case <-logC:
			r.countDrops()
			r.Log.Info("capture summary", r.Summary().fields()...)
		}
	}
}

func (r *Recorder) beat() {
	if r.HeartbeatPath == "" {
		return
	}
	r.mu.Lock()
	file := r.Out.Current().Name
	r.mu.Unlock()
	hb := Heartbeat{Time: time.Now().UTC(), Iface: r.Iface, File: file, Packets: r.packets.Load(), Drops: r.drops.Load(), PID: os.Getpid()}
	if err := WriteHeartbeat(r.HeartbeatPath, hb); err != nil {
		r.Log.Warn("writing heartbeat", zap.Error(err))
	}
}

// status rewrites the status file, when there is one.
func (r *Recorder) status() {
	if r.StatusPath == "" {
		return
	}
	r.mu.Lock()
	file := r.Out.Current().Name
	r.mu.Unlock()
	st := Status{
		Iface: r.Iface, Filter: r.Filter.String(), File: file,
		Packets: r.packets.Load(), Bytes: r.bytes.Load(), Drops: r.drops.Load(),
		Started: r.start.UTC(), Updated: time.Now().UTC(),
	}
	if err := writeJSON(r.StatusPath, st); err != nil {
		r.Log.Warn("writing status", zap.Error(err))
	}
}

// countDrops brings the drops total and metric up to the source's count.
func (r *Recorder) countDrops() {
	d, ok := r.Source.(Dropper)
	if !ok {
		return
	}
	now := d.Drops()
	if prev := r.drops.Swap(now); now > prev {
		r.Metrics.Drops.Add(float64(now - prev))
	}
}
