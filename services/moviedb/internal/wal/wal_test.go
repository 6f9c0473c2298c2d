package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
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
		{"garbage appended", func(b []byte) []byte { return append(b[:third], "garbage!!"...) }, "impossible record length"},
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
	for _, r := range records(2) {
		putHeader(hdr[:], r)
		valid.Write(hdr[:])
		valid.Write(r)
	}
	f.Add(valid.Bytes()[len(Magic):])
	f.Add(valid.Bytes()[len(Magic) : valid.Len()-3])
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
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
