package shape

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Settings is what an impairment does to both directions of a link.
type Settings struct {
	// LossPercent drops this share of packets at random, 0 to 100, with a
	// resolution of 0.01.
	LossPercent float64
	// Rate limits the link to this many bits per second (0: no limit).
	Rate uint64
	// Delay holds every packet this long; Jitter varies it by up to this
	// much either way. Both need the kernel's netem qdisc.
	Delay, Jitter time.Duration
}

// Zero reports whether s impairs nothing.
func (s Settings) Zero() bool { return s == Settings{} }

// Validate checks that s can be applied.
func (s Settings) Validate() error {
	switch {
	case math.IsNaN(s.LossPercent) || s.LossPercent < 0 || s.LossPercent > 100:
		return fmt.Errorf("loss %v%%: want 0 to 100", s.LossPercent)
	case s.Rate != 0 && s.Rate < 8000:
		return fmt.Errorf("rate %s: want at least 8kbit", FormatRate(s.Rate))
	case s.Delay < 0 || s.Jitter < 0:
		return errors.New("delay and jitter must not be negative")
	case s.Jitter > 0 && s.Delay == 0:
		return errors.New("jitter needs a delay")
	case s.Jitter > s.Delay:
		return fmt.Errorf("jitter %v is larger than the delay %v", s.Jitter, s.Delay)
	case s.Delay > time.Minute:
		return fmt.Errorf("delay %v: want at most 1m", s.Delay)
	}
	return nil
}

// ParseLoss reads a loss as "5%", "5" or "0.5%".
func ParseLoss(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 100 {
		return 0, fmt.Errorf("loss %q: want a percentage from 0 to 100, like 5%%", s)
	}
	return v, nil
}

// rateUnits are tc's rate units (tc-rate(8)): SI multiples of bits and
// bytes per second.
var rateUnits = []struct {
	name string
	bits uint64
}{
	{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1},
	{"gbps", 8e9}, {"mbps", 8e6}, {"kbps", 8e3}, {"bps", 8},
}

// ParseRate reads a rate the way tc writes it: "2mbit", "500kbit",
// "1gbit", "100kbps" (kilobytes per second). A unit is required: tc reads
// a bare number as bytes per second, which surprises everybody.
func ParseRate(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(t, u.name)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) || v*float64(u.bits) >= 1<<63 {
			break
		}
		return uint64(math.Round(v * float64(u.bits))), nil
	}
	return 0, fmt.Errorf("rate %q: want a number and a unit (bit, kbit, mbit, gbit, bps, kbps, mbps, gbps), like 2mbit", s)
}

// FormatRate writes a rate in bits per second the way ParseRate reads it,
// in the largest unit that divides it.
func FormatRate(bits uint64) string {
	for _, u := range rateUnits[:4] {
		if bits >= u.bits && bits%u.bits == 0 {
			return strconv.FormatUint(bits/u.bits, 10) + u.name
		}
	}
	return strconv.FormatUint(bits, 10) + "bit"
}

// ParseDuration reads a delay or jitter: a Go duration ("40ms", "1.5s"),
// which is also how tc writes them.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("duration %q: want a time like 40ms", s)
	}
	return d, nil
}
