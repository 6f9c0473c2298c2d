package result

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/latency"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// FuzzDecode feeds result files that may come from anywhere (a shared
// directory) to Decode, whole and as two reads split anywhere: whatever it
// accepts must merge and encode without panicking and read back the same.
func FuzzDecode(f *testing.F) {
	r := &Result{Version: Version, ID: "seed", Scenario: "x", Model: ModelClosed,
		Scenarios: []Scenario{{Name: "x", Counts: engine.Counts{Requests: 3, Successes: 2, Errors: map[string]int64{"loss": 1}}, Datagram: true}},
		Spans:     []Span{{Start: time.Unix(0, 0), End: time.Unix(2, 0)}},
	}
	rec := latency.New()
	rec.Record(time.Millisecond)
	rec.Record(2 * time.Millisecond)
	r.Histogram = export(rec)
	r.Scenarios[0].Histogram = export(rec)
	r.derive(rec)
	var buf bytes.Buffer
	r.Encode(&buf)
	f.Add(buf.Bytes(), 10)
	f.Add([]byte(`{"version":1,"histogram":{"LowestTrackableValue":1,"HighestTrackableValue":600000000,"SignificantFigures":3,"Counts":[0,5]}}`), 30)
	f.Add([]byte(`{"version":1,"histogram":{"LowestTrackableValue":1,"HighestTrackableValue":2,"SignificantFigures":9}}`), 5)
	f.Add([]byte(`{"version":1}`), 3)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		cut = min(max(cut, 0), len(data))
		whole, errWhole := Decode(bytes.NewReader(data))
		_, errHalves := Decode(io.MultiReader(bytes.NewReader(data[:cut]), bytes.NewReader(data[cut:])))
		if (errWhole == nil) != (errHalves == nil) {
			t.Fatalf("whole: %v, in two reads: %v", errWhole, errHalves)
		}
		if errWhole != nil {
			return
		}
		m, err := Merge(whole)
		if err != nil {
			return // latencies out of range are refused, not a crash
		}
		var out bytes.Buffer
		if err := m.Encode(&out); err != nil {
			t.Fatalf("Encode: %v", err)
		}
		back, err := Decode(&out)
		if err != nil {
			t.Fatalf("a merged result does not read back: %v\n%s", err, out.String())
		}
		if back.Requests != whole.Requests || back.Latency != m.Latency {
			t.Fatalf("round trip changed the result")
		}
		m.WriteText(io.Discard)
	})
}
