package capture

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/socklab/socklab/services/kit/metrics"
)

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
	f := metrics.For(reg, "capture")
	return &Metrics{
		Packets:  f.Counter("packets_total", "Packets written to pcap files."),
		Bytes:    f.Counter("bytes_total", "Captured bytes written to pcap files (packet data after the snap length, without pcap headers)."),
		Filtered: f.Counter("filtered_packets_total", "Packets read from the interface and rejected by the filter in user space (the kernel's socket filter drops most before they are read, uncounted)."),
		Rotated:  f.Counter("files_rotated_total", "Files closed to start a new one (by size or age)."),
		Deleted:  f.Counter("files_deleted_total", "Old files deleted to keep at most CAPTURE_KEEP."),
		Drops:    f.Counter("kernel_drops_total", "Packets the kernel dropped because the capture's ring was full."),
	}
}
