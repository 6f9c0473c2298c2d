package server

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socklab/socklab/services/filestream/proto"
)

// Metrics are the filestream counters; build them with NewMetrics.
type Metrics struct {
	Requests  *prometheus.CounterVec
	Errors    *prometheus.CounterVec
	FileBytes *prometheus.CounterVec
	Packets   *prometheus.CounterVec
	Active    *prometheus.GaugeVec
	Aborted   *prometheus.CounterVec
	Retries   prometheus.Counter
	Withheld  prometheus.Counter
}

// NewMetrics registers the filestream metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filestream", Name: "requests_total", Help: "Requests received, by protocol and type.",
		}, []string{"proto", "type"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filestream", Name: "errors_total", Help: "ERROR replies sent, by protocol and code.",
		}, []string{"proto", "code"}),
		FileBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filestream", Name: "file_bytes_total", Help: "File content bytes sent, by protocol.",
		}, []string{"proto"}),
		Packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filestream", Name: "stream_packets_total", Help: "Stream packets sent, by protocol.",
		}, []string{"proto"}),
		Active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "filestream", Name: "transfers_active", Help: "Files and streams being sent, by protocol.",
		}, []string{"proto"}),
		Aborted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "filestream", Name: "transfers_aborted_total", Help: "Files and streams cut short (client gone, QUIT, shutdown), by protocol.",
		}, []string{"proto"}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "filestream", Name: "udp_retries_total", Help: "RETRY cookies sent to unvalidated UDP addresses.",
		}),
		Withheld: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "filestream", Name: "udp_withheld_total", Help: "UDP replies not sent because they exceeded 3x an unvalidated request.",
		}),
	}
	reg.MustRegister(m.Requests, m.Errors, m.FileBytes, m.Packets, m.Active, m.Aborted, m.Retries, m.Withheld)
	return m
}

// protoMetrics are the children of one protocol, resolved once so that the
// hot paths do no label lookups.
type protoMetrics struct {
	echo, file, stream, quit prometheus.Counter
	fileBytes, packets       prometheus.Counter
	active                   prometheus.Gauge
	aborted                  prometheus.Counter
	errs                     map[proto.Code]prometheus.Counter
}

func (m *Metrics) forProto(p string) *protoMetrics {
	pm := &protoMetrics{
		echo:      m.Requests.WithLabelValues(p, "echo"),
		file:      m.Requests.WithLabelValues(p, "file"),
		stream:    m.Requests.WithLabelValues(p, "stream"),
		quit:      m.Requests.WithLabelValues(p, "quit"),
		fileBytes: m.FileBytes.WithLabelValues(p),
		packets:   m.Packets.WithLabelValues(p),
		active:    m.Active.WithLabelValues(p),
		aborted:   m.Aborted.WithLabelValues(p),
		errs:      map[proto.Code]prometheus.Counter{},
	}
	for c := proto.CodeMalformed; c <= proto.CodeShutdown; c++ {
		pm.errs[c] = m.Errors.WithLabelValues(p, strings.ReplaceAll(c.String(), " ", "_"))
	}
	return pm
}

func (pm *protoMetrics) error(c proto.Code) {
	if e, ok := pm.errs[c]; ok {
		e.Inc()
	}
}
