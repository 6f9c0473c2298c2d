// Package pcapfile writes captured packets into a series of pcap files in one
// directory, starting a new file when the current one reaches a size or an
// age, and deleting the oldest files beyond a count.
//
// File names sort by time: <prefix>-<UTC YYYYMMDDTHHMMSSZ>-<seq>.pcap, the
// time being when the file was opened and seq counting files from 1 in each
// run. Every file is a classic pcap (nanosecond timestamps), readable by
// tcpdump, tshark and Wireshark while it is written: data reaches the disk
// only at record boundaries, at the latest on Flush.
package pcapfile

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"go.uber.org/zap"
)

// MaxSnaplen is the largest snapshot length a Rotator accepts, libpcap's
// MAXIMUM_SNAPLEN.
const MaxSnaplen = 262144

const (
	fileHeaderLen   = 24
	recordHeaderLen = 16
	// bufferSize holds at least one record of MaxSnaplen, so a flush made
	// before a record that does not fit leaves the file at a boundary.
	bufferSize = 2 * (MaxSnaplen + recordHeaderLen)
	timeLayout = "20060102T150405Z"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("pcapfile: rotator closed")

// File describes one pcap file of a Rotator.
type File struct {
	Name    string // base name, in Rotator.Dir
	Opened  time.Time
	Packets int64
	Bytes   int64 // file size, headers included
}

// Rotator writes packets to rotating pcap files. Set the fields before the
// first Open or Write; a Rotator is not safe for concurrent use.
type Rotator struct {
	Dir      string
	Prefix   string          // file names start with Prefix + "-"
	MaxBytes int64           // start a new file before this size is passed; 0: no limit
	MaxAge   time.Duration   // start a new file when a packet comes this long after opening; 0: no limit
	Keep     int             // delete the oldest files beyond this many; 0: keep all
	Snaplen  uint32          // longer packets are cut; 0 means MaxSnaplen
	LinkType layers.LinkType // written into each file header
	Now      func() time.Time
	Log      *zap.Logger

	// OnRotate, when set, is called with each file closed to start the
	// next one, and OnRemove with each file deleted to honour Keep.
	OnRotate func(closed File)
	OnRemove func(name string)

	f       *os.File
	buf     *bufio.Writer
	w       *pcapgo.Writer
	cur     File
	seq     int
	files   int
	written int64
	closed  bool
}

// Open creates the first file. Write calls it when needed.
func (r *Rotator) Open() error {
	if r.closed {
		return ErrClosed
	}
	if r.f != nil {
		return nil
	}
	return r.open()
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SnapLen returns the snapshot length in effect: Snaplen, or MaxSnaplen
// when Snaplen is 0 or too large.
func (r *Rotator) SnapLen() int { return int(r.snaplen()) }

func (r *Rotator) snaplen() uint32 {
	if r.Snaplen == 0 || r.Snaplen > MaxSnaplen {
		return MaxSnaplen
	}
	return r.Snaplen
}

func (r *Rotator) log() *zap.Logger {
	if r.Log != nil {
		return r.Log
	}
	return zap.NewNop()
}

// Name returns the file name for the seq-th file opened at t.
func Name(prefix string, t time.Time, seq int) string {
	return fmt.Sprintf("%s-%s-%04d.pcap", prefix, t.UTC().Format(timeLayout), seq)
}

func (r *Rotator) open() error {
	t := r.now()
	var f *os.File
	var name string
	// A restart within the same second may find its names taken.
	for range 1000 {
		r.seq++
		name = Name(r.Prefix, t, r.seq)
		var err error
		f, err = os.OpenFile(filepath.Join(r.Dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if f == nil {
		return fmt.Errorf("no free file name in %s after %s", r.Dir, name)
	}
	if r.buf == nil {
		r.buf = bufio.NewWriterSize(f, bufferSize)
	} else {
		r.buf.Reset(f)
	}
	w := pcapgo.NewWriterNanos(r.buf)
	if err := w.WriteFileHeader(r.snaplen(), r.LinkType); err != nil {
		f.Close()
		return err
	}
	// The header goes to disk at once, so the file is valid while empty.
	if err := r.buf.Flush(); err != nil {
		f.Close()
		return err
	}
	r.f, r.w = f, w
	r.cur = File{Name: name, Opened: t, Bytes: fileHeaderLen}
	r.files++
	r.prune()
	return nil
}

// Write appends one packet, first starting a new file when the current one
// would pass MaxBytes or is older than MaxAge. A file always gets at least
// one packet before it is rotated. Capture info with Length shorter than the
// data is corrected rather than refused.
func (r *Rotator) Write(ci gopacket.CaptureInfo, data []byte) error {
	if r.closed {
		return ErrClosed
	}
	if snap := int(r.snaplen()); len(data) > snap {
		data = data[:snap]
	}
	ci.CaptureLength = len(data)
	if ci.Length < ci.CaptureLength {
		ci.Length = ci.CaptureLength
	}
	rec := int64(recordHeaderLen + len(data))
	if r.f == nil {
		if err := r.open(); err != nil {
			return err
		}
	} else if r.cur.Packets > 0 &&
		((r.MaxBytes > 0 && r.cur.Bytes+rec > r.MaxBytes) ||
			(r.MaxAge > 0 && r.now().Sub(r.cur.Opened) >= r.MaxAge)) {
		if err := r.rotate(); err != nil {
			return err
		}
	}
	if r.buf.Available() < int(rec) {
		if err := r.buf.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", r.cur.Name, err)
		}
	}
	if err := r.w.WritePacket(ci, data); err != nil {
		return fmt.Errorf("write %s: %w", r.cur.Name, err)
	}
	r.cur.Packets++
	r.cur.Bytes += rec
	r.written++
	return nil
}

func (r *Rotator) rotate() error {
	closed := r.cur
	if err := r.closeFile(); err != nil {
		return err
	}
	if r.OnRotate != nil {
		r.OnRotate(closed)
	}
	return r.open()
}

// closeFile flushes and closes the current file. It does not fsync: readers
// see the data in the page cache, and an fsync of a large file would stall
// the capture while the kernel's ring overflows.
func (r *Rotator) closeFile() error {
	f := r.f
	r.f = nil
	err := r.buf.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", r.cur.Name, err)
	}
	return nil
}

// Flush writes the buffered packets to the current file.
func (r *Rotator) Flush() error {
	if r.f == nil {
		return nil
	}
	if err := r.buf.Flush(); err != nil {
		return fmt.Errorf("flush %s: %w", r.cur.Name, err)
	}
	return nil
}

// Close flushes and closes the current file; later writes fail. It is safe
// to call twice.
func (r *Rotator) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.f == nil {
		return nil
	}
	return r.closeFile()
}

// Current describes the file being written (the last one after Close).
func (r *Rotator) Current() File { return r.cur }

// Files returns how many files this Rotator has opened.
func (r *Rotator) Files() int { return r.files }

// Packets returns how many packets this Rotator has written in all.
func (r *Rotator) Packets() int64 { return r.written }

// pattern matches the names Name makes for prefix, and nothing else in the
// directory is ever deleted.
func (r *Rotator) pattern() *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(r.Prefix) + `-\d{8}T\d{6}Z-\d{4,}\.pcap$`)
}

// List returns the names of dir's capture files for prefix, oldest first.
func List(dir, prefix string) ([]string, error) {
	r := Rotator{Prefix: prefix}
	return r.list(dir)
}

func (r *Rotator) list(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	re := r.pattern()
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && re.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // the timestamp leads, so name order is time order
	return names, nil
}

// prune deletes the oldest files beyond Keep, never the current one. A
// failure is logged: it must not stop the capture.
func (r *Rotator) prune() {
	if r.Keep <= 0 {
		return
	}
	names, err := r.list(r.Dir)
	if err != nil {
		r.log().Warn("listing old capture files", zap.Error(err))
		return
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == r.cur.Name })
	for len(names) > r.Keep-1 {
		name := names[0]
		names = names[1:]
		if err := os.Remove(filepath.Join(r.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.log().Warn("deleting old capture file", zap.String("file", name), zap.Error(err))
			continue
		}
		if r.OnRemove != nil {
			r.OnRemove(name)
		}
	}
}
