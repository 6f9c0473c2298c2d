package report

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/impair/internal/shape"
)

func TestNewEntry(t *testing.T) {
	since := time.Date(2026, 12, 4, 23, 0, 0, 0, time.FixedZone("X", 3600))
	tests := []struct {
		give     shape.Settings
		want     Entry
		describe string
	}{
		{shape.Settings{LossPercent: 10}, Entry{LossPercent: 10}, "loss 10%"},
		{shape.Settings{Rate: 2e6, Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond},
			Entry{Rate: "2mbit", Delay: "40ms", Jitter: "10ms"}, "rate 2mbit, delay 40ms, jitter 10ms"},
		{shape.Settings{LossPercent: 0.5, Rate: 500e3}, Entry{LossPercent: 0.5, Rate: "500kbit"}, "loss 0.5%, rate 500kbit"},
	}
	for _, tt := range tests {
		got := NewEntry("filestream", "socklab-filestream-1", shape.State{Settings: tt.give, Since: since})
		tt.want.Service, tt.want.Container, tt.want.Since = "filestream", "socklab-filestream-1", "2026-12-04T22:00:00Z"
		if got != tt.want {
			t.Errorf("NewEntry(%+v) = %+v, want %+v", tt.give, got, tt.want)
		}
		if d := got.Describe(); d != tt.describe {
			t.Errorf("Describe() = %q, want %q", d, tt.describe)
		}
	}
}

func TestWriteJSONEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, nil); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("WriteJSON(nil) = %q, %v, want []", b.String(), err)
	}
}

func TestPush(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != "/api/impairments" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	defer srv.Close()
	entries := []Entry{{Service: "connid", Container: "c", LossPercent: 100, Since: "2026-12-04T22:00:00Z"}}
	if err := Push(context.Background(), srv.Client(), srv.URL+"/", entries, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"service": "connid"`, `"loss_percent": 100`, `"rate": ""`, `"since": "2026-12-04T22:00:00Z"`} {
		if !strings.Contains(got, want) {
			t.Errorf("dashboard got %s, want %s in it", got, want)
		}
	}
	// A dashboard that never answers costs the timeout, not more.
	// (It reads the body first: only then does the server notice the
	// client hanging up and end the request's context.)
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer stall.Close()
	if err := Push(context.Background(), stall.Client(), stall.URL, entries, 50*time.Millisecond); err == nil {
		t.Error("Push to a stalled dashboard returned no error")
	}
}
