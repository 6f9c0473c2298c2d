package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Heartbeat is what a running capture writes to its heartbeat file, for the
// healthcheck of a FROM scratch container: no shell, a read-only root, and
// only the capture directory to share between the two processes.
type Heartbeat struct {
	Time    time.Time `json:"time"`
	Iface   string    `json:"iface"`
	File    string    `json:"file"` // the pcap file being written, in the same directory
	Packets int64     `json:"packets"`
	Drops   uint64    `json:"drops"` // dropped by the kernel: its ring was full
	PID     int       `json:"pid"`
}

// HeartbeatPath is where a capture with prefix writes its heartbeat in dir.
func HeartbeatPath(dir, prefix string) string {
	return filepath.Join(dir, "."+prefix+".heartbeat")
}

// WriteHeartbeat replaces the heartbeat file atomically.
func WriteHeartbeat(path string, hb Heartbeat) error { return writeJSON(path, hb) }

// writeJSON replaces the file at path with v in JSON, atomically: a reader
// sees the old file or the new one, never a part.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// RemoveHeartbeat deletes the heartbeat file, so that the healthcheck of a
// stopped capture fails at once.
func RemoveHeartbeat(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// CheckHeartbeat succeeds when the heartbeat at path is younger than maxAge
// at now and the file it names exists.
func CheckHeartbeat(path string, maxAge time.Duration, now time.Time) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no heartbeat at %s: capture is not running, or still waiting for its interface", path)
	}
	if err != nil {
		return err
	}
	var hb Heartbeat
	if err := json.Unmarshal(b, &hb); err != nil {
		return fmt.Errorf("heartbeat %s: %w", path, err)
	}
	if age := now.Sub(hb.Time); age > maxAge {
		return fmt.Errorf("heartbeat %s is %v old (at most %v): capture is stuck or gone", path, age.Round(time.Second), maxAge)
	}
	file := filepath.Join(filepath.Dir(path), hb.File)
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("heartbeat names %s: %w", file, err)
	}
	return nil
}
