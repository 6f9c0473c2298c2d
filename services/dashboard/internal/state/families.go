package state

import (
	"math"
	"sort"

	dto "github.com/prometheus/client_model/go"
)

// Families names, for a lab service, the metrics the dashboard reads from
// its /metrics page. Each service counts its work in its own words
// (messages, commands, requests); this table is where they meet.
type Families struct {
	// Requests are counters whose sum is the requests handled.
	Requests []string
	// Errors are counters whose sum is the requests that failed.
	Errors []string
	// Latency is a histogram of request latency in seconds ("": none).
	Latency string
	// Conns are gauges whose sum is the connections open now.
	Conns []string
}

// ServiceFamilies maps a lab service name to the metrics it serves.
var ServiceFamilies = map[string]Families{
	"autoreply": {
		Requests: []string{"autoreply_messages_total"},
		Errors:   []string{"autoreply_errors_total"},
		Latency:  "autoreply_reply_seconds",
		Conns:    []string{"autoreply_connections_active"},
	},
	"tinytcp": {
		// commands_total counts the commands answered rightly, errors_total
		// the ERROR replies: together, every command.
		Requests: []string{"tinytcp_commands_total", "tinytcp_errors_total"},
		Errors:   []string{"tinytcp_errors_total"},
		Latency:  "tinytcp_command_seconds",
		Conns:    []string{"tinytcp_connections_active"},
	},
	"filestream": {
		Requests: []string{"filestream_requests_total"},
		Errors:   []string{"filestream_errors_total"},
		Conns:    []string{"filestream_connections_active"},
	},
	"connid": {
		Requests: []string{"connid_requests_total"},
		Errors:   []string{"connid_errors_total", "connid_bad_requests_total"},
		Conns:    []string{"connid_connections_active"},
	},
	"moviedb": {
		Requests: []string{"moviedb_requests_total"},
		Errors:   []string{"moviedb_errors_total"},
		Latency:  "moviedb_request_seconds",
		Conns:    []string{"moviedb_connections_active"},
	},
	"loadgen": {
		Requests: []string{"loadgen_requests_total"},
		Errors:   []string{"loadgen_errors_total"},
		Latency:  "loadgen_request_seconds",
	},
}

// Loadgen's own metrics, by scenario.
const (
	loadgenRequests  = "loadgen_requests_total"
	loadgenSuccesses = "loadgen_successes_total"
	loadgenErrors    = "loadgen_errors_total"
	loadgenLatency   = "loadgen_request_seconds"
	loadgenTarget    = "loadgen_target_rate"
)

// value reads a counter's, gauge's or untyped metric's value.
func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// sum adds the values of every metric of the named families.
func sum(fams map[string]*dto.MetricFamily, names []string) (float64, bool) {
	total, found := 0.0, false
	for _, n := range names {
		f, ok := fams[n]
		if !ok {
			continue
		}
		found = true
		for _, m := range f.GetMetric() {
			total += value(m)
		}
	}
	return total, found
}

// label returns the value of label name on m.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// hist is a cumulative histogram: counts at or below each bound.
type hist struct {
	bounds []float64 // ascending, without +Inf
	cum    []float64 // by bound
	count  float64   // everything, +Inf included
}

// addMetric adds a Prometheus histogram into h (bounds must agree; the
// lab's services all use kit/metrics.LatencyBuckets).
func (h *hist) addMetric(m *dto.Histogram) {
	if h.bounds == nil {
		for _, b := range m.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) {
				h.bounds = append(h.bounds, b.GetUpperBound())
			}
		}
		sort.Float64s(h.bounds)
		h.cum = make([]float64, len(h.bounds))
	}
	for _, b := range m.GetBucket() {
		if i := sort.SearchFloat64s(h.bounds, b.GetUpperBound()); i < len(h.bounds) && h.bounds[i] == b.GetUpperBound() {
			h.cum[i] += float64(b.GetCumulativeCount())
		}
	}
	h.count += float64(m.GetSampleCount())
}

// add adds o into h.
func (h *hist) add(o hist) {
	if o.bounds == nil {
		return
	}
	if h.bounds == nil {
		h.bounds = o.bounds
		h.cum = make([]float64, len(o.bounds))
	}
	if len(h.cum) != len(o.cum) {
		return
	}
	for i := range h.cum {
		h.cum[i] += o.cum[i]
	}
	h.count += o.count
}

// since returns what h holds beyond old (a counter reset, a new process,
// makes it all of h).
func (h hist) since(old hist) hist {
	if old.bounds == nil || len(old.cum) != len(h.cum) || h.count < old.count {
		return h
	}
	d := hist{bounds: h.bounds, cum: make([]float64, len(h.cum)), count: h.count - old.count}
	for i := range h.cum {
		d.cum[i] = h.cum[i] - old.cum[i]
	}
	return d
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear within the bucket that holds it. ok is false without data.
// A quantile in the +Inf bucket is reported as the highest finite bound.
func (h hist) quantile(q float64) (float64, bool) {
	if h.count <= 0 || len(h.bounds) == 0 {
		return 0, false
	}
	rank := q * h.count
	lower, below := 0.0, 0.0
	for i, b := range h.bounds {
		if h.cum[i] >= rank {
			in := h.cum[i] - below
			if in <= 0 {
				return b, true
			}
			return lower + (b-lower)*(rank-below)/in, true
		}
		lower, below = b, h.cum[i]
	}
	return h.bounds[len(h.bounds)-1], true
}

// histogramOf merges every metric of the named histogram family.
func histogramOf(fams map[string]*dto.MetricFamily, name string) (hist, bool) {
	var h hist
	f, ok := fams[name]
	if !ok || name == "" {
		return h, false
	}
	for _, m := range f.GetMetric() {
		if m.GetHistogram() != nil {
			h.addMetric(m.GetHistogram())
		}
	}
	return h, true
}
