// Package server serves filestream over TCP and UDP: echo, files of N
// characters generated while they are sent, and paced packet streams. The
// protocol is in services/filestream/README.md and package proto.
package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
)

// Config is the server's part of the filestream-server settings.
type Config struct {
	Protocol              string        `env:"PROTOCOL" envDefault:"both" flag:"protocol" help:"tcp, udp or both"`
	Addr                  string        `env:"ADDR" envDefault:":9001" flag:"addr" help:"listen address HOST:PORT (the same port for TCP and UDP)"`
	MaxFile               int64         `env:"MAX_FILE" envDefault:"123456789" flag:"max-file" help:"largest file a client may ask for, in characters"`
	StreamLimit           int           `env:"STREAM_LIMIT" envDefault:"100" flag:"stream-limit" help:"most packets in one stream"`
	MinInterval           time.Duration `env:"MIN_INTERVAL" envDefault:"1ms" flag:"min-interval" help:"smallest stream interval a client may ask for"`
	PacketSize            int           `env:"PACKET_SIZE" envDefault:"1200" flag:"packet-size" help:"largest stream packet, and the size of each UDP file datagram (content: packet-size - 15 bytes)"`
	UDPRate               int64         `env:"UDP_RATE" envDefault:"100000000" flag:"udp-rate" help:"pace of a UDP file, in content bytes per second (0: as fast as the socket takes them)"`
	UDPTransfers          int           `env:"UDP_TRANSFERS" envDefault:"64" flag:"udp-transfers" help:"UDP files and streams in flight at once; more get ERROR busy"`
	CookieTTL             time.Duration `env:"COOKIE_TTL" envDefault:"2m" flag:"cookie-ttl" help:"how long a UDP address-validation cookie stays valid"`
	IdleTimeout           time.Duration `env:"IDLE_TIMEOUT" envDefault:"5m" flag:"idle-timeout" help:"close a TCP connection whose next request has not arrived whole within this long"`
	WriteTimeout          time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s" flag:"write-timeout" help:"give up on a TCP client that takes nothing for this long"`
	MaxConns              int           `env:"MAX_CONNS" envDefault:"1000" flag:"max-conns" help:"TCP connections served at once; more get ERROR busy (0: no limit)"`
	MaxConnsPerSource     int           `env:"MAX_CONNS_PER_SOURCE" envDefault:"256" flag:"max-conns-per-source" help:"TCP connections served at once from one address (IPv6: one /64); more get ERROR busy (-1: no limit)"`
	BodyBudget            int64         `env:"BODY_BUDGET" envDefault:"16777216" flag:"body-budget" help:"bytes of TCP message bodies held at once over all connections; a message that would exceed it gets ERROR busy and a close"`
	UDPTransfersPerSource int           `env:"UDP_TRANSFERS_PER_SOURCE" envDefault:"8" flag:"udp-transfers-per-source" help:"UDP files and streams in flight at once to one address (IPv6: one /64); more get ERROR busy"`
	UDPReaders            int           `env:"UDP_READERS" envDefault:"1" flag:"udp-readers" help:"goroutines reading the UDP socket"`
}

// Bounds of the settings.
const (
	maxMaxFile     = 1 << 40
	maxStreamLimit = 1_000_000
	minPacketSize  = 64
)

// Validate reports settings no server can run with.
func (c Config) Validate() error {
	switch c.Protocol {
	case "tcp", "udp", "both":
	default:
		return fmt.Errorf("protocol must be tcp, udp or both, not %q", c.Protocol)
	}
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.MaxFile >= 0 && c.MaxFile <= maxMaxFile, "max-file must be from 0 to %d", int64(maxMaxFile))
	check(c.StreamLimit >= 1 && c.StreamLimit <= maxStreamLimit, "stream-limit must be from 1 to %d", maxStreamLimit)
	check(c.MinInterval >= 0 && c.MinInterval <= proto.MaxInterval, "min-interval must be from 0 to %v", proto.MaxInterval)
	check(c.PacketSize >= minPacketSize && c.PacketSize <= proto.MaxDatagram, "packet-size must be from %d to %d", minPacketSize, proto.MaxDatagram)
	check(c.UDPRate >= 0, "udp-rate must not be negative")
	check(c.UDPTransfers >= 1, "udp-transfers must be at least 1")
	check(c.CookieTTL >= time.Second, "cookie-ttl must be at least 1s")
	check(c.WriteTimeout >= 0, "write-timeout must not be negative")
	check(c.MaxConns >= 0, "max-conns must not be negative")
	check(c.MaxConnsPerSource == -1 || c.MaxConnsPerSource >= 1, "max-conns-per-source must be -1 (no limit) or at least 1")
	check(c.BodyBudget >= proto.MaxBody+proto.HeaderLen, "body-budget must be at least %d (one largest message)", proto.MaxBody+proto.HeaderLen)
	check(c.UDPTransfersPerSource >= 1, "udp-transfers-per-source must be at least 1")
	check(c.UDPReaders >= 1 && c.UDPReaders <= 64, "udp-readers must be from 1 to 64")
	return errors.Join(errs...)
}

// chunk is the content length of a DATA message.
func (c Config) chunk() int { return c.PacketSize - proto.DataOverhead }
