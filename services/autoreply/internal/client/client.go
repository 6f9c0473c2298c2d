// Package client sends AutoReplyNet messages, random printable strings of
// varying length, and checks each reply against what was sent.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"time"

	"github.com/socklab/socklab/services/autoreply/proto"
	"github.com/socklab/socklab/services/kit/latency"
)

// Config is the client's settings.
type Config struct {
	Protocol string        `env:"PROTOCOL" envDefault:"tcp" flag:"protocol" help:"tcp or udp"`
	Server   string        `env:"SERVER" envDefault:"127.0.0.1:9000" flag:"server" help:"server address, HOST:PORT"`
	Count    int           `env:"COUNT" envDefault:"10" flag:"count" help:"messages to send; 0 sends until interrupted"`
	Interval time.Duration `env:"INTERVAL" envDefault:"200ms" flag:"interval" help:"pause between a reply and the next message"`
	MinLen   int           `env:"MIN_LEN" envDefault:"1" flag:"min-len" help:"shortest message in bytes"`
	MaxLen   int           `env:"MAX_LEN" envDefault:"64" flag:"max-len" help:"longest message in bytes"`
	Timeout  time.Duration `env:"TIMEOUT" envDefault:"2s" flag:"timeout" help:"wait this long for each reply (UDP: then count it lost)"`
	Seed     uint64        `env:"SEED" flag:"seed" help:"seed for the random messages, for repeatable runs (0: random)"`
	Quiet    bool          `env:"QUIET" flag:"q" help:"print only the summary"`
}

// Validate reports settings the client cannot run with.
func (c Config) Validate() error {
	switch {
	case c.Protocol != "tcp" && c.Protocol != "udp":
		return fmt.Errorf("protocol must be tcp or udp, not %q", c.Protocol)
	case c.Count < 0:
		return errors.New("count must not be negative")
	case c.MinLen < 0 || c.MaxLen < c.MinLen:
		return fmt.Errorf("want 0 <= min-len <= max-len, have %d and %d", c.MinLen, c.MaxLen)
	case c.Protocol == "udp" && c.MaxLen > 65507:
		return errors.New("max-len over UDP must be at most 65507")
	case c.MaxLen > 16<<20:
		return errors.New("max-len must be at most 16777216")
	case c.Timeout <= 0:
		return errors.New("timeout must be positive")
	case c.Interval < 0:
		return errors.New("interval must not be negative")
	}
	return nil
}

// Summary counts what a run saw.
type Summary struct {
	Sent, Replied, Lost, Errors int
	Latency                     latency.Summary
}

// OK reports whether every message sent got its matching reply.
func (s Summary) OK() bool { return s.Sent == s.Replied && s.Errors == 0 && s.Lost == 0 }

func (s Summary) String() string {
	return fmt.Sprintf("sent=%d replied=%d lost=%d errors=%d\n%v",
		s.Sent, s.Replied, s.Lost, s.Errors, s.Latency)
}

// printable is the alphabet of generated messages: printable ASCII.
const printable = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

// Message returns a random printable message with a length in [min, max].
func Message(rng *rand.Rand, minLen, maxLen int) []byte {
	n := minLen + rng.IntN(maxLen-minLen+1)
	b := make([]byte, n)
	for i := range b {
		b[i] = printable[rng.IntN(len(printable))]
	}
	return b
}

// Run sends cfg.Count messages (or until ctx ends when Count is 0), printing
// each exchange to out unless cfg.Quiet. It returns the summary; the error is
// for a run that could not start or lost its connection.
func Run(ctx context.Context, cfg Config, out io.Writer) (sum Summary, err error) {
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rec := latency.New()
	defer func() { sum.Latency = rec.Summary() }()

	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	conn, derr := d.DialContext(dctx, cfg.Protocol, cfg.Server)
	cancel()
	if derr != nil {
		return sum, fmt.Errorf("cannot reach %s over %s: %w", cfg.Server, cfg.Protocol, derr)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	ex := exchanger{conn: conn, r: bufio.NewReaderSize(conn, 1<<16), udp: cfg.Protocol == "udp"}
	for i := 0; cfg.Count == 0 || i < cfg.Count; i++ {
		if i > 0 && cfg.Interval > 0 {
			t := time.NewTimer(cfg.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return sum, nil
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return sum, nil
		}
		msg := Message(rng, cfg.MinLen, cfg.MaxLen)
		if !cfg.Quiet {
			fmt.Fprintf(out, "-> %q (%d bytes)\n", msg, len(msg))
		}
		sum.Sent++
		start := time.Now()
		line, err := ex.exchange(msg, cfg.Timeout)
		rtt := time.Since(start)
		switch {
		case ctx.Err() != nil:
			sum.Sent-- // interrupted, not answered: do not count it either way
			return sum, nil
		case errors.Is(err, errLost):
			sum.Lost++
			if !cfg.Quiet {
				fmt.Fprintf(out, "<- no reply within %v (lost)\n", cfg.Timeout)
			}
			continue
		case err != nil:
			sum.Errors++
			return sum, err
		}
		rec.Record(rtt)
		r, perr := proto.Parse(line)
		switch {
		case perr != nil:
			sum.Errors++
			fmt.Fprintf(out, "<- %s\n   error: %v\n", line, perr)
		case !r.Matches(msg):
			sum.Errors++
			fmt.Fprintf(out, "<- %s\n   error: reply does not match the message (len=%d, want %d)\n", line, r.Len, len(msg))
		default:
			sum.Replied++
			if !cfg.Quiet {
				fmt.Fprintf(out, "<- %s (%v)\n", line, rtt.Round(time.Microsecond))
			}
		}
	}
	return sum, nil
}

var errLost = errors.New("reply lost")

type exchanger struct {
	conn net.Conn
	r    *bufio.Reader
	udp  bool
	buf  []byte
	wbuf []byte
}

// exchange sends msg and returns the reply line. Over UDP a late reply to an
// earlier message is skipped by its snippet; a timeout is errLost.
func (e *exchanger) exchange(msg []byte, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	e.conn.SetDeadline(deadline)
	if !e.udp {
		e.wbuf = append(append(e.wbuf[:0], msg...), '\n')
		if _, err := e.conn.Write(e.wbuf); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		line, err := e.r.ReadSlice('\n')
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, fmt.Errorf("no reply within %v", timeout)
		case errors.Is(err, io.EOF):
			return nil, errors.New("server closed the connection")
		case err != nil:
			return nil, fmt.Errorf("receive: %w", err)
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return line, nil
	}
	if _, err := e.conn.Write(msg); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	if e.buf == nil {
		e.buf = make([]byte, 64<<10)
	}
	for {
		n, err := e.conn.Read(e.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errLost
		}
		if err != nil {
			// A refused port shows up as an ICMP error on the next read.
			return nil, fmt.Errorf("receive: %w", err)
		}
		line := e.buf[:n]
		if r, err := proto.Parse(line); err == nil && !r.Matches(msg) {
			continue // a late reply to an earlier, timed-out message
		}
		return line, nil
	}
}
