package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/socklab/socklab/services/kit/lab"
)

// CaptureStatusFile is the file the capture rewrites every second (write,
// then rename) in its captures directory: the capture runs on the host's
// network, where the dashboard cannot scrape it.
const CaptureStatusFile = "capture-status.json"

// RecordingWithin is how recent the status must be for the capture to
// count as recording.
const RecordingWithin = 5 * time.Second

// CaptureStatus is the capture's status file.
type CaptureStatus struct {
	Iface   string    `json:"iface"`
	Filter  string    `json:"filter"`
	File    string    `json:"file"`
	Packets uint64    `json:"packets"`
	Bytes   uint64    `json:"bytes"`
	Drops   uint64    `json:"drops"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
}

// ReadCaptureStatus reads dir's status file; nil, nil when there is none
// (the capture never ran).
func ReadCaptureStatus(dir string) (*CaptureStatus, error) {
	f, err := os.Open(filepath.Join(dir, CaptureStatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st CaptureStatus
	if err := json.NewDecoder(io.LimitReader(f, 64<<10)).Decode(&st); err != nil {
		return nil, fmt.Errorf("%s: %w", CaptureStatusFile, err)
	}
	return &st, nil
}

// Capture is the capture as the page shows it.
type Capture struct {
	Recording bool           `json:"recording"`
	Status    *CaptureStatus `json:"status"`
	// AgeSeconds is how old the status is.
	AgeSeconds *float64 `json:"age_s"`
	PacketRate *float64 `json:"packet_rate"`
	// OpenCommand opens the current file, from the repository's top.
	OpenCommand string `json:"open_command,omitempty"`
	Error       string `json:"error,omitempty"`
}

type captureState struct {
	cur, prev *CaptureStatus
	err       string
	at        time.Time
}

func (c *captureState) update(st *CaptureStatus, err error, at time.Time) {
	c.at = at
	c.err = ""
	if err != nil {
		c.err = err.Error()
		return
	}
	if st == nil {
		c.cur, c.prev = nil, nil
		return
	}
	if c.cur == nil || !st.Updated.Equal(c.cur.Updated) {
		c.prev, c.cur = c.cur, st
	}
}

func (c *captureState) view() Capture {
	v := Capture{Status: c.cur, Error: c.err}
	if c.cur == nil {
		if v.Error == "" {
			v.Error = "no " + CaptureStatusFile + ": the capture is not running (make capture)"
		}
		return v
	}
	age := c.at.Sub(c.cur.Updated)
	v.AgeSeconds = ptr(age.Seconds())
	v.Recording = age < RecordingWithin
	if p := c.prev; p != nil && v.Recording {
		if dt := c.cur.Updated.Sub(p.Updated).Seconds(); dt > 0 && c.cur.Packets >= p.Packets {
			v.PacketRate = ptr(float64(c.cur.Packets-p.Packets) / dt)
		}
	}
	if c.cur.File != "" {
		// ./captures on the host is /captures in both containers.
		v.OpenCommand = "wireshark captures/" + path.Base(c.cur.File)
	}
	return v
}

func (c *captureState) node(svc lab.Service) Node {
	v := c.view()
	n := Node{Name: svc.Name, Service: svc.Name, Kind: KindCapture, Summary: svc.Summary, Up: v.Recording, Error: v.Error}
	if v.Status != nil && !v.Recording && n.Error == "" {
		n.Error = "stopped: its status is older than 5s"
	}
	n.Live.Rate = v.PacketRate
	return n
}
