package netserve

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/socklab/socklab/services/kit/metrics"
)

// Metrics counts what the shared loops see; a nil *Metrics counts nothing.
type Metrics struct {
	Accepted  prometheus.Counter
	Active    prometheus.Gauge
	Refused   prometheus.Counter
	Oversized prometheus.Counter
}

// NewMetrics registers the loop metrics under namespace (the service name)
// with reg.
func NewMetrics(reg prometheus.Registerer, namespace string) *Metrics {
	f := metrics.For(reg, namespace)
	return &Metrics{
		Accepted:  f.Counter("connections_total", "TCP connections accepted and served."),
		Active:    f.Gauge("connections_active", "TCP connections being served now."),
		Refused:   f.Counter("connections_refused_total", "TCP connections refused because MaxConns were being served."),
		Oversized: f.Counter("datagrams_oversized_total", "UDP datagrams dropped for exceeding the read buffer."),
	}
}

func (m *Metrics) opened() {
	if m != nil {
		m.Accepted.Inc()
		m.Active.Inc()
	}
}

func (m *Metrics) closed() {
	if m != nil {
		m.Active.Dec()
	}
}

func (m *Metrics) refused() {
	if m != nil {
		m.Refused.Inc()
	}
}

func (m *Metrics) oversized() {
	if m != nil {
		m.Oversized.Inc()
	}
}
