package web

import (
	"bufio"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socklab/socklab/services/dashboard/internal/state"
	"github.com/socklab/socklab/services/kit/lab"
)

func newServer(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	s := &Server{Model: state.New(lab.Services()), Hub: NewHub(),
		Now: func() time.Time { return time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC) }}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Hub.Close(); ts.Close() })
	return s, ts
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestPage(t *testing.T) {
	_, ts := newServer(t)
	tests := []struct {
		path, ctype, want string
	}{
		{"/", "text/html", `<script src="static/dashboard.js">`},
		{"/static/dashboard.js", "javascript", "new EventSource(\"api/events\")"},
		{"/static/dashboard.css", "text/css", ".node"},
	}
	for _, tt := range tests {
		resp, body := get(t, ts.URL+tt.path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tt.ctype) || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s: %s %q, body lacks %q", tt.path, resp.Status, resp.Header.Get("Content-Type"), tt.want)
		}
	}
	if resp, _ := get(t, ts.URL+"/nosuch"); resp.StatusCode != 404 {
		t.Errorf("GET /nosuch: %s", resp.Status)
	}
}

// Everything the page needs is in the binary: no file refers to anything
// outside the dashboard.
func TestPageFetchesNothingOutside(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(path)
		if err != nil {
			return err
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s refers to %s", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestState(t *testing.T) {
	_, ts := newServer(t)
	resp, body := get(t, ts.URL+"/api/state")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/state: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var st state.State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 10 || st.Nodes[0].Name != "autoreply" {
		t.Errorf("state nodes = %+v", st.Nodes)
	}
}

func put(t *testing.T, url, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestPutImpairments(t *testing.T) {
	s, ts := newServer(t)
	url := ts.URL + "/api/impairments"
	tests := []struct {
		body string
		want int
	}{
		{`[{"service":"tinytcp","container":"socklab-tinytcp-1","loss_percent":2.5,"rate":"","delay":"20ms","jitter":"","since":"2026-12-04T23:00:00Z"}]`, 204},
		{`[{"service":"tinytcp","loss_percent":-1}]`, 400},
		{`not json`, 400},
		{`[{"service":"` + strings.Repeat("x", MaxImpairmentsBody) + `"}]`, 413},
	}
	for _, tt := range tests {
		if resp := put(t, url, tt.body); resp.StatusCode != tt.want {
			t.Errorf("PUT %.50q: %s, want %d", tt.body, resp.Status, tt.want)
		}
	}
	st := s.Model.State()
	if len(st.Impairments.List) != 1 || st.Impairments.List[0].LossPercent != 2.5 || st.Impairments.Updated == nil {
		t.Errorf("impairments after the PUTs = %+v, want the valid one only", st.Impairments)
	}
	// The state says so.
	_, body := get(t, ts.URL+"/api/state")
	if !strings.Contains(body, `"loss_percent":2.5`) || !strings.Contains(body, `"impairment":"loss 2.5%, delay 20ms"`) {
		t.Errorf("/api/state lacks the impairment: %.300s", body)
	}
	// The whole list each time: an empty one clears it.
	if resp := put(t, url, `[]`); resp.StatusCode != 204 || len(s.Model.State().Impairments.List) != 0 {
		t.Errorf("PUT []: %s, %d left", resp.Status, len(s.Model.State().Impairments.List))
	}
	if resp, _ := get(t, url); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %s", url, resp.Status)
	}
}

// readEvent reads one server-sent event's data.
func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			return data
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data += d
		}
	}
}

func TestEvents(t *testing.T) {
	s, ts := newServer(t)
	resp, err := http.Get(ts.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	var st state.State
	if err := json.Unmarshal([]byte(readEvent(t, r)), &st); err != nil || len(st.Nodes) == 0 {
		t.Fatalf("first event: %v, %+v", err, st)
	}
	s.Hub.Publish([]byte(`{"round":2}`))
	if got := readEvent(t, r); got != `{"round":2}` {
		t.Errorf("second event = %q", got)
	}
	// Shutdown closes the hub: the stream ends.
	s.Hub.Close()
	if _, err := io.ReadAll(r); err != nil {
		t.Errorf("stream after close: %v", err)
	}
	if _, _, ok := s.Hub.Join(); ok {
		t.Error("a closed hub took a stream")
	}
}

func TestHubKeepsTheNewestAndBoundsClients(t *testing.T) {
	h := NewHub()
	ch, leave, ok := h.Join()
	if !ok {
		t.Fatal("Join refused")
	}
	h.Publish([]byte("1"))
	h.Publish([]byte("2")) // the reader is slow: 1 is dropped
	if got := string(<-ch); got != "2" {
		t.Errorf("a slow stream got %q, want the newest state 2", got)
	}
	leave()
	leave() // twice is harmless
	var leaves []func()
	for range MaxClients {
		_, l, ok := h.Join()
		if !ok {
			t.Fatal("Join refused below MaxClients")
		}
		leaves = append(leaves, l)
	}
	if _, _, ok := h.Join(); ok {
		t.Errorf("Join took more than %d streams", MaxClients)
	}
	if h.Clients() != MaxClients {
		t.Errorf("Clients = %d", h.Clients())
	}
	for _, l := range leaves {
		l()
	}
	if h.Clients() != 0 {
		t.Errorf("Clients after leaving = %d", h.Clients())
	}
}
