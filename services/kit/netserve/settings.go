package netserve

import (
	"errors"
	"fmt"
)

// Settings are the listener settings of a server that serves TCP and UDP on
// one port, with the limits of its TCP connections: a service embeds them in
// its Config, so that every server reads the same variables (with its own
// prefix: AUTOREPLY_PROTOCOL), offers the same flags and checks them alike.
//
// Addr has no default tag: its port is the service's own, from the lab map,
// which the service's Config sets in its SetDefaults (config.Defaulter).
type Settings struct {
	Protocol string `env:"PROTOCOL" envDefault:"both" flag:"protocol" help:"tcp, udp or both"`
	Addr     string `env:"ADDR" flag:"addr" help:"listen address, HOST:PORT (the same port for TCP and UDP)"`
	Limits
	UDPReaders int `env:"UDP_READERS" envDefault:"1" flag:"udp-readers" help:"goroutines reading the UDP socket"`
}

// MaxUDPReaders bounds Settings.UDPReaders.
const MaxUDPReaders = 64

// Validate reports the settings no server can run with, each in one line.
func (s Settings) Validate() error {
	var errs []error
	switch s.Protocol {
	case ProtoTCP, ProtoUDP, ProtoBoth:
	default:
		errs = append(errs, fmt.Errorf("protocol must be tcp, udp or both, not %q", s.Protocol))
	}
	errs = append(errs, s.Limits.Validate())
	if s.UDPReaders < 1 || s.UDPReaders > MaxUDPReaders {
		errs = append(errs, fmt.Errorf("udp-readers must be from 1 to %d", MaxUDPReaders))
	}
	return errors.Join(errs...)
}

// Limits bound the TCP connections a server serves at once, in all and from
// one source (so that one client cannot lock out the rest); Apply makes them
// Server's MaxConns and MaxConnsPerSource. A connection beyond them gets the
// server's BusyMessage, if any, and is closed. A TCP-only service embeds
// Limits alone.
type Limits struct {
	MaxConns          int `env:"MAX_CONNS" envDefault:"1000" flag:"max-conns" help:"TCP connections served at once; more are closed, after the protocol's busy reply if it has one (0: no limit)"`
	MaxConnsPerSource int `env:"MAX_CONNS_PER_SOURCE" envDefault:"256" flag:"max-conns-per-source" help:"TCP connections served at once from one address (IPv6: one /64); more are closed, after the protocol's busy reply if it has one (-1: no limit)"`
}

// Apply sets s's MaxConns and MaxConnsPerSource to l's, and returns s: a
// handler's TCPServer builds its Server with Apply, so that the limits of
// every service reach netserve the same way.
func (l Limits) Apply(s *Server) *Server {
	s.MaxConns, s.MaxConnsPerSource = l.MaxConns, l.MaxConnsPerSource
	return s
}

// Validate reports the limits no server can run with, each in one line.
// MaxConnsPerSource may not be 0, which Server would read as its default.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxConns < 0 {
		errs = append(errs, errors.New("max-conns must not be negative"))
	}
	if l.MaxConnsPerSource != -1 && l.MaxConnsPerSource < 1 {
		errs = append(errs, errors.New("max-conns-per-source must be -1 (no limit) or at least 1"))
	}
	return errors.Join(errs...)
}
