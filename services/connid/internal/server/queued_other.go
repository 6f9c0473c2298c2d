//go:build !linux

package server

import "net"

// recvQueue tells whether datagrams wait in a UDP socket's receive queue.
// Here it cannot tell, and says no.
type recvQueue struct{}

func newRecvQueue(*net.UDPConn) *recvQueue { return &recvQueue{} }

func (*recvQueue) waiting() bool { return false }
