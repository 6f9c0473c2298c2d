package server

import (
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socklab/socklab/services/kit/metrics"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

// Metrics are the tinytcp counters; build them with NewMetrics. Handlers
// tally each burst of commands locally and add it here once per flush: a
// shared atomic per command would cost more than answering one.
type Metrics struct {
	Commands     *prometheus.CounterVec
	Errors       *prometheus.CounterVec
	IdleTimeouts prometheus.Counter
	WriteErrors  prometheus.Counter
	latency      *batchHistogram

	// Children resolved once: a label lookup per add would cost a hash.
	byVerb [proto.NumVerbs]prometheus.Counter // by Verb-1
	byCode [len(proto.Codes)]prometheus.Counter
}

// NewMetrics registers the tinytcp metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := metrics.For(reg, "tinytcp")
	m := &Metrics{
		Commands: f.CounterVec("commands_total", "Commands answered successfully, by verb.", "verb"),
		Errors: f.CounterVec("errors_total",
			"ERROR replies sent, by code (SERVER_BUSY is counted in tinytcp_connections_refused_total).", "code"),
		IdleTimeouts: f.Counter("idle_timeouts_total",
			"Connections closed for sending no complete line within the idle timeout."),
		WriteErrors: f.Counter("write_errors_total",
			"Connections ended because replies could not be written (write timeout or reset)."),
		latency: newBatchHistogram(prometheus.NewDesc("tinytcp_command_seconds",
			"Time from a command line read to its reply flushed; the commands of a pipelined burst all count the burst's latency (that of its oldest).",
			nil, nil), metrics.LatencyBuckets),
	}
	reg.MustRegister(m.latency)
	for _, v := range proto.Verbs {
		m.byVerb[v-1] = m.Commands.WithLabelValues(v.String())
	}
	for i, c := range proto.Codes {
		m.byCode[i] = m.Errors.WithLabelValues(string(c))
	}
	return m
}

// tally counts one connection's commands since its last flush.
type tally struct {
	started time.Time           // when the oldest command of the burst was read
	n       int                 // commands in the burst
	verbs   [proto.NumVerbs]int // by Verb-1
	codes   [len(proto.Codes)]int
}

func (t *tally) verb(v proto.Verb) { t.verbs[v-1]++ }

func (t *tally) code(c proto.Code) {
	for i, d := range proto.Codes {
		if d == c {
			t.codes[i]++
			return
		}
	}
}

// add adds t, whose replies were flushed at now, to m and empties t. A nil
// *Metrics counts nothing.
func (m *Metrics) add(t *tally, now time.Time) {
	if m != nil {
		for i, n := range t.verbs {
			if n > 0 {
				m.byVerb[i].Add(float64(n))
			}
		}
		for i, n := range t.codes {
			if n > 0 {
				m.byCode[i].Add(float64(n))
			}
		}
		if t.n > 0 {
			m.latency.observeN(now.Sub(t.started).Seconds(), uint64(t.n))
		}
	}
	*t = tally{}
}

func (m *Metrics) writeError() {
	if m != nil {
		m.WriteErrors.Inc()
	}
}

func (m *Metrics) idleTimeout() {
	if m != nil {
		m.IdleTimeouts.Inc()
	}
}

// batchHistogram is a Prometheus histogram that takes many observations of
// one value at once, which client_golang's Histogram cannot.
type batchHistogram struct {
	desc    *prometheus.Desc
	upper   []float64       // bucket upper bounds, ascending
	counts  []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumBits atomic.Uint64   // math.Float64bits of the sum
}

func newBatchHistogram(desc *prometheus.Desc, buckets []float64) *batchHistogram {
	return &batchHistogram{
		desc:   desc,
		upper:  buckets,
		counts: make([]atomic.Uint64, len(buckets)+1),
	}
}

// observeN records n observations of v.
func (h *batchHistogram) observeN(v float64, n uint64) {
	// The first bound >= v: Prometheus buckets are "less or equal".
	h.counts[sort.SearchFloat64s(h.upper, v)].Add(n)
	for {
		old := h.sumBits.Load()
		sum := math.Float64frombits(old) + v*float64(n)
		if h.sumBits.CompareAndSwap(old, math.Float64bits(sum)) {
			return
		}
	}
}

// Describe implements prometheus.Collector.
func (h *batchHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect implements prometheus.Collector.
func (h *batchHistogram) Collect(ch chan<- prometheus.Metric) {
	buckets := make(map[float64]uint64, len(h.upper))
	var cum uint64
	for i, ub := range h.upper {
		cum += h.counts[i].Load()
		buckets[ub] = cum
	}
	cum += h.counts[len(h.upper)].Load()
	ch <- prometheus.MustNewConstHistogram(h.desc, cum, math.Float64frombits(h.sumBits.Load()), buckets)
}
