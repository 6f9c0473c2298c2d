package server

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/metrics"
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
	f := metrics.For(reg, "filestream")
	return &Metrics{
		Requests:  f.CounterVec("requests_total", "Requests received, by protocol and type.", "proto", "type"),
		Errors:    f.CounterVec("errors_total", "ERROR replies sent, by protocol and code.", "proto", "code"),
		FileBytes: f.CounterVec("file_bytes_total", "File content bytes sent, by protocol.", "proto"),
		Packets:   f.CounterVec("stream_packets_total", "Stream packets sent, by protocol.", "proto"),
		Active:    f.GaugeVec("transfers_active", "Files and streams being sent, by protocol.", "proto"),
		Aborted: f.CounterVec("transfers_aborted_total",
			"Files and streams cut short (client gone, QUIT, shutdown), by protocol.", "proto"),
		Retries:  f.Counter("udp_retries_total", "RETRY cookies sent to unvalidated UDP addresses."),
		Withheld: f.Counter("udp_withheld_total", "UDP replies not sent because they exceeded 3x an unvalidated request."),
	}
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
