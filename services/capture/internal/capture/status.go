package capture

import (
	"path/filepath"
	"time"
)

// StatusFile is the name of the status file in the capture directory.
const StatusFile = "capture-status.json"

// StatusPath is where a capture writing into dir keeps its status file.
func StatusPath(dir string) string { return filepath.Join(dir, StatusFile) }

// Status is what the status file says: the dashboard's view of a running
// capture, rewritten (write, then rename) every second. Times are UTC,
// RFC 3339. The file stays after the capture stops, with its last figures:
// Updated then stops moving.
type Status struct {
	Iface   string    `json:"iface"`
	Filter  string    `json:"filter"` // as parsed; "" records everything
	File    string    `json:"file"`   // base name of the pcap file being written
	Packets int64     `json:"packets"`
	Bytes   int64     `json:"bytes"` // packet bytes written, after the snap length
	Drops   uint64    `json:"drops"` // packets the kernel dropped: its ring was full
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
}
