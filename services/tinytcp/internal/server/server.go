// Package server answers TinyTCP commands (package proto) on connections
// served by kit/netserve: a banner on connect, one reply line per command
// line, in order, flushed when the client's pending input is drained.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/netserve"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

// Config is the server's part of the tinytcp-server settings.
type Config struct {
	Addr         string        `env:"ADDR" flag:"addr" help:"listen address, HOST:PORT"` // default: the lab map's port (SetDefaults)
	Banner       string        `env:"BANNER" envDefault:"WELCOME, I'm TinyServer not pressure" flag:"banner" help:"line sent on connect; must begin with WELCOME"`
	MaxLineBytes int           `env:"MAX_LINE" envDefault:"4096" flag:"max-line" help:"longest command line in bytes (without its line end); longer gets 'ERROR LINE_TOO_LONG' and a close"`
	IdleTimeout  time.Duration `env:"IDLE_TIMEOUT" envDefault:"5m" flag:"idle-timeout" help:"close a connection that sends no complete line for this long"`
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT" envDefault:"30s" flag:"write-timeout" help:"close a connection whose replies cannot be written for this long (a client that never reads)"`
	netserve.Limits
}

// SetDefaults presets the listen address to the lab map's port.
func (c *Config) SetDefaults() { c.Addr = lab.TinyTCP.ListenAddr() }

// Zone is the time zone setting. TZ carries no service prefix: it is the
// variable every program honours.
type Zone struct {
	TZ string `env:"TZ" flag:"tz" help:"time zone of TIME replies, an IANA name such as America/Bogota (default: the system's local zone)"`
}

// Location resolves TZ: empty means the system's local zone (which the Go
// runtime has already read from the process's own TZ); a leading ":" is
// dropped, as POSIX allows.
func (z Zone) Location() (*time.Location, error) {
	tz := strings.TrimPrefix(z.TZ, ":")
	if tz == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("TZ %q: %w", tz, err)
	}
	return loc, nil
}

// MaxBannerBytes bounds the banner.
const MaxBannerBytes = 1024

// Validate reports settings no server can run with.
func (c Config) Validate() error {
	if !strings.HasPrefix(c.Banner, proto.BannerPrefix) {
		return fmt.Errorf("banner must begin with %s", proto.BannerPrefix)
	}
	if len(c.Banner) > MaxBannerBytes || strings.ContainsAny(c.Banner, "\r\n") {
		return fmt.Errorf("banner must be one line of at most %d bytes", MaxBannerBytes)
	}
	if c.MaxLineBytes < 4 || c.MaxLineBytes > 1<<20 {
		return errors.New("max-line must be from 4 to 1048576 bytes")
	}
	if c.IdleTimeout <= 0 {
		return errors.New("idle-timeout must be positive")
	}
	if c.WriteTimeout <= 0 {
		return errors.New("write-timeout must be positive")
	}
	return c.Limits.Validate()
}

// Handler answers TinyTCP commands on one connection at a time; one Handler
// serves every connection of a server.
type Handler struct {
	// Banner is sent on connect; empty means proto.DefaultBanner.
	Banner string
	// Location is TIME's time zone; nil means time.Local.
	Location *time.Location
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Log receives per-connection debug events; nil means none.
	Log *zap.Logger
	// Metrics counts commands and errors; nil counts nothing.
	Metrics *Metrics
}

// ServeConn sends the banner, then answers each command line in order,
// flushing when the client's pending input is drained so that a pipelined
// burst is answered in few large writes.
func (h *Handler) ServeConn(_ context.Context, c *netserve.Conn) {
	banner := h.Banner
	if banner == "" {
		banner = proto.DefaultBanner
	}
	now := h.Now
	if now == nil {
		now = time.Now
	}
	loc := h.Location
	if loc == nil {
		loc = time.Local
	}
	m := h.Metrics
	c.WriteString(banner)
	c.WriteString("\n")
	if err := c.Flush(); err != nil {
		m.writeError()
		return
	}
	clock := timeCache{loc: loc}
	buf := make([]byte, 0, 128)
	// Latency runs from reading a command to flushing its reply. Replies to
	// a pipelined burst leave in one flush, so the clock is read once per
	// flush, not per command: each command of the burst is counted with
	// the burst's latency, which is that of its first (oldest) command.
	var t tally
	defer func() { m.add(&t, now()) }()
	for {
		line, err := c.ReadLine()
		if err != nil {
			h.connEnded(c, &t, err)
			return
		}
		if t.n == 0 {
			t.started = now()
		}
		t.n++
		cmd, err := proto.Parse(line)
		buf = buf[:0]
		if err != nil {
			code := proto.CodeOf(err)
			buf = proto.AppendError(buf, code)
			t.code(code)
		} else {
			switch cmd.Verb {
			case proto.Time:
				at := t.started
				if t.n > 1 {
					at = now()
				}
				buf = clock.appendTime(buf, at)
			case proto.Echo:
				buf = proto.AppendEcho(buf, cmd.Text)
			case proto.Help:
				buf = append(buf, proto.HelpReply...)
			case proto.Quit:
				buf = append(buf, proto.ByeReply...)
			}
			t.verb(cmd.Verb)
		}
		buf = append(buf, '\n')
		if _, err := c.Write(buf); err != nil {
			m.writeError()
			return
		}
		if cmd.Verb == proto.Quit {
			return // netserve flushes BYE and closes
		}
		drained := c.Buffered() == 0
		if err := c.FlushIfDrained(); err != nil {
			m.writeError()
			return
		}
		if drained {
			m.add(&t, now())
		}
	}
}

func (h *Handler) connEnded(c *netserve.Conn, t *tally, err error) {
	switch {
	case errors.Is(err, netserve.ErrLineTooLong):
		t.code(proto.LineTooLong)
		// The rest of the line is unread and cannot be resynchronised: say
		// why and close. netserve flushes and closes gracefully, so the
		// reply is not lost to a reset.
		c.Write(proto.ErrorLine(proto.LineTooLong))
	case errors.Is(err, netserve.ErrIdleTimeout):
		h.Metrics.idleTimeout()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, netserve.ErrServerClosed):
	default:
		if h.Log != nil {
			h.Log.Debug("connection ended", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
		}
	}
}

// timeCache formats TIME replies, reusing the text while the second has not
// changed: the reply depends only on the Unix second and the location, and
// formatting costs more than the rest of a command.
type timeCache struct {
	loc  *time.Location
	sec  int64
	text []byte // "TIME <ISO 8601>", valid when len > 0
}

func (tc *timeCache) appendTime(dst []byte, t time.Time) []byte {
	if s := t.Unix(); s != tc.sec || len(tc.text) == 0 {
		tc.sec = s
		tc.text = proto.AppendTime(tc.text[:0], t.In(tc.loc))
	}
	return append(dst, tc.text...)
}

// TCPServer returns a netserve.Server serving h with cfg's limits. Its idle
// timeout reads the clock only when the input is used up (or every 64
// lines of a burst that never drains), not per command.
func (h *Handler) TCPServer(cfg Config) *netserve.Server {
	return cfg.Limits.Apply(&netserve.Server{
		Handler:      h,
		IdleTimeout:  cfg.IdleTimeout,
		WriteTimeout: cfg.WriteTimeout,
		MaxLineBytes: cfg.MaxLineBytes,
		BusyMessage:  proto.ErrorLine(proto.ServerBusy),
		Log:          h.Log,
	})
}
