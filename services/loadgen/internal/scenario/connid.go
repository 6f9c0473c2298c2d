package scenario

import (
	"context"
	"strconv"
	"sync/atomic"

	"github.com/socklab/socklab/services/connid/proto"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
)

type connid struct {
	o Options
	// seq numbers the IDs of all workers, so none is claimed twice.
	seq *atomic.Uint64
}

func newConnID(o Options) (engine.Scenario, error) {
	s := connid{o: o, seq: new(atomic.Uint64)}
	if err := proto.ValidID(s.id(nil, 1<<63)); err != nil {
		return nil, err
	}
	return s, nil
}

// id appends a connection ID no other request of any generator uses: the
// run's tag and a sequence number.
func (s connid) id(dst []byte, seq uint64) []byte {
	dst = append(dst, s.o.Tag...)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, seq, 36)
}

func (s connid) NewWorker(ctx context.Context) (engine.Worker, error) {
	c, err := dialUDP(ctx, s.o.Target, s.o.Timeout)
	if err != nil {
		return nil, err
	}
	return &connidWorker{udpConn: c, s: s}, nil
}

type connidWorker struct {
	*udpConn
	s   connid
	msg []byte
}

// Do claims a fresh connection ID with HELLO; only OK with that ID is
// right. The address in OK is not checked: a proxy in the way (Docker's
// userland proxy on a published port) would change it.
func (w *connidWorker) Do(context.Context) error {
	w.msg = append(w.msg[:0], proto.Hello+" "...)
	w.msg = w.s.id(w.msg, w.s.seq.Add(1))
	b, err := w.roundTrip(w.msg)
	if err != nil {
		return err
	}
	r, err := proto.ParseReply(b)
	switch {
	case err != nil:
		return wrong("%v", b, err)
	case r.Kind == proto.KindError:
		return engine.Errorf(engine.KindServerError, "ERROR %s", r.Code)
	case r.Kind != proto.KindOK:
		return wrong("want OK for a fresh ID", b)
	case r.ID != string(w.msg[len(proto.Hello)+1:]):
		return wrong("OK for another ID", b)
	}
	return nil
}
