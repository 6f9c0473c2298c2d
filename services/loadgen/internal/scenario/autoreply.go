package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/socklab/socklab/services/autoreply/proto"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

// Bounds of an autoreply message.
const (
	maxAutoreplyTCP = 64 << 10 // the server's default line limit
	maxAutoreplyUDP = 65507 - 1
)

func checkSize(o Options, max int) error {
	if o.Size < 1 || o.Size > max {
		return fmt.Errorf("size must be from 1 to %d bytes", max)
	}
	return nil
}

type autoreplyTCP struct{ o Options }

func newAutoreplyTCP(o Options) (engine.Scenario, error) {
	if err := checkSize(o, maxAutoreplyTCP); err != nil {
		return nil, err
	}
	return autoreplyTCP{o}, nil
}

func (s autoreplyTCP) NewWorker(ctx context.Context) (engine.Worker, error) {
	c, err := dialLines(ctx, s.o.Target, s.o.Timeout)
	if err != nil {
		return nil, err
	}
	return &autoreplyTCPWorker{lineConn: c, size: s.o.Size}, nil
}

type autoreplyTCPWorker struct {
	*lineConn
	size int
	seq  uint64
	msg  []byte
}

func (w *autoreplyTCPWorker) Do(context.Context) error {
	w.seq++
	w.msg = append(appendPayload(w.msg[:0], w.seq, w.size), '\n')
	if err := w.arm(); err != nil {
		return err
	}
	if err := w.send(w.msg); err != nil {
		return err
	}
	line, err := w.readLine(proto.MaxLen)
	if err != nil {
		return err
	}
	return checkAutoreply(line, w.msg[:len(w.msg)-1])
}

// checkAutoreply checks that line is the reply to msg.
func checkAutoreply(line, msg []byte) error {
	if rest, ok := bytes.CutPrefix(line, []byte("ERROR ")); ok {
		return &engine.Error{Kind: engine.KindServerError, Err: errors.New(string(rest))}
	}
	r, err := proto.Parse(line)
	if err != nil {
		return wrong("%v", line, err)
	}
	if !r.Matches(msg) {
		return wrong("reply is not to this message (len=%d)", line, len(msg))
	}
	return nil
}

type autoreplyUDP struct{ o Options }

func newAutoreplyUDP(o Options) (engine.Scenario, error) {
	if err := checkSize(o, maxAutoreplyUDP); err != nil {
		return nil, err
	}
	return autoreplyUDP{o}, nil
}

func (s autoreplyUDP) NewWorker(ctx context.Context) (engine.Worker, error) {
	c, err := dialUDP(ctx, s.o.Target, s.o.Timeout)
	if err != nil {
		return nil, err
	}
	return &autoreplyUDPWorker{udpConn: c, size: s.o.Size}, nil
}

type autoreplyUDPWorker struct {
	*udpConn
	size int
	seq  uint64
	msg  []byte
}

func (w *autoreplyUDPWorker) Do(context.Context) error {
	w.seq++
	w.msg = appendPayload(w.msg[:0], w.seq, w.size)
	b, err := w.roundTrip(w.msg)
	if err != nil {
		return err
	}
	return checkAutoreply(bytes.TrimSuffix(b, []byte{'\n'}), w.msg)
}
