// Package wal is moviedb's write-ahead log: an append-only file of
// records, each framed with its length and CRC-32C so that a torn or
// corrupted tail is detected on replay instead of being half-loaded.
//
// File layout:
//
//	magic    8 bytes  "MDBWAL1\n"
//	record*  length   uint32, little-endian, 1 to MaxRecordBytes
//	         crc      uint32, little-endian, CRC-32C (Castagnoli) of payload
//	         payload  length bytes (moviedb writes one JSON object)
//
// Append writes a batch of records with one write and one fsync, and
// returns only after both succeeded: a caller replies to its clients after
// Append, so what they were told is stored is on disk.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Magic starts every log file.
const Magic = "MDBWAL1\n"

// MaxRecordBytes bounds a record's payload. A larger length field is
// corruption.
const MaxRecordBytes = 1 << 20

const headerBytes = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CorruptError reports a log whose records stop being valid at Offset: a
// truncated record (a crash in the middle of a write), a checksum
// mismatch, an impossible length, or a record the caller could not apply.
// Records before Offset are good.
type CorruptError struct {
	Path    string
	Offset  int64 // where the first bad record starts
	Size    int64 // the file's size
	Records int   // good records before Offset
	Reason  string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("log %s: bad record at offset %d of %d (%s) after %d good records",
		e.Path, e.Offset, e.Size, e.Reason, e.Records)
}

// Repairable reports whether cutting the log at Offset would leave a
// valid log: not when the file header itself is bad.
func (e *CorruptError) Repairable() bool { return e.Offset >= int64(len(Magic)) }

// Report says what Open found.
type Report struct {
	Records int   // records replayed
	Size    int64 // bytes of good log
	// Repaired is set when Open cut a bad tail off (repair was asked for);
	// SavedTo names the file that keeps the bytes cut off.
	Repaired *CorruptError
	SavedTo  string
}

// Log is an open log, positioned after its last good record. Its methods
// must not be called concurrently.
type Log struct {
	f      *os.File
	path   string
	size   int64
	buf    []byte
	broken error
}

// Create writes a new log at path holding records, atomically: through a
// temporary file that is synced and renamed, so a crash leaves either no
// log or a complete one. It fails when path exists.
func Create(path string, records [][]byte) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("create log %s: %w", path, os.ErrExist)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	w.WriteString(Magic)
	var hdr [headerBytes]byte
	for _, r := range records {
		if err := checkLen(len(r)); err != nil {
			f.Close()
			os.Remove(tmp)
			return err
		}
		putHeader(hdr[:], r)
		w.Write(hdr[:])
		w.Write(r)
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create log %s: %w", path, err)
	}
	return nil
}

func checkLen(n int) error {
	if n == 0 || n > MaxRecordBytes {
		return fmt.Errorf("log record of %d bytes: want 1 to %d", n, MaxRecordBytes)
	}
	return nil
}

func putHeader(hdr []byte, payload []byte) {
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[4:8], crc32.Checksum(payload, castagnoli))
}

// Open replays the log at path, calling apply with each record's payload in
// order (the slice is only valid during the call), and returns the log
// ready for Append.
//
// When a record is bad (see CorruptError) Open stops there. Without repair
// it returns the *CorruptError and no log: the caller has applied the good
// records but must not serve them as the whole truth. With repair it saves
// the bytes from the bad record on to path+".corrupt-<offset>", truncates
// the log before them, and goes on, saying so in the Report.
func Open(path string, repair bool, apply func(payload []byte) error) (*Log, Report, error) {
	var rep Report
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, rep, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, rep, err
	}
	size := st.Size()
	good, n, reason, err := replay(f, size, apply)
	if err != nil {
		return nil, rep, fmt.Errorf("read log %s: %w", path, err)
	}
	rep.Records, rep.Size = n, good
	if reason != "" {
		cerr := &CorruptError{Path: path, Offset: good, Size: size, Records: n, Reason: reason}
		// A bad header means not a moviedb log at all, or one whose header
		// was lost: nothing to keep, so nothing to repair safely.
		if !repair || !cerr.Repairable() {
			return nil, rep, cerr
		}
		saved, err := cutTail(f, path, good, size)
		if err != nil {
			return nil, rep, fmt.Errorf("repair log %s: %w", path, err)
		}
		rep.Repaired, rep.SavedTo = cerr, saved
	}
	ok = true
	return &Log{f: f, path: path, size: good}, rep, nil
}

// replay reads records from the start of f. It returns the offset after the
// last good record, how many there were, and why reading stopped before
// size ("" when the log is whole).
func replay(f *os.File, size int64, apply func([]byte) error) (good int64, n int, reason string, err error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 1<<16)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return 0, 0, fmt.Sprintf("file of %d bytes has no complete header", size), nil
	}
	if string(magic) != Magic {
		return 0, 0, fmt.Sprintf("bad magic %q: not a moviedb log", magic), nil
	}
	good = int64(len(Magic))
	var hdr [headerBytes]byte
	payload := make([]byte, 0, 4096)
	for good < size {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return good, n, fmt.Sprintf("truncated record header: %d of %d bytes", size-good, headerBytes), nil
		}
		length := binary.LittleEndian.Uint32(hdr[0:4])
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		if length == 0 || length > MaxRecordBytes {
			return good, n, fmt.Sprintf("impossible record length %d", length), nil
		}
		if int64(length) > size-good-headerBytes {
			return good, n, fmt.Sprintf("truncated record: %d of %d payload bytes", size-good-headerBytes, length), nil
		}
		payload = payload[:0]
		if cap(payload) < int(length) {
			payload = make([]byte, 0, length)
		}
		payload = payload[:length]
		if _, err := io.ReadFull(r, payload); err != nil {
			return good, n, "", err // the file shrank while reading
		}
		if crc32.Checksum(payload, castagnoli) != sum {
			return good, n, "checksum mismatch", nil
		}
		if err := apply(payload); err != nil {
			return good, n, "bad record: " + err.Error(), nil
		}
		good += headerBytes + int64(length)
		n++
	}
	return good, n, "", nil
}

// cutTail saves f[off:size] to a side file, then truncates f to off.
func cutTail(f *os.File, path string, off, size int64) (string, error) {
	saved := path + ".corrupt-" + strconv.FormatInt(off, 10)
	out, err := os.OpenFile(saved, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, off, size-off))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if err := f.Truncate(off); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return saved, syncDir(filepath.Dir(path))
}

// ErrBroken wraps the error of an earlier failed Append: after a failed
// write or fsync the file's state is unknown (Linux may drop the failed
// pages and report success to a later fsync), so the log takes no more
// records. Restarting replays what reached the disk.
var ErrBroken = errors.New("log unusable since an earlier write failed")

// Append writes records after the last one and fsyncs them, with one
// write and one fsync for the whole batch. When it returns nil every record
// is durable. On error none may be relied on, and the Log is broken.
func (l *Log) Append(records ...[]byte) error {
	if l.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, l.broken)
	}
	l.buf = l.buf[:0]
	var hdr [headerBytes]byte
	for _, r := range records {
		if err := checkLen(len(r)); err != nil {
			return err // nothing written: the log stays usable
		}
		putHeader(hdr[:], r)
		l.buf = append(l.buf, hdr[:]...)
		l.buf = append(l.buf, r...)
	}
	_, err := l.f.WriteAt(l.buf, l.size)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		// Best effort: leave no partial batch for the next start to trip on.
		l.f.Truncate(l.size)
		l.broken = err
		return fmt.Errorf("append to log %s: %w", l.path, err)
	}
	l.size += int64(len(l.buf))
	if cap(l.buf) > 1<<20 {
		l.buf = nil // do not keep a huge batch's buffer forever
	}
	return nil
}

// Size reports the bytes of the log.
func (l *Log) Size() int64 { return l.size }

// Path reports the log's file name.
func (l *Log) Path() string { return l.path }

// Close closes the file.
func (l *Log) Close() error { return l.f.Close() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
