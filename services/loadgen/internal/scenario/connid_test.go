package scenario

import (
	"net/netip"
	"testing"

	"github.com/socklab/socklab/services/connid/proto"
	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/loadgen/internal/labtest"
)

func TestConnIDAgainstServer(t *testing.T) {
	bin := labtest.Build(t, "connid", "connid-server")
	addr := labtest.Start(t, bin, nil, "-addr", "127.0.0.1:0").Addr
	st := run(t, "connid", opts(addr), engine.Config{Workers: 4, Requests: 400})
	wantAllGood(t, st, 400)
	st = run(t, "connid", opts(addr), engine.Config{Workers: 2, Rate: 2000, Requests: 200})
	wantAllGood(t, st, 200)
}

// connidFake answers like a connid server, holding every ID forever.
func connidFake() func(d []byte) []byte {
	held := map[string]bool{}
	from := netip.MustParseAddrPort("127.0.0.1:1234")
	return func(d []byte) []byte {
		kind, id, err := proto.ParseRequest(d)
		switch {
		case err != nil:
			return []byte(proto.ErrorBadRequest)
		case kind == proto.KindPing:
			return []byte(proto.Pong)
		case held[string(id)]:
			return proto.AppendReset(nil, id)
		}
		held[string(id)] = true
		return proto.AppendOK(nil, id, from)
	}
}

func TestConnIDAnswers(t *testing.T) {
	tests := []struct {
		name  string
		reply func() func(d []byte) []byte
		kind  string
	}{
		{name: "right", reply: connidFake, kind: ""},
		{name: "reset", kind: engine.KindWrongReply, reply: func() func(d []byte) []byte {
			return func(d []byte) []byte { _, id, _ := proto.ParseRequest(d); return proto.AppendReset(nil, id) }
		}},
		{name: "other id", kind: engine.KindWrongReply, reply: func() func(d []byte) []byte {
			return func(d []byte) []byte {
				return proto.AppendOK(nil, "someone-else", netip.MustParseAddrPort("127.0.0.1:1"))
			}
		}},
		{name: "bad request", kind: engine.KindServerError, reply: func() func(d []byte) []byte {
			return func([]byte) []byte { return []byte(proto.ErrorBadRequest) }
		}},
		{name: "garbage", kind: engine.KindWrongReply, reply: func() func(d []byte) []byte {
			return func([]byte) []byte { return []byte("OK") }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeUDP(t, tt.reply())
			// Two generators (tags) on one server: their IDs must not
			// collide either.
			for _, tag := range []string{"gen-a", "gen-b"} {
				o := opts(addr)
				o.Tag = tag
				st := run(t, "connid", o, engine.Config{Workers: 3, Requests: 30})
				if tt.kind == "" {
					wantAllGood(t, st, 30)
				} else {
					wantAllKind(t, st, 30, tt.kind)
				}
			}
		})
	}
}
