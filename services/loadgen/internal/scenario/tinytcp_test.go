package scenario

import (
	"bytes"
	"testing"
	"time"

	"github.com/socklab/socklab/services/loadgen/internal/engine"
	"github.com/socklab/socklab/services/loadgen/internal/labtest"
	"github.com/socklab/socklab/services/tinytcp/proto"
)

func TestTinyTCPAgainstServer(t *testing.T) {
	bin := labtest.Build(t, "tinytcp", "tinytcp-server")
	addr := labtest.Start(t, bin, nil, "-addr", "127.0.0.1:0").Addr
	for _, size := range []int{1, 100, proto.DefaultMaxLine - 5} {
		o := opts(addr)
		o.Size = size
		st := run(t, "tinytcp", o, engine.Config{Workers: 4, Requests: 400})
		wantAllGood(t, st, 400)
	}
	st := run(t, "tinytcp", opts(addr), engine.Config{Workers: 2, Rate: 2000, Requests: 200})
	wantAllGood(t, st, 200)
}

func TestTinyTCPWrongAnswers(t *testing.T) {
	right := func(line []byte) []byte {
		if bytes.Equal(line, []byte("TIME")) {
			return append(proto.AppendTime(nil, time.Now()), '\n')
		}
		return append(line, '\n') // "ECHO x" -> "ECHO x"
	}
	tests := []struct {
		name     string
		greeting string
		reply    func(line []byte) []byte
		kind     string
		want     int64 // requests of that kind out of 40
	}{
		{name: "right", greeting: proto.DefaultBanner + "\n", reply: right, kind: "", want: 0},
		{name: "no banner", greeting: "HELLO\n", reply: right, kind: engine.KindWrongReply, want: 40},
		{name: "busy", greeting: "ERROR SERVER_BUSY\n", reply: right, kind: engine.KindServerError, want: 40},
		{name: "echo altered", greeting: proto.DefaultBanner + "\n", kind: engine.KindWrongReply, want: 30,
			reply: func(line []byte) []byte {
				if bytes.HasPrefix(line, []byte("ECHO ")) {
					return append(bytes.ToUpper(line), '\n')
				}
				return right(line)
			}},
		{name: "time off", greeting: proto.DefaultBanner + "\n", kind: engine.KindWrongReply, want: 10,
			reply: func(line []byte) []byte {
				if bytes.Equal(line, []byte("TIME")) {
					return append(proto.AppendTime(nil, time.Now().Add(-time.Hour)), '\n')
				}
				return right(line)
			}},
		{name: "help instead", greeting: proto.DefaultBanner + "\n", kind: engine.KindWrongReply, want: 40,
			reply: func([]byte) []byte { return []byte(proto.HelpReply + "\n") }},
		{name: "refused", greeting: proto.DefaultBanner + "\n", kind: engine.KindServerError, want: 40,
			reply: func([]byte) []byte { return []byte("ERROR UNKNOWN_COMMAND\n") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeLines(t, tt.greeting, tt.reply)
			st := run(t, "tinytcp", opts(addr), engine.Config{Workers: 1, Requests: 40})
			if st.Total.Requests != 40 || st.Total.Errors[tt.kind] != tt.want || st.Total.Successes != 40-tt.want {
				t.Errorf("counts = %+v, want %d of kind %q and the rest good", st.Total, tt.want, tt.kind)
			}
		})
	}
}
