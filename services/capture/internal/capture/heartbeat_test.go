package capture

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckHeartbeat(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "socklab-x.pcap"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path := HeartbeatPath(dir, "socklab")
	if filepath.Base(path) != ".socklab.heartbeat" {
		t.Errorf("HeartbeatPath = %s", path)
	}
	tests := []struct {
		name    string
		write   func()
		wantErr string
	}{
		{"missing", func() { os.Remove(path) }, "no heartbeat at"},
		{"fresh", func() { WriteHeartbeat(path, Heartbeat{Time: t0, File: "socklab-x.pcap"}) }, ""},
		{"stale", func() { WriteHeartbeat(path, Heartbeat{Time: t0.Add(-16 * time.Second), File: "socklab-x.pcap"}) }, "is 16s old (at most 15s)"},
		{"file gone", func() { WriteHeartbeat(path, Heartbeat{Time: t0, File: "socklab-y.pcap"}) }, "socklab-y.pcap: stat"},
		{"garbage", func() { os.WriteFile(path, []byte("{"), 0o644) }, "unexpected end of JSON"},
		{"removed", func() { WriteHeartbeat(path, Heartbeat{Time: t0, File: "socklab-x.pcap"}); RemoveHeartbeat(path) }, "no heartbeat at"},
	}
	for _, tt := range tests {
		tt.write()
		err := CheckHeartbeat(path, 15*time.Second, t0)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: CheckHeartbeat = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
	if err := RemoveHeartbeat(path); err != nil {
		t.Errorf("removing a missing heartbeat = %v", err)
	}
}
