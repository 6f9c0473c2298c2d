package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/dashboard/internal/scrape"
	"github.com/socklab/socklab/services/dashboard/internal/state"
	"github.com/socklab/socklab/services/kit/lab"
)

// Two rounds against a fake tinytcp whose counter grows: the published
// state shows it up with a rate, and the capture's status file.
func TestRounds(t *testing.T) {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE tinytcp_commands_total counter\ntinytcp_commands_total{verb=\"ECHO\"} %d\n", n.Add(100))
	}))
	defer ts.Close()
	dir := t.TempDir()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	status := `{"iface":"socklab0","filter":"","file":"/captures/a.pcap","packets":7,"bytes":700,"drops":0,"started":"` + now + `","updated":"` + now + `"}`
	if err := os.WriteFile(filepath.Join(dir, state.CaptureStatusFile), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	var published [][]byte
	var observed []int
	c := &Collector{
		Interval: time.Second,
		Targets: func(context.Context) []scrape.Target {
			return []scrape.Target{{Node: "tinytcp", Service: "tinytcp", Addr: strings.TrimPrefix(ts.URL, "http://")}}
		},
		Scraper:     &scrape.Scraper{Timeout: 10 * time.Second},
		Model:       state.New(lab.Services()),
		CapturesDir: dir,
		Publish:     func(b []byte) { published = append(published, b) },
		Observe:     func(_ time.Duration, failed int) { observed = append(observed, failed) },
		Log:         zap.NewNop(),
	}
	c.Round(t.Context())
	c.Round(t.Context())
	if len(published) != 2 || len(observed) != 2 || observed[0] != 0 || observed[1] != 0 {
		t.Fatalf("published %d states, observed %v", len(published), observed)
	}
	var st state.State
	if err := json.Unmarshal(published[1], &st); err != nil {
		t.Fatal(err)
	}
	var tt state.Node
	for _, nd := range st.Nodes {
		if nd.Name == "tinytcp" {
			tt = nd
		}
	}
	if !tt.Up || tt.Live.Rate == nil || *tt.Live.Rate <= 0 {
		t.Errorf("tinytcp after two rounds: %+v", tt)
	}
	if !st.Capture.Recording || st.Capture.Status.Packets != 7 || st.Scrape.Rounds != 2 || st.Scrape.Targets != 1 {
		t.Errorf("capture %+v, scrape %+v", st.Capture, st.Scrape)
	}
}
