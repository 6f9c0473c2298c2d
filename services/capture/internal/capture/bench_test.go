package capture

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/socklab/socklab/services/capture/internal/filter"
	"github.com/socklab/socklab/services/capture/internal/pcapfile"
)

// loopSource hands out the same packet forever, as fast as it is asked,
// in batches of a ring block's worth.
type loopSource struct {
	data []byte
	ci   gopacket.CaptureInfo
}

func (s *loopSource) ReadPackets(fn func([]byte, gopacket.CaptureInfo) error) error {
	for range 1 << 20 / (len(s.data) + 80) { // a 1 MiB block, with headers
		if err := fn(s.data, s.ci); err != nil {
			return err
		}
	}
	return nil
}

func (s *loopSource) Close() error { return nil }

// BenchmarkRecord compares the whole recorder (filter, rotation, metrics,
// lock, flush ticker) with a minimal loop writing the same packets through
// pcapgo into one buffered file.
func BenchmarkRecord(b *testing.B) {
	for _, size := range []int{100, 1400} {
		frame := udpFrame(b, 9000, string(make([]byte, size-42)))
		ci := gopacket.CaptureInfo{Timestamp: t0, CaptureLength: len(frame), Length: len(frame)}
		b.Run("size="+strconv.Itoa(size)+"/impl=ours", func(b *testing.B) {
			flt, _ := filter.Parse("tcp port 40000 or udp port 9000")
			rec := &Recorder{
				Source: &loopSource{frame, ci},
				Filter: flt,
				Out: &pcapfile.Rotator{
					Dir: b.TempDir(), Prefix: "bench", MaxBytes: 50e6, Keep: 2,
					Snaplen: pcapfile.MaxSnaplen, LinkType: layers.LinkTypeEthernet,
				},
				Iface: "bench", Count: int64(b.N),
				FlushEvery: time.Second, HeartbeatEvery: 5 * time.Second, LogEvery: time.Hour,
				Metrics: NewMetrics(prometheus.NewRegistry()), Log: zap.NewNop(),
			}
			b.ReportAllocs()
			b.ResetTimer()
			if err := rec.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			b.SetBytes(int64(size))
		})
		b.Run("size="+strconv.Itoa(size)+"/impl=raw", func(b *testing.B) {
			// The same disk traffic: a new file every 50 MB, the one before
			// the last deleted.
			dir := b.TempDir()
			bw := bufio.NewWriterSize(nil, 1<<20)
			var f *os.File
			var w *pcapgo.Writer
			var written int64
			files := 0
			next := func() {
				if f != nil {
					bw.Flush()
					f.Close()
					os.Remove(filepath.Join(dir, strconv.Itoa(files-2)))
				}
				var err error
				if f, err = os.Create(filepath.Join(dir, strconv.Itoa(files))); err != nil {
					b.Fatal(err)
				}
				files++
				bw.Reset(f)
				w = pcapgo.NewWriterNanos(bw)
				w.WriteFileHeader(pcapfile.MaxSnaplen, layers.LinkTypeEthernet)
				written = 24
			}
			next()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				data := frame
				if written+16+int64(len(data)) > 50e6 {
					next()
				}
				if err := w.WritePacket(ci, data); err != nil {
					b.Fatal(err)
				}
				written += 16 + int64(len(data))
			}
			if err := bw.Flush(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			b.SetBytes(int64(size))
		})
	}
}
