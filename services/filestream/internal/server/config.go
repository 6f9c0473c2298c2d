// Package server serves filestream over TCP and UDP: echo, files of N
// characters generated while they are sent, and paced packet streams. The
// protocol is in services/filestream/README.md and package proto.
package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/socklab/socklab/services/filestream/proto"
	"github.com/socklab/socklab/services/kit/lab"
	"github.com/socklab/socklab/services/kit/netserve"
)

// Config is the server's part of the filestream-server settings.
type Config struct {
	netserve.Settings
	MaxFile               int64         `env:"MAX_FILE" envDefault:"123456789" flag:"max-file" help:"largest file a client may ask for, in characters"`
	StreamLimit           int           `env:"STREAM_LIMIT" envDefault:"100" flag:"stream-limit" help:"most packets in one stream"`
	MinInterval           time.Duration `env:"MIN_INTERVAL" envDefault:"1ms" flag:"min-interval" help:"smallest stream interval a client may ask for"`
	PacketSize            int           `env:"PACKET_SIZE" envDefault:"1200" flag:"packet-size" help:"largest stream packet, and the size of each UDP file datagram (content: packet-size - 15 bytes)"`
	UDPRate               int64         `env:"UDP_RATE" envDefault:"100000000" flag:"udp-rate" help:"pace of a UDP file, in content bytes per second (0: as fast as the socket takes them)"`
	UDPTransfers          int           `env:"UDP_TRANSFERS" envDefault:"64" flag:"udp-transfers" help:"UDP files and streams in flight at once; more get ERROR busy"`
	CookieTTL             time.Duration `env:"COOKIE_TTL" envDefault:"2m" flag:"cookie-ttl" help:"how long a UDP address-validation cookie stays valid"`
	IdleTimeout           time.Duration `env:"IDLE_TIMEOUT" envDefault:"5m" flag:"idle-timeout" help:"close a TCP connection whose next request has not arrived whole within this long"`
	WriteTimeout          time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s" flag:"write-timeout" help:"give up on a TCP client that takes nothing for this long"`
	BodyBudget            int64         `env:"BODY_BUDGET" envDefault:"16777216" flag:"body-budget" help:"bytes of TCP message bodies held at once over all connections; a message that would exceed it gets ERROR busy and a close"`
	UDPTransfersPerSource int           `env:"UDP_TRANSFERS_PER_SOURCE" envDefault:"8" flag:"udp-transfers-per-source" help:"UDP files and streams in flight at once to one address (IPv6: one /64); more get ERROR busy"`
}

// SetDefaults presets the listen address to the lab map's port.
func (c *Config) SetDefaults() { c.Addr = lab.Filestream.ListenAddr() }

// Bounds of the settings.
const (
	maxMaxFile     = 1 << 40
	maxStreamLimit = 1_000_000
	minPacketSize  = 64
)

// Validate reports settings no server can run with.
func (c Config) Validate() error {
	errs := []error{c.Settings.Validate()}
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
	check(c.BodyBudget >= proto.MaxBody+proto.HeaderLen, "body-budget must be at least %d (one largest message)", proto.MaxBody+proto.HeaderLen)
	check(c.UDPTransfersPerSource >= 1, "udp-transfers-per-source must be at least 1")
	return errors.Join(errs...)
}

// chunk is the content length of a DATA message.
func (c Config) chunk() int { return c.PacketSize - proto.DataOverhead }
