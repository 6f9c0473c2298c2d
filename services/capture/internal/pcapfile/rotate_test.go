package pcapfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var t0 = time.Date(2026, 11, 21, 8, 30, 0, 123456789, time.UTC)

// clock is a fake time source that the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

type record struct {
	ci   gopacket.CaptureInfo
	data []byte
}

func packet(i, size int, ts time.Time) record {
	data := bytes.Repeat([]byte{byte(i)}, size)
	return record{gopacket.CaptureInfo{Timestamp: ts, CaptureLength: size, Length: size}, data}
}

// readPcap reads every record of a pcap file, failing on a truncated one.
func readPcap(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet || r.Resolution() != gopacket.TimestampResolutionNanosecond {
		t.Errorf("%s: link type %v, resolution %v", path, r.LinkType(), r.Resolution())
	}
	var recs []record
	for range 100000 {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return recs
		}
		if err != nil {
			t.Fatalf("%s: record %d: %v", path, len(recs), err)
		}
		recs = append(recs, record{ci, data})
	}
	t.Fatalf("%s: too many records", path)
	return nil
}

func newRotator(t *testing.T, c *clock) *Rotator {
	return &Rotator{
		Dir:      t.TempDir(),
		Prefix:   "socklab",
		Snaplen:  MaxSnaplen,
		LinkType: layers.LinkTypeEthernet,
		Now:      c.Now,
	}
}

func mustWrite(t *testing.T, r *Rotator, recs ...record) {
	t.Helper()
	for _, rec := range recs {
		if err := r.Write(rec.ci, rec.data); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
}

func sameRecords(t *testing.T, file string, got, want []record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", file, len(got), len(want))
	}
	for i := range want {
		if !got[i].ci.Timestamp.Equal(want[i].ci.Timestamp) || got[i].ci.Length != want[i].ci.Length ||
			got[i].ci.CaptureLength != len(want[i].data) || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("%s record %d: %+v %x, want %+v %x", file, i, got[i].ci, got[i].data[:4], want[i].ci, want[i].data[:4])
		}
	}
}

func TestRotateBySize(t *testing.T) {
	c := &clock{t0}
	r := newRotator(t, c)
	r.MaxBytes = fileHeaderLen + 3*(recordHeaderLen+100)
	var rotated []string
	r.OnRotate = func(f File) { rotated = append(rotated, f.Name) }
	var want []record
	for i := range 10 {
		rec := packet(i, 100, t0.Add(time.Duration(i)*time.Millisecond))
		want = append(want, rec)
		mustWrite(t, r, rec)
		c.t = c.t.Add(time.Second)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := List(r.Dir, "socklab")
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{
		"socklab-20261121T083000Z-0001.pcap",
		"socklab-20261121T083003Z-0002.pcap",
		"socklab-20261121T083006Z-0003.pcap",
		"socklab-20261121T083009Z-0004.pcap",
	}
	if !slices.Equal(names, wantNames) || !slices.Equal(rotated, wantNames[:3]) {
		t.Fatalf("files %q, rotated %q; want %q", names, rotated, wantNames)
	}
	for i, name := range names {
		path := filepath.Join(r.Dir, name)
		end := min(3*i+3, len(want))
		sameRecords(t, name, readPcap(t, path), want[3*i:end])
		st, _ := os.Stat(path)
		if st.Size() > r.MaxBytes {
			t.Errorf("%s: %d bytes, more than MaxBytes %d", name, st.Size(), r.MaxBytes)
		}
	}
	if r.Files() != 4 || r.Packets() != 10 || r.Current().Name != wantNames[3] || r.Current().Packets != 1 {
		t.Errorf("Files %d, Packets %d, Current %+v", r.Files(), r.Packets(), r.Current())
	}
}

func TestRotateKeepsNewest(t *testing.T) {
	c := &clock{t0}
	r := newRotator(t, c)
	r.MaxBytes = 1 // one packet per file
	r.Keep = 3
	var removed []string
	r.OnRemove = func(name string) { removed = append(removed, name) }
	// Files that are not this rotator's survive, an older run's do not.
	for _, name := range []string{"notes.txt", "other-20200101T000000Z-0001.pcap", "socklab-20200101T000000Z-0001.pcap.txt", "socklab-20200101T000000Z-0007.pcap"} {
		if err := os.WriteFile(filepath.Join(r.Dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		mustWrite(t, r, packet(i, 60, c.t))
		c.t = c.t.Add(time.Minute)
	}
	r.Close()
	entries, _ := os.ReadDir(r.Dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{
		"notes.txt", "other-20200101T000000Z-0001.pcap", "socklab-20200101T000000Z-0001.pcap.txt",
		"socklab-20261121T083300Z-0004.pcap", "socklab-20261121T083400Z-0005.pcap", "socklab-20261121T083500Z-0006.pcap",
	}
	if !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
	wantRemoved := []string{
		"socklab-20200101T000000Z-0007.pcap", "socklab-20261121T083000Z-0001.pcap",
		"socklab-20261121T083100Z-0002.pcap", "socklab-20261121T083200Z-0003.pcap",
	}
	if !slices.Equal(removed, wantRemoved) {
		t.Errorf("removed %q, want %q", removed, wantRemoved)
	}
	for i, name := range want[3:] {
		sameRecords(t, name, readPcap(t, filepath.Join(r.Dir, name)), []record{packet(3+i, 60, t0.Add(time.Duration(3+i)*time.Minute))})
	}
}

func TestRotateByAge(t *testing.T) {
	c := &clock{t0}
	r := newRotator(t, c)
	r.MaxAge = 10 * time.Minute
	steps := []time.Duration{0, 5 * time.Minute, 10 * time.Minute, 11 * time.Minute, 30 * time.Minute}
	for i, d := range steps {
		c.t = t0.Add(d)
		mustWrite(t, r, packet(i, 80, c.t))
	}
	r.Close()
	names, _ := List(r.Dir, "socklab")
	want := []string{
		"socklab-20261121T083000Z-0001.pcap", // 0 and 5 min
		"socklab-20261121T084000Z-0002.pcap", // 10 and 11 min
		"socklab-20261121T090000Z-0003.pcap", // 30 min
	}
	if !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	counts := []int{2, 2, 1}
	for i, name := range names {
		if got := len(readPcap(t, filepath.Join(r.Dir, name))); got != counts[i] {
			t.Errorf("%s: %d packets, want %d", name, got, counts[i])
		}
	}
}

func TestOversizedPacketGetsItsOwnFile(t *testing.T) {
	r := newRotator(t, &clock{t0})
	r.MaxBytes = 200
	mustWrite(t, r, packet(1, 500, t0), packet(2, 50, t0), packet(3, 50, t0), packet(4, 500, t0))
	r.Close()
	if r.Files() != 3 {
		t.Errorf("%d files, want 3 (500 | 50 50 | 500)", r.Files())
	}
}

func TestSnaplenCutsPackets(t *testing.T) {
	r := newRotator(t, &clock{t0})
	r.Snaplen = 64
	rec := packet(1, 1500, t0)
	mustWrite(t, r, rec)
	r.Close()
	got := readPcap(t, filepath.Join(r.Dir, r.Current().Name))
	if len(got) != 1 || got[0].ci.CaptureLength != 64 || got[0].ci.Length != 1500 || !bytes.Equal(got[0].data, rec.data[:64]) {
		t.Errorf("got %+v, want 64 of 1500 bytes", got)
	}
}

// TestFileValidWhileWritten checks that the file on disk always ends at a
// record boundary, flushed or not, so a reader never sees a cut packet.
func TestFileValidWhileWritten(t *testing.T) {
	r := newRotator(t, &clock{t0})
	if err := r.Open(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.Dir, r.Current().Name)
	if got := readPcap(t, path); len(got) != 0 {
		t.Fatalf("new file holds %d packets", len(got))
	}
	var want []record
	for i := range 40 {
		rec := packet(i, 40000+i*997, t0.Add(time.Duration(i)))
		want = append(want, rec)
		mustWrite(t, r, rec)
		got := readPcap(t, path) // fails on a cut record
		sameRecords(t, "unflushed", got, want[:len(got)])
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "flushed", readPcap(t, path), want)
}

func TestNameTakenByEarlierRun(t *testing.T) {
	r := newRotator(t, &clock{t0})
	taken := filepath.Join(r.Dir, Name("socklab", t0, 1))
	if err := os.WriteFile(taken, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Open(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Current().Name, Name("socklab", t0, 2); got != want {
		t.Errorf("file %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(taken); string(b) != "keep me" {
		t.Errorf("earlier file overwritten: %q", b)
	}
	r.Close()
}

func TestWriteAfterClose(t *testing.T) {
	r := newRotator(t, &clock{t0})
	mustWrite(t, r, packet(1, 10, t0))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := r.Write(packet(2, 10, t0).ci, make([]byte, 10)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := r.Open(); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close = %v, want ErrClosed", err)
	}
}

func TestOpenUnwritableDir(t *testing.T) {
	r := newRotator(t, &clock{t0})
	r.Dir = filepath.Join(r.Dir, "missing")
	if err := r.Open(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open in a missing directory = %v, want ErrNotExist", err)
	}
}
