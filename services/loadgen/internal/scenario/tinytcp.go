package scenario

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

// maxTimeSkew bounds how far a TIME reply may be from the generator's
// clock: the lab's containers share the host's.
const maxTimeSkew = 5 * time.Minute

type tinytcp struct {
	o Options
	// seq numbers requests across workers, so that the TIME share holds
	// whatever reconnections happen.
	seq *atomic.Uint64
}

func newTinyTCP(o Options) (engine.Scenario, error) {
	if err := checkSize(o, proto.DefaultMaxLine-len("ECHO ")); err != nil {
		return nil, err
	}
	return tinytcp{o: o, seq: new(atomic.Uint64)}, nil
}

// NewWorker connects and reads the banner.
func (s tinytcp) NewWorker(ctx context.Context) (engine.Worker, error) {
	c, err := dialLines(ctx, s.o.Target, s.o.Timeout)
	if err != nil {
		return nil, err
	}
	w := &tinytcpWorker{lineConn: c, size: s.o.Size, seq: s.seq}
	if err := w.banner(); err != nil {
		c.Close()
		return nil, err
	}
	return w, nil
}

type tinytcpWorker struct {
	*lineConn
	size int
	seq  *atomic.Uint64
	cmd  []byte
}

func (w *tinytcpWorker) banner() error {
	if err := w.arm(); err != nil {
		return err
	}
	line, err := w.readLine(proto.DefaultMaxLine)
	if err != nil {
		return err
	}
	r, err := proto.ParseReply(line)
	switch {
	case err != nil:
		return wrong("banner: %v", line, err)
	case r.Kind == proto.KindError:
		return &engine.Error{Kind: engine.KindServerError, Err: errors.New("banner: ERROR " + string(r.Code))}
	case r.Kind != proto.KindWelcome:
		return wrong("want a WELCOME banner", line)
	}
	return nil
}

// Do sends ECHO with a fresh payload three times in four and TIME the
// fourth, and checks the reply with proto.Reply.Answers.
func (w *tinytcpWorker) Do(context.Context) error {
	seq := w.seq.Add(1)
	w.cmd = w.cmd[:0]
	if seq%4 == 0 {
		w.cmd = append(w.cmd, proto.Time.String()...)
	} else {
		w.cmd = append(w.cmd, "ECHO "...)
		w.cmd = appendPayload(w.cmd, seq, w.size)
	}
	w.cmd = append(w.cmd, '\n')
	if err := w.arm(); err != nil {
		return err
	}
	if err := w.send(w.cmd); err != nil {
		return err
	}
	line, err := w.readLine(proto.DefaultMaxLine + 64)
	if err != nil {
		return err
	}
	r, err := proto.ParseReply(line)
	if err != nil {
		return wrong("%v", line, err)
	}
	if r.Kind == proto.KindError {
		return &engine.Error{Kind: engine.KindServerError, Err: errors.New("ERROR " + string(r.Code))}
	}
	if err := r.Answers(w.cmd[:len(w.cmd)-1]); err != nil {
		return &engine.Error{Kind: engine.KindWrongReply, Err: err}
	}
	if r.Kind == proto.KindTime {
		if d := time.Since(r.Time); d > maxTimeSkew || d < -maxTimeSkew {
			return wrong("TIME is %v off this clock", line, d.Round(time.Second))
		}
	}
	return nil
}

// Close says QUIT, without waiting for BYE, and closes.
func (w *tinytcpWorker) Close() error {
	w.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	w.Write([]byte("QUIT\n"))
	return w.lineConn.Close()
}
