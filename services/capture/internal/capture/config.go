// Package capture records packets from a source (a live interface, or a
// list in tests) into rotating pcap files: it filters them, counts them,
// flushes the files, writes a heartbeat for the healthcheck and logs a
// periodic summary.
package capture

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/socklab/socklab/services/capture/internal/filter"
	"github.com/socklab/socklab/services/capture/internal/live"
	"github.com/socklab/socklab/services/capture/internal/pcapfile"
)

// Config holds capture's settings, read from CAPTURE_* variables and the
// flags that mirror them.
type Config struct {
	Iface        string        `env:"IFACE" envDefault:"socklab0" flag:"iface" help:"network interface to record: the lab's bridge, or lo"`
	Dir          string        `env:"DIR" envDefault:"/captures" flag:"dir" help:"directory of the pcap files and the heartbeat"`
	Prefix       string        `env:"PREFIX" envDefault:"socklab" flag:"prefix" help:"file names: <prefix>-<UTC time>-<seq>.pcap"`
	Filter       string        `env:"FILTER" flag:"filter" help:"record only matching packets, e.g. \"tcp port 40000 or udp port 9000\" (syntax in README)"`
	KernelFilter bool          `env:"KERNEL_FILTER" envDefault:"true" flag:"kernel-filter" help:"also run the filter in the kernel, as a socket filter, so rejected packets cost nothing"`
	Snaplen      int           `env:"SNAPLEN" envDefault:"262144" flag:"snaplen" help:"bytes kept of each packet, 64 to 262144"`
	RingBytes    ByteSize      `env:"RING_BYTES" envDefault:"64MiB" flag:"ring-bytes" help:"memory the kernel writes packets into (TPACKET_V3 ring), 1MiB to 1GiB: what absorbs bursts without drops"`
	RotateBytes  ByteSize      `env:"ROTATE_BYTES" envDefault:"50MB" flag:"rotate-bytes" help:"start a new file before this size: bytes or 50MB, 64MiB... (0: never)"`
	RotateEvery  time.Duration `env:"ROTATE_EVERY" envDefault:"0s" flag:"rotate-every" help:"start a new file when a packet comes this long after the current one opened (0: never)"`
	Keep         int           `env:"KEEP" envDefault:"10" flag:"keep" help:"keep this many newest files, delete older ones (0: keep all)"`
	Wait         time.Duration `env:"WAIT" envDefault:"30s" flag:"wait" help:"how long to wait for a missing interface to appear"`
	Promisc      bool          `env:"PROMISC" envDefault:"true" flag:"promisc" help:"promiscuous mode (a bridge shows traffic between its ports only so)"`
	Count        int64         `env:"COUNT" flag:"count" help:"stop after recording this many packets (0: no limit)"`
	Duration     time.Duration `env:"DURATION" flag:"duration" help:"stop after capturing this long (0: no limit)"`
	FlushEvery   time.Duration `env:"FLUSH_EVERY" envDefault:"1s" flag:"flush-every" help:"how often buffered packets are written to the file"`
	Heartbeat    time.Duration `env:"HEARTBEAT" envDefault:"5s" flag:"heartbeat" help:"how often the heartbeat file is rewritten; healthcheck fails when it is 3 times older"`
	LogEvery     time.Duration `env:"LOG_EVERY" envDefault:"30s" flag:"log-every" help:"how often a summary line is logged (0: only at the end)"`
}

// The ring's bounds: 8 blocks of 128 KiB at least (live.MinRingBytes),
// and at most what a capture container can sensibly pin in the kernel.
const (
	MinRingBytes = live.MinRingBytes
	MaxRingBytes = 1 << 30
)

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks the settings and parses the filter.
func (c Config) Validate() (*filter.Filter, error) {
	var errs []error
	if c.Iface == "" {
		errs = append(errs, errors.New("iface: empty"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: empty"))
	}
	if !prefixRE.MatchString(c.Prefix) {
		errs = append(errs, fmt.Errorf("prefix %q: want 1-64 letters, digits, '.', '_' or '-'", c.Prefix))
	}
	if c.Snaplen < 64 || c.Snaplen > pcapfile.MaxSnaplen {
		errs = append(errs, fmt.Errorf("snaplen %d: want 64 to %d", c.Snaplen, pcapfile.MaxSnaplen))
	}
	if c.RingBytes < MinRingBytes || c.RingBytes > MaxRingBytes {
		errs = append(errs, fmt.Errorf("ring-bytes %v: want %v to %v", c.RingBytes, ByteSize(MinRingBytes), ByteSize(MaxRingBytes)))
	}
	if c.RotateBytes < 0 {
		errs = append(errs, fmt.Errorf("rotate-bytes %d: negative", c.RotateBytes))
	}
	if c.Keep < 0 {
		errs = append(errs, fmt.Errorf("keep %d: negative", c.Keep))
	}
	if c.Count < 0 {
		errs = append(errs, fmt.Errorf("count %d: negative", c.Count))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
		min  time.Duration
	}{
		{"rotate-every", c.RotateEvery, 0},
		{"wait", c.Wait, 0},
		{"duration", c.Duration, 0},
		{"log-every", c.LogEvery, 0},
		{"flush-every", c.FlushEvery, time.Millisecond},
		{"heartbeat", c.Heartbeat, time.Millisecond},
	} {
		if d.d < d.min {
			errs = append(errs, fmt.Errorf("%s %v: want at least %v", d.name, d.d, d.min))
		}
	}
	f, err := filter.Parse(c.Filter)
	if err != nil {
		errs = append(errs, err)
	}
	return f, errors.Join(errs...)
}

// ByteSize is a size in bytes, written as a number with an optional unit:
// B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
type ByteSize int64

var units = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first, so "MiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"B", 1},
}

// UnmarshalText parses "50MB", "64MiB", "1000000" or "0".
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range units {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("size %q: want a number of bytes, optionally with B, KB, MB, GB, KiB, MiB or GiB", text)
	}
	*b = ByteSize(n * mult)
	return nil
}

// MarshalText writes the size in the largest unit that divides it.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

func (b ByteSize) String() string {
	n := int64(b)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
