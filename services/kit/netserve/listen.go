package netserve

import (
	"fmt"
	"net"
	"strconv"
)

// Protocols a server can be asked to serve.
const (
	ProtoTCP  = "tcp"
	ProtoUDP  = "udp"
	ProtoBoth = "both"
)

// ephemeralTries bounds the attempts at one kernel-chosen port free for
// both TCP and UDP.
const ephemeralTries = 16

// Listen opens what protocol ("tcp", "udp" or "both") asks for on addr and
// returns the TCP listener and/or the UDP socket (nil for the one not asked
// for). For "both" the two share one port number: with port 0 the kernel's
// TCP port is then taken for UDP too, trying again with another port when
// that number is busy for UDP; with a fixed port, a port either protocol
// cannot have is an error naming the protocol. It never returns the two on
// different ports.
func Listen(protocol, addr string) (net.Listener, *net.UDPConn, error) {
	switch protocol {
	case ProtoTCP:
		ln, err := net.Listen("tcp", addr)
		return ln, nil, err
	case ProtoUDP:
		pc, err := listenUDP(addr)
		return nil, pc, err
	case ProtoBoth:
	default:
		return nil, nil, fmt.Errorf("protocol %q: want tcp, udp or both", protocol)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for range ephemeralTries {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		tcpPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		pc, err := listenUDP(net.JoinHostPort(host, tcpPort))
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		if port != "0" {
			return nil, nil, fmt.Errorf("udp %s (TCP has the port, UDP cannot): %w", addr, err)
		}
		if !isAddrInUse(err) {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("no port free for both TCP and UDP on %s after %d tries", addr, ephemeralTries)
}

func listenUDP(addr string) (*net.UDPConn, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}
