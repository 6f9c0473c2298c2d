package netserve

import "github.com/prometheus/client_golang/prometheus"

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
	m := &Metrics{
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "connections_total",
			Help: "TCP connections accepted and served.",
		}),
		Active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connections_active",
			Help: "TCP connections being served now.",
		}),
		Refused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "connections_refused_total",
			Help: "TCP connections refused because MaxConns were being served.",
		}),
		Oversized: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "datagrams_oversized_total",
			Help: "UDP datagrams dropped for exceeding the read buffer.",
		}),
	}
	reg.MustRegister(m.Accepted, m.Active, m.Refused, m.Oversized)
	return m
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
