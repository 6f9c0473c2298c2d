package scenario

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/socklab/socklab/services/autoreply/proto"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/loadgen/internal/labtest"
)

func startAutoreply(t *testing.T) string {
	t.Helper()
	bin := labtest.Build(t, "autoreply", "autoreply-server")
	// 1-byte datagrams as fast as they are answered draw 100 times their
	// size, which autoreply's amplification budget withholds beyond its
	// credit (services/autoreply/README.md): this loopback source gets a
	// credit larger than the test sends.
	return labtest.Start(t, bin, nil, "-addr", "127.0.0.1:0", "-protocol", "both", "-udp-credit", "1000000000").Addr
}

func TestAutoreplyAgainstServer(t *testing.T) {
	addr := startAutoreply(t)
	for _, name := range []string{"autoreply-tcp", "autoreply-udp"} {
		for _, size := range []int{1, 32, 33, 1000} {
			o := opts(addr)
			o.Size = size
			st := run(t, name, o, engine.Config{Workers: 4, Requests: 400})
			wantAllGood(t, st, 400)
		}
		// And an open loop.
		st := run(t, name, opts(addr), engine.Config{Workers: 2, Rate: 2000, Requests: 200})
		wantAllGood(t, st, 200)
	}
}

// gen makes well-formed replies for fake servers.
var gen = lockedGenerator{g: proto.NewGenerator([32]byte{1})}

type lockedGenerator struct {
	mu sync.Mutex
	g  *proto.Generator
}

func (l *lockedGenerator) Append(dst []byte, t time.Time, data []byte) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.g.Append(dst, t, data)
}

func TestAutoreplyWrongAnswers(t *testing.T) {
	tests := []struct {
		name  string
		reply func(msg []byte) []byte
		kind  string
	}{
		{name: "another message's reply", kind: engine.KindWrongReply, reply: func(msg []byte) []byte {
			return gen.Append(nil, time.Now(), append([]byte("x"), msg...))
		}},
		{name: "same length, other snippet", kind: engine.KindWrongReply, reply: func(msg []byte) []byte {
			return gen.Append(nil, time.Now(), bytes.Repeat([]byte("z"), len(msg)))
		}},
		{name: "not a reply", kind: engine.KindWrongReply, reply: func(msg []byte) []byte {
			return append([]byte("ECHO "), msg...)
		}},
		{name: "error", kind: engine.KindServerError, reply: func([]byte) []byte {
			return []byte("ERROR server busy")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tcp := fakeLines(t, "", func(line []byte) []byte { return append(tt.reply(line), '\n') })
			st := run(t, "autoreply-tcp", opts(tcp), engine.Config{Workers: 2, Requests: 50})
			wantAllKind(t, st, 50, tt.kind)

			udp := fakeUDP(t, tt.reply)
			st = run(t, "autoreply-udp", opts(udp), engine.Config{Workers: 2, Requests: 50})
			wantAllKind(t, st, 50, tt.kind)
		})
	}
}

func TestAutoreplyUDPLoss(t *testing.T) {
	// Answers every other datagram, rightly.
	n := 0
	addr := fakeUDP(t, func(d []byte) []byte {
		n++
		if n%2 == 0 {
			return nil
		}
		return gen.Append(nil, time.Now(), d)
	})
	// The timeout must pass for every dropped datagram and never for an
	// answered one, so it is long enough for a loaded machine; one worker
	// per request waits out the ten losses at once, not one after another.
	o := opts(addr)
	o.Timeout = 2 * time.Second
	st := run(t, "autoreply-udp", o, engine.Config{Workers: 20, Requests: 20})
	if st.Total.Successes != 10 || st.Total.Errors[engine.KindLoss] != 10 {
		t.Errorf("counts = %+v, want 10 successes and 10 lost", st.Total)
	}
}

func TestAutoreplyServerDown(t *testing.T) {
	addr := closedPort(t)
	st := run(t, "autoreply-tcp", opts(addr), engine.Config{Workers: 2, Requests: 10})
	wantAllKind(t, st, 10, engine.KindConnect)
}
