package server

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// recvQueue tells whether datagrams wait in a UDP socket's receive queue.
// One read loop owns one; it allocates nothing per call.
type recvQueue struct {
	rc  syscall.RawConn
	ctl func(fd uintptr)
	n   int
	err error
}

func newRecvQueue(c *net.UDPConn) *recvQueue {
	q := &recvQueue{}
	if c == nil {
		return q
	}
	if rc, err := c.SyscallConn(); err == nil {
		q.rc = rc
		q.ctl = q.control
	}
	return q
}

func (q *recvQueue) control(fd uintptr) {
	// SIOCINQ on a UDP socket: the size of the next datagram, 0 when none.
	q.n, q.err = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
}

// waiting reports whether another datagram is queued. On any error it says
// no, which only costs batching.
func (q *recvQueue) waiting() bool {
	if q.rc == nil || q.rc.Control(q.ctl) != nil {
		return false
	}
	return q.err == nil && q.n > 0
}
