package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Factory declares the metrics of one namespace (a service's name) and
// registers each with its Registerer as it builds it, so that a service's
// NewMetrics says one line per metric: its name without the namespace, its
// help and its labels. Registering a name twice panics, as
// Registerer.MustRegister does.
type Factory struct {
	namespace string
	auto      promauto.Factory
}

// For returns the Factory of namespace registering with reg; a nil reg
// registers nothing (counters for a handler that reports nowhere).
func For(reg prometheus.Registerer, namespace string) Factory {
	return Factory{namespace: namespace, auto: promauto.With(reg)}
}

// Counter declares the counter namespace_name.
func (f Factory) Counter(name, help string) prometheus.Counter {
	return f.auto.NewCounter(prometheus.CounterOpts{Namespace: f.namespace, Name: name, Help: help})
}

// CounterVec declares the counter namespace_name with labels.
func (f Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return f.auto.NewCounterVec(prometheus.CounterOpts{Namespace: f.namespace, Name: name, Help: help}, labels)
}

// CounterFunc declares the counter namespace_name whose value read returns
// at each scrape.
func (f Factory) CounterFunc(name, help string, read func() float64) prometheus.CounterFunc {
	return f.auto.NewCounterFunc(prometheus.CounterOpts{Namespace: f.namespace, Name: name, Help: help}, read)
}

// Gauge declares the gauge namespace_name.
func (f Factory) Gauge(name, help string) prometheus.Gauge {
	return f.auto.NewGauge(prometheus.GaugeOpts{Namespace: f.namespace, Name: name, Help: help})
}

// GaugeVec declares the gauge namespace_name with labels.
func (f Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return f.auto.NewGaugeVec(prometheus.GaugeOpts{Namespace: f.namespace, Name: name, Help: help}, labels)
}

// GaugeFunc declares the gauge namespace_name whose value read returns at
// each scrape.
func (f Factory) GaugeFunc(name, help string, read func() float64) prometheus.GaugeFunc {
	return f.auto.NewGaugeFunc(prometheus.GaugeOpts{Namespace: f.namespace, Name: name, Help: help}, read)
}

// Histogram declares the histogram namespace_name with buckets (their upper
// bounds; LatencyBuckets for a latency).
func (f Factory) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return f.auto.NewHistogram(prometheus.HistogramOpts{Namespace: f.namespace, Name: name, Help: help, Buckets: buckets})
}

// HistogramVec declares the histogram namespace_name with buckets and
// labels.
func (f Factory) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return f.auto.NewHistogramVec(prometheus.HistogramOpts{Namespace: f.namespace, Name: name, Help: help, Buckets: buckets}, labels)
}
