package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFactoryDeclares checks that each kind is registered as it is declared,
// under the namespace, with its help, labels and buckets.
func TestFactoryDeclares(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := For(reg, "svc")

	f.Counter("plain_total", "A counter.").Add(2)
	f.CounterVec("by_proto_total", "A counter by protocol.", "proto").WithLabelValues("udp").Inc()
	f.CounterVec("by_two_total", "A counter by protocol and kind.", "proto", "kind").WithLabelValues("tcp", "io").Add(3)
	f.CounterFunc("read_total", "A counter read at each scrape.", func() float64 { return 7 })
	f.Gauge("level", "A gauge.").Set(4)
	f.GaugeVec("level_by", "A gauge by quantile.", "quantile").WithLabelValues("0.5").Set(0.25)
	f.GaugeFunc("read", "A gauge read at each scrape.", func() float64 { return 5 })
	f.Histogram("wait_seconds", "A histogram.", []float64{0.1, 1}).Observe(0.5)
	f.HistogramVec("op_seconds", "A histogram by op.", []float64{0.1, 1}, "op").WithLabelValues("get").Observe(0.05)

	want := `
# HELP svc_by_proto_total A counter by protocol.
# TYPE svc_by_proto_total counter
svc_by_proto_total{proto="udp"} 1
# HELP svc_by_two_total A counter by protocol and kind.
# TYPE svc_by_two_total counter
svc_by_two_total{kind="io",proto="tcp"} 3
# HELP svc_level A gauge.
# TYPE svc_level gauge
svc_level 4
# HELP svc_level_by A gauge by quantile.
# TYPE svc_level_by gauge
svc_level_by{quantile="0.5"} 0.25
# HELP svc_op_seconds A histogram by op.
# TYPE svc_op_seconds histogram
svc_op_seconds_bucket{op="get",le="0.1"} 1
svc_op_seconds_bucket{op="get",le="1"} 1
svc_op_seconds_bucket{op="get",le="+Inf"} 1
svc_op_seconds_sum{op="get"} 0.05
svc_op_seconds_count{op="get"} 1
# HELP svc_plain_total A counter.
# TYPE svc_plain_total counter
svc_plain_total 2
# HELP svc_read A gauge read at each scrape.
# TYPE svc_read gauge
svc_read 5
# HELP svc_read_total A counter read at each scrape.
# TYPE svc_read_total counter
svc_read_total 7
# HELP svc_wait_seconds A histogram.
# TYPE svc_wait_seconds histogram
svc_wait_seconds_bucket{le="0.1"} 0
svc_wait_seconds_bucket{le="1"} 1
svc_wait_seconds_bucket{le="+Inf"} 1
svc_wait_seconds_sum 0.5
svc_wait_seconds_count 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestFactoryNilRegisterer checks that a nil Registerer gives working
// metrics registered nowhere: declaring the same name twice does not panic.
func TestFactoryNilRegisterer(t *testing.T) {
	f := For(nil, "svc")
	c := f.Counter("plain_total", "A counter.")
	f.Counter("plain_total", "A counter.")
	c.Add(3)
	if got := testutil.ToFloat64(c); got != 3 {
		t.Errorf("counter = %v, want 3", got)
	}
}

// TestFactoryDuplicatePanics checks that a name declared twice on one
// registry panics, as MustRegister does, rather than one being lost.
func TestFactoryDuplicatePanics(t *testing.T) {
	f := For(prometheus.NewRegistry(), "svc")
	f.Counter("plain_total", "A counter.")
	defer func() {
		if recover() == nil {
			t.Error("second declaration of svc_plain_total did not panic")
		}
	}()
	f.Counter("plain_total", "A counter.")
}
