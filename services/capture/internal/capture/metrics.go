package capture

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the capture did. All are counters since start.
type Metrics struct {
	Packets  prometheus.Counter // packets written
	Bytes    prometheus.Counter // captured bytes written (after snaplen)
	Filtered prometheus.Counter // packets read but rejected by the filter
	Rotated  prometheus.Counter // files closed to start a new one
	Deleted  prometheus.Counter // old files deleted to honour Keep
	Drops    prometheus.Counter // packets the kernel dropped (its ring was full)
}

// NewMetrics registers capture's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "capture", Name: name, Help: help})
	}
	m := &Metrics{
		Packets:  c("packets_total", "Packets written to pcap files."),
		Bytes:    c("bytes_total", "Captured bytes written to pcap files (packet data after the snap length, without pcap headers)."),
		Filtered: c("filtered_packets_total", "Packets read from the interface and rejected by the filter in user space (the kernel's socket filter drops most before they are read, uncounted)."),
		Rotated:  c("files_rotated_total", "Files closed to start a new one (by size or age)."),
		Deleted:  c("files_deleted_total", "Old files deleted to keep at most CAPTURE_KEEP."),
		Drops:    c("kernel_drops_total", "Packets the kernel dropped because the capture's ring was full."),
	}
	reg.MustRegister(m.Packets, m.Bytes, m.Filtered, m.Rotated, m.Deleted, m.Drops)
	return m
}
