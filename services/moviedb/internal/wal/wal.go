// Package wal is moviedb's write-ahead log: an append-only file of
// records, each framed with its length, a sequence number and a CRC-32C, so
// that a torn or corrupted tail, a record cut out of the middle and two
// records swapped are all detected on replay instead of being half-loaded.
//
// File layout, version 2 (what this package writes):
//
//	magic    8 bytes  "MDBWAL2\n"
//	record*  length   uint32, little-endian: payload bytes, 1 to MaxRecordBytes
//	         crc      uint32, little-endian: CRC-32C (Castagnoli) of seq and payload
//	         seq      uint64, little-endian: 1 for the first record, then +1 each
//	         payload  length bytes (the store's record)
//
// Version 1 ("MDBWAL1\n", written before sequence numbers) frames records
// as length, CRC-32C of the payload, payload. Open reads both; a version 1
// log that replays whole is rewritten as version 2 (the original is kept
// beside it as <path>.v1), so the log that Append extends is always
// version 2.
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

// Magic starts every log file this package writes (version 2).
const Magic = "MDBWAL2\n"

// MagicV1 starts a version 1 log: records without sequence numbers.
const MagicV1 = "MDBWAL1\n"

// MaxRecordBytes bounds a record's payload. A larger length field is
// corruption.
const MaxRecordBytes = 1 << 20

// headerBytes is a version 2 record header; headerBytesV1 a version 1 one.
const (
	headerBytes   = 16
	headerBytesV1 = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CorruptError reports a log whose records stop being valid at Offset: a
// truncated record (a crash in the middle of a write), a checksum
// mismatch, an impossible length, a sequence number out of order (a record
// missing or moved), or a record the caller could not apply. Records
// before Offset are good.
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
	Size    int64 // bytes of good log (after an upgrade: of the new file)
	// Repaired is set when Open cut a bad tail off (repair was asked for);
	// SavedTo names the file that keeps the bytes cut off.
	Repaired *CorruptError
	SavedTo  string
	// UpgradedFrom is 1 when Open rewrote a version 1 log as version 2;
	// the original stays in BackupPath.
	UpgradedFrom int
	BackupPath   string
}

// Log is an open log, positioned after its last good record. Its methods
// must not be called concurrently.
type Log struct {
	f      *os.File
	path   string
	size   int64
	seq    uint64 // of the last record
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
	for _, r := range records {
		if err := checkLen(len(r)); err != nil {
			return err
		}
	}
	err := writeAtomically(path, func(w *bufio.Writer) error {
		for i, r := range records {
			writeRecord(w, uint64(i+1), r)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create log %s: %w", path, err)
	}
	return nil
}

// writeAtomically writes a version 2 log to path+".tmp" with the magic and
// what fill writes, syncs it, and renames it over path.
func writeAtomically(path string, fill func(w *bufio.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	w.WriteString(Magic)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
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
	}
	return err
}

func checkLen(n int) error {
	if n == 0 || n > MaxRecordBytes {
		return fmt.Errorf("log record of %d bytes: want 1 to %d", n, MaxRecordBytes)
	}
	return nil
}

// putHeader fills a version 2 header for the record seq holding payload.
func putHeader(hdr []byte, seq uint64, payload []byte) {
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(hdr[8:16], seq)
	binary.LittleEndian.PutUint32(hdr[4:8], checksum(hdr[8:16], payload))
}

// checksum is the CRC-32C of a version 2 record: its sequence number, then
// its payload, so a record moved elsewhere with its number changed is
// still caught.
func checksum(seq, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(seq, castagnoli), castagnoli, payload)
}

func writeRecord(w io.Writer, seq uint64, payload []byte) {
	var hdr [headerBytes]byte
	putHeader(hdr[:], seq, payload)
	w.Write(hdr[:])
	w.Write(payload)
}

// Open replays the log at path, calling apply with each record's payload in
// order (the slice is only valid during the call), and returns the log
// ready for Append.
//
// When a record is bad (see CorruptError) Open stops there. Without repair
// it returns the *CorruptError and no log: the caller has applied the good
// records but must not serve them as the whole truth. With repair it saves
// the bytes from the bad record on to path+".corrupt-<offset>", truncates
// the log before them, and goes on, saying so in the Report. A version 1
// log is then rewritten as version 2 (see the package comment).
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
	res, err := replay(f, size, apply)
	if err != nil {
		return nil, rep, fmt.Errorf("read log %s: %w", path, err)
	}
	rep.Records, rep.Size = res.n, res.good
	if res.reason != "" {
		cerr := &CorruptError{Path: path, Offset: res.good, Size: size, Records: res.n, Reason: res.reason}
		// A bad header means not a moviedb log at all, or one whose header
		// was lost: nothing to keep, so nothing to repair safely.
		if !repair || !cerr.Repairable() {
			return nil, rep, cerr
		}
		saved, err := cutTail(f, path, res.good, size)
		if err != nil {
			return nil, rep, fmt.Errorf("repair log %s: %w", path, err)
		}
		rep.Repaired, rep.SavedTo = cerr, saved
	}
	if res.version == 1 {
		backup, err := upgrade(f, path, res.good)
		if err != nil {
			return nil, rep, fmt.Errorf("upgrade log %s to version 2: %w", path, err)
		}
		f.Close()
		if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
			return nil, rep, err
		}
		if st, err = f.Stat(); err != nil {
			return nil, rep, err
		}
		rep.UpgradedFrom, rep.BackupPath, rep.Size = 1, backup, st.Size()
	}
	ok = true
	return &Log{f: f, path: path, size: rep.Size, seq: uint64(res.n)}, rep, nil
}

type replayed struct {
	version int
	good    int64 // offset after the last good record
	n       int   // good records
	reason  string
}

// replay reads records from the start of f. It returns the log's version,
// the offset after the last good record, how many there were, and why
// reading stopped before size ("" when the log is whole).
func replay(f *os.File, size int64, apply func([]byte) error) (res replayed, err error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 1<<16)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(r, magic); err != nil {
		res.reason = fmt.Sprintf("file of %d bytes has no complete header", size)
		return res, nil
	}
	hdrLen := int64(headerBytes)
	switch string(magic) {
	case Magic:
		res.version = 2
	case MagicV1:
		res.version, hdrLen = 1, headerBytesV1
	default:
		res.reason = fmt.Sprintf("bad magic %q: not a moviedb log", magic)
		return res, nil
	}
	res.good = int64(len(Magic))
	hdr := make([]byte, hdrLen)
	payload := make([]byte, 0, 4096)
	for res.good < size {
		if _, err := io.ReadFull(r, hdr); err != nil {
			res.reason = fmt.Sprintf("truncated record header: %d of %d bytes", size-res.good, hdrLen)
			return res, nil
		}
		length := binary.LittleEndian.Uint32(hdr[0:4])
		sum := binary.LittleEndian.Uint32(hdr[4:8])
		if length == 0 || length > MaxRecordBytes {
			res.reason = fmt.Sprintf("impossible record length %d", length)
			return res, nil
		}
		if int64(length) > size-res.good-hdrLen {
			res.reason = fmt.Sprintf("truncated record: %d of %d payload bytes", size-res.good-hdrLen, length)
			return res, nil
		}
		payload = payload[:0]
		if cap(payload) < int(length) {
			payload = make([]byte, 0, length)
		}
		payload = payload[:length]
		if _, err := io.ReadFull(r, payload); err != nil {
			return res, err // the file shrank while reading
		}
		if res.version == 1 {
			if crc32.Checksum(payload, castagnoli) != sum {
				res.reason = "checksum mismatch"
				return res, nil
			}
		} else {
			if checksum(hdr[8:16], payload) != sum {
				res.reason = "checksum mismatch"
				return res, nil
			}
			// Each record is whole and checksummed; only its number tells
			// that one before it was cut out or that two were swapped.
			if seq, want := binary.LittleEndian.Uint64(hdr[8:16]), uint64(res.n)+1; seq != want {
				res.reason = fmt.Sprintf("record number %d where %d was expected: a record is missing or out of order", seq, want)
				return res, nil
			}
		}
		if err := apply(payload); err != nil {
			res.reason = "bad record: " + err.Error()
			return res, nil
		}
		res.good += hdrLen + int64(length)
		res.n++
	}
	return res, nil
}

// upgrade rewrites the version 1 log in f (good up to size) at path as
// version 2, keeping the original as path+".v1". Either file name holds a
// whole log at every moment: the new one is written aside and renamed over
// the old one, which was linked to the backup name first.
func upgrade(f *os.File, path string, size int64) (backup string, err error) {
	err = writeAtomically(path+".upgrade", func(w *bufio.Writer) error {
		seq := uint64(0)
		res, err := replay(f, size, func(p []byte) error {
			seq++
			writeRecord(w, seq, p)
			return nil
		})
		if err == nil && res.reason != "" {
			err = errors.New(res.reason) // it replayed whole a moment ago
		}
		return err
	})
	if err != nil {
		return "", err
	}
	backup = path + ".v1"
	// A backup left by an upgrade that crashed before its rename holds a
	// prefix of the same log, which is still version 1: replace it.
	if err := os.Remove(backup); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.Link(path, backup); err != nil {
		return "", err
	}
	if err := os.Rename(path+".upgrade", path); err != nil {
		return "", err
	}
	return backup, syncDir(filepath.Dir(path))
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

// Append writes records after the last one, numbered on from it, and
// fsyncs them, with one write and one fsync for the whole batch. When it
// returns nil every record is durable. On error none may be relied on, and
// the Log is broken.
func (l *Log) Append(records ...[]byte) error {
	if l.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, l.broken)
	}
	l.buf = l.buf[:0]
	var hdr [headerBytes]byte
	for i, r := range records {
		if err := checkLen(len(r)); err != nil {
			return err // nothing written: the log stays usable
		}
		putHeader(hdr[:], l.seq+uint64(i)+1, r)
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
	l.seq += uint64(len(records))
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
