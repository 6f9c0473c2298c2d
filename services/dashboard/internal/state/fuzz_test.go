package state

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/socklab/socklab/services/kit/lab"
)

// FuzzDecodeImpairments feeds PUT bodies from anyone on the host to
// DecodeImpairments, whole and in two reads split anywhere: what it accepts
// is within the limits, shows on the map and encodes as JSON.
func FuzzDecodeImpairments(f *testing.F) {
	f.Add([]byte(`[{"service":"autoreply","container":"socklab-autoreply-1","loss_percent":5,"rate":"1mbit","delay":"50ms","jitter":"10ms","since":"2026-12-04T23:00:00Z"}]`), 20)
	f.Add([]byte(`[]`), 1)
	f.Add([]byte(`[{"service":"x","loss_percent":1e309}]`), 5)
	f.Add([]byte(`null`), 2)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		cut = min(max(cut, 0), len(data))
		whole, errWhole := DecodeImpairments(bytes.NewReader(data))
		_, errHalves := DecodeImpairments(io.MultiReader(bytes.NewReader(data[:cut]), bytes.NewReader(data[cut:])))
		if (errWhole == nil) != (errHalves == nil) {
			t.Fatalf("whole: %v, in two reads: %v", errWhole, errHalves)
		}
		if errWhole != nil {
			return
		}
		if whole == nil || len(whole) > MaxImpairments {
			t.Fatalf("accepted %d entries (nil %v)", len(whole), whole == nil)
		}
		for _, i := range whole {
			if i.LossPercent < 0 || i.LossPercent > 100 || (i.Service == "" && i.Container == "") {
				t.Fatalf("accepted %+v", i)
			}
		}
		m := New(lab.Services())
		m.SetImpairments(whole, time.Unix(0, 0))
		if _, err := json.Marshal(m.State()); err != nil {
			t.Fatalf("state with %+v: %v", whole, err)
		}
	})
}
