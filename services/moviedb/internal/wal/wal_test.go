package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func records(n int) [][]byte {
	var rs [][]byte
	for i := range n {
		rs = append(rs, fmt.Appendf(nil, `{"n":%d}`, i))
	}
	return rs
}

// openAll opens path and returns the replayed payloads.
func openAll(t *testing.T, path string, repair bool) (*Log, Report, [][]byte, error) {
	t.Helper()
	var got [][]byte
	l, rep, err := Open(path, repair, func(p []byte) error {
		got = append(got, bytes.Clone(p))
		return nil
	})
	if l != nil {
		t.Cleanup(func() { l.Close() })
	}
	return l, rep, got, err
}

func TestCreateAppendReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := Create(path, records(3)); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, nil); !errors.Is(err, os.ErrExist) {
		t.Errorf("Create over an existing log: %v, want ErrExist", err)
	}
	l, rep, got, err := openAll(t, path, false)
	if err != nil || rep.Records != 3 || !reflect.DeepEqual(got, records(3)) {
		t.Fatalf("Open = %+v, %q, %v; want 3 records", rep, got, err)
	}
	more := records(6)[3:]
	if err := l.Append(more...); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(); err != nil {
		t.Fatalf("Append of nothing: %v", err)
	}
	if err := l.Append([]byte{}); err == nil {
		t.Error("Append of an empty record succeeded")
	}
	st, _ := os.Stat(path)
	if st.Size() != l.Size() {
		t.Errorf("file size %d, Size() %d", st.Size(), l.Size())
	}
	l.Close()
	_, rep, got, err = openAll(t, path, false)
	if err != nil || rep.Records != 6 || !reflect.DeepEqual(got, records(6)) || rep.Size != st.Size() {
		t.Fatalf("reopen = %+v, %q, %v; want 6 records", rep, got, err)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

// TestCorruptTail damages a log of three records in the ways a crash or a
// bad disk does, and checks that Open reports the offset of the third
// record, refuses without repair, and with repair keeps the first two and
// saves the rest aside.
func TestCorruptTail(t *testing.T) {
	rs := records(3)
	third := int64(len(Magic) + 2*(headerBytes+len(rs[0])))
	tests := []struct {
		name   string
		damage func(b []byte) []byte
		reason string
	}{
		{"truncated payload", func(b []byte) []byte { return b[:len(b)-2] }, "truncated record: 5 of 7"},
		{"truncated header", func(b []byte) []byte { return b[:third+3] }, "truncated record header"},
		{"flipped payload bit", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "checksum mismatch"},
		{"flipped crc bit", func(b []byte) []byte { b[third+5] ^= 0x80; return b }, "checksum mismatch"},
		{"huge length", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[third:], 1<<30); return b }, "impossible record length"},
		{"zeroed tail", func(b []byte) []byte { clear(b[third:]); return b }, "impossible record length 0"},
		{"garbage appended", func(b []byte) []byte { return append(b[:third], "garbage! more garbage!!"...) }, "impossible record length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := Create(path, rs); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			b = tt.damage(b)
			os.WriteFile(path, b, 0o600)
			size := int64(len(b))

			_, _, got, err := openAll(t, path, false)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open error = %v, want a CorruptError", err)
			}
			want := CorruptError{Path: path, Offset: third, Size: size, Records: 2}
			if ce.Offset != want.Offset || ce.Size != want.Size || ce.Records != 2 || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("Open error = %+v, want %+v with reason %q", ce, want, tt.reason)
			}
			if len(got) != 2 {
				t.Errorf("applied %d records before the bad one, want 2", len(got))
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
				t.Error("Open without repair changed the file")
			}

			l, rep, got, err := openAll(t, path, true)
			if err != nil || rep.Repaired == nil || rep.Repaired.Offset != third || len(got) != 2 {
				t.Fatalf("Open with repair = %+v, %d records, %v", rep, len(got), err)
			}
			saved, _ := os.ReadFile(rep.SavedTo)
			if !bytes.Equal(saved, b[third:]) || rep.SavedTo != fmt.Sprintf("%s.corrupt-%d", path, third) {
				t.Errorf("saved %s = %q, want %q", rep.SavedTo, saved, b[third:])
			}
			if err := l.Append(rs[2]); err != nil {
				t.Fatal(err)
			}
			l.Close()
			_, rep, got, err = openAll(t, path, false)
			if err != nil || !reflect.DeepEqual(got, rs) || rep.Repaired != nil {
				t.Errorf("reopen after repair = %+v, %q, %v; want the 3 records", rep, got, err)
			}
		})
	}
}

func TestBadHeaderIsNotRepaired(t *testing.T) {
	for _, give := range []string{"", "MDBW", "NOTAWAL!\x01\x00\x00\x00"} {
		path := filepath.Join(t.TempDir(), "log")
		os.WriteFile(path, []byte(give), 0o600)
		_, _, _, err := openAll(t, path, true)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset != 0 || ce.Repairable() {
			t.Errorf("Open(%q, repair) error = %v, want an unrepairable CorruptError at 0", give, err)
		}
	}
}

func TestApplyErrorIsCorruption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := Create(path, records(3)); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(path, false, func(p []byte) error {
		if string(p) == `{"n":1}` {
			return errors.New("unknown op")
		}
		return nil
	})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Records != 1 || ce.Reason != "bad record: unknown op" {
		t.Errorf("Open error = %v, want a CorruptError after 1 record for the apply error", err)
	}
}

func TestAppendAfterFailureIsBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := Create(path, nil); err != nil {
		t.Fatal(err)
	}
	l, _, _, err := openAll(t, path, false)
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close() // make the next write fail
	if err := l.Append([]byte("x")); err == nil {
		t.Fatal("Append to a closed file succeeded")
	}
	if err := l.Append([]byte("y")); !errors.Is(err, ErrBroken) {
		t.Errorf("second Append = %v, want ErrBroken", err)
	}
}

// FuzzOpen feeds arbitrary bytes after the magic as a log file: Open must
// never panic, must replay only whole checksummed records, and with repair
// must leave a log that reopens cleanly with the same records.
func FuzzOpen(f *testing.F) {
	var valid bytes.Buffer
	valid.WriteString(Magic)
	var hdr [headerBytes]byte
	for i, r := range records(2) {
		putHeader(hdr[:], uint64(i+1), r)
		valid.Write(hdr[:])
		valid.Write(r)
	}
	f.Add(valid.Bytes()[len(Magic):])
	f.Add(valid.Bytes()[len(Magic) : valid.Len()-3])
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(append(valid.Bytes()[len(Magic)+headerBytes+7:], valid.Bytes()[len(Magic):len(Magic)+headerBytes+7]...))
	f.Fuzz(func(t *testing.T, body []byte) {
		path := filepath.Join(t.TempDir(), "log")
		os.WriteFile(path, append([]byte(Magic), body...), 0o600)
		var first [][]byte
		l, rep, err := Open(path, true, func(p []byte) error {
			first = append(first, bytes.Clone(p))
			return nil
		})
		if err != nil {
			t.Fatalf("Open with repair: %v", err)
		}
		l.Close()
		var again [][]byte
		l, rep2, err := Open(path, false, func(p []byte) error {
			again = append(again, bytes.Clone(p))
			return nil
		})
		if err != nil {
			t.Fatalf("reopen after repair: %v", err)
		}
		l.Close()
		if !reflect.DeepEqual(first, again) || rep.Records != rep2.Records || rep2.Repaired != nil {
			t.Fatalf("records changed across reopen: %q then %q", first, again)
		}
	})
}

// spans returns where each record of a version 2 log starts and ends.
func spans(t *testing.T, b []byte) [][2]int {
	t.Helper()
	var out [][2]int
	for i := len(Magic); i < len(b); {
		n := int(binary.LittleEndian.Uint32(b[i:]))
		out = append(out, [2]int{i, i + headerBytes + n})
		i += headerBytes + n
	}
	return out
}

// TestMissingOrReorderedRecord is issue 16 finding 8: a whole record cut
// out of the middle of the log, or two records swapped, each still framed
// and checksummed, loaded without a word before records had sequence
// numbers. Now each is refused at the first record out of place, like any
// other damage, and repair keeps only the records before it.
func TestMissingOrReorderedRecord(t *testing.T) {
	rs := records(5)
	tests := []struct {
		name    string
		damage  func(b []byte, sp [][2]int) []byte
		records int // good records before the bad one
		reason  string
	}{
		{"record 3 cut out", func(b []byte, sp [][2]int) []byte {
			return append(b[:sp[2][0]:sp[2][0]], b[sp[2][1]:]...)
		}, 2, "record number 4 where 3 was expected: a record is missing or out of order"},
		{"records 2 and 3 swapped", func(b []byte, sp [][2]int) []byte {
			out := append([]byte{}, b[:sp[1][0]]...)
			out = append(out, b[sp[2][0]:sp[2][1]]...)
			out = append(out, b[sp[1][0]:sp[1][1]]...)
			return append(out, b[sp[3][0]:]...)
		}, 1, "record number 3 where 2 was expected"},
		{"last two swapped", func(b []byte, sp [][2]int) []byte {
			out := append([]byte{}, b[:sp[3][0]]...)
			out = append(out, b[sp[4][0]:sp[4][1]]...)
			return append(out, b[sp[3][0]:sp[3][1]]...)
		}, 3, "record number 5 where 4 was expected"},
		{"first record cut out", func(b []byte, sp [][2]int) []byte {
			return append(b[:sp[0][0]:sp[0][0]], b[sp[0][1]:]...)
		}, 0, "record number 2 where 1 was expected"},
		{"record repeated", func(b []byte, sp [][2]int) []byte {
			return append(b[:sp[2][1]:sp[2][1]], b[sp[2][0]:]...)
		}, 3, "record number 3 where 4 was expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := Create(path, rs); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			b = tt.damage(b, spans(t, b))
			os.WriteFile(path, b, 0o600)
			_, _, got, err := openAll(t, path, false)
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Records != tt.records || !strings.Contains(ce.Reason, tt.reason) {
				t.Fatalf("Open = %v (%d records applied), want a CorruptError after %d records with %q", err, len(got), tt.records, tt.reason)
			}
			if want := int64(spans(t, b)[tt.records][0]); ce.Offset != want {
				t.Errorf("Open error offset %d, want %d", ce.Offset, want)
			}
			l, rep, got, err := openAll(t, path, true)
			if err != nil || rep.Repaired == nil || len(got) != tt.records {
				t.Fatalf("Open with repair = %+v, %d records, %v", rep, len(got), err)
			}
			// Appending after the repair numbers on from the records kept.
			if err := l.Append(rs[4]); err != nil {
				t.Fatal(err)
			}
			l.Close()
			if _, _, got, err = openAll(t, path, false); err != nil || len(got) != tt.records+1 {
				t.Errorf("reopen after repair and append = %d records, %v", len(got), err)
			}
		})
	}
}

// v1Log builds a version 1 log, as written before sequence numbers.
func v1Log(rs [][]byte) []byte {
	b := []byte(MagicV1)
	var hdr [headerBytesV1]byte
	for _, r := range rs {
		binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(r)))
		binary.LittleEndian.PutUint32(hdr[4:8], crc32.Checksum(r, castagnoli))
		b = append(append(b, hdr[:]...), r...)
	}
	return b
}

func TestUpgradeV1(t *testing.T) {
	rs := records(4)
	path := filepath.Join(t.TempDir(), "log")
	old := v1Log(rs)
	os.WriteFile(path, old, 0o600)
	l, rep, got, err := openAll(t, path, false)
	if err != nil || !reflect.DeepEqual(got, rs) || rep.UpgradedFrom != 1 || rep.BackupPath != path+".v1" {
		t.Fatalf("Open of a v1 log = %+v, %q, %v; want its 4 records, upgraded", rep, got, err)
	}
	if backup, _ := os.ReadFile(rep.BackupPath); !bytes.Equal(backup, old) {
		t.Error("the v1 backup differs from the original log")
	}
	if err := l.Append(records(5)[4]); err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, _ := os.ReadFile(path)
	if !bytes.HasPrefix(b, []byte(Magic)) || len(spans(t, b)) != 5 {
		t.Fatalf("after upgrade and append the log is %q, want version 2 with 5 records", b)
	}
	_, rep, got, err = openAll(t, path, false)
	if err != nil || !reflect.DeepEqual(got, records(5)) || rep.UpgradedFrom != 0 || rep.Size != int64(len(b)) {
		t.Errorf("reopen = %+v, %q, %v; want 5 records, no upgrade", rep, got, err)
	}

	// A damaged v1 log is refused like a v2 one, and not upgraded.
	os.WriteFile(path, old[:len(old)-3], 0o600)
	_, _, _, err = openAll(t, path, false)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Records != 3 {
		t.Fatalf("Open of a torn v1 log = %v, want a CorruptError after 3 records", err)
	}
	// With repair it is cut, then upgraded.
	_, rep, got, err = openAll(t, path, true)
	if err != nil || len(got) != 3 || rep.Repaired == nil || rep.UpgradedFrom != 1 {
		t.Fatalf("Open of a torn v1 log with repair = %+v, %d records, %v", rep, len(got), err)
	}
}
