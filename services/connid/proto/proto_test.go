package proto

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	long := strings.Repeat("x", MaxIDLen)
	tests := []struct {
		give     string
		wantKind Kind
		wantID   string
		wantErr  bool
	}{
		{give: "HELLO 9876", wantKind: KindHello, wantID: "9876"},
		{give: "HELLO 9876\n", wantKind: KindHello, wantID: "9876"},
		{give: "HELLO 9876\r\n", wantKind: KindHello, wantID: "9876"},
		{give: "HELLO a-b_c.d:e/f!~", wantKind: KindHello, wantID: "a-b_c.d:e/f!~"},
		{give: "HELLO " + long, wantKind: KindHello, wantID: long},
		{give: "PING", wantKind: KindPing},
		{give: "PING\n", wantKind: KindPing},
		{give: "HELLO " + long + "x", wantErr: true},
		{give: "HELLO", wantErr: true},
		{give: "HELLO ", wantErr: true},
		{give: "HELLO  9876", wantErr: true},
		{give: "HELLO 98 76", wantErr: true},
		{give: "HELLO 9876 ", wantErr: true},
		{give: "HELLO\t9876", wantErr: true},
		{give: "hello 9876", wantErr: true},
		{give: " HELLO 9876", wantErr: true},
		{give: "HELLO 98\x0076", wantErr: true},
		{give: "HELLO caf\xc3\xa9", wantErr: true},
		{give: "HELLO 9876\n\n", wantErr: true},
		{give: "HELLO 9876\r", wantErr: true},
		{give: "PING ", wantErr: true},
		{give: "", wantErr: true},
		{give: "\n", wantErr: true},
		{give: "\xff\xfe\x00garbage", wantErr: true},
	}
	for _, tt := range tests {
		kind, id, err := ParseRequest([]byte(tt.give))
		if tt.wantErr {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseRequest(%q) = %v, %q, %v; want an ErrMalformed", tt.give, kind, id, err)
			}
			continue
		}
		if err != nil || kind != tt.wantKind || string(id) != tt.wantID {
			t.Errorf("ParseRequest(%q) = %v, %q, %v; want %v, %q, nil", tt.give, kind, id, err, tt.wantKind, tt.wantID)
		}
	}
}

func TestParseRequestAllocatesNothing(t *testing.T) {
	inputs := [][]byte{[]byte("HELLO 42\n"), []byte("garbage"), []byte("HELLO " + strings.Repeat("y", 99)), []byte("HELLO")}
	allocs := testing.AllocsPerRun(100, func() {
		for _, in := range inputs {
			ParseRequest(in)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseRequest allocates %v times per run, want 0", allocs)
	}
}

func TestAppendReplies(t *testing.T) {
	tests := []struct {
		name string
		give []byte
		want string
	}{
		{"hello", AppendHello(nil, "9876"), "HELLO 9876"},
		{"ok v4", AppendOK(nil, "9876", netip.MustParseAddrPort("10.0.0.7:12345")), "OK 9876 10.0.0.7 12345"},
		{"ok 4in6", AppendOK(nil, []byte("9876"), netip.MustParseAddrPort("[::ffff:10.0.0.7]:1")), "OK 9876 10.0.0.7 1"},
		{"ok v6", AppendOK(nil, "x", netip.MustParseAddrPort("[fe80::1%eth0]:65535")), "OK x fe80::1 65535"},
		{"reset", AppendReset(nil, "9876"), "RESET 9876"},
	}
	for _, tt := range tests {
		if string(tt.give) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.give, tt.want)
		}
	}
	longest := AppendOK(nil, strings.Repeat("z", MaxIDLen), netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535"))
	if len(longest) > MaxReplyLen {
		t.Errorf("longest OK is %d bytes, more than MaxReplyLen %d", len(longest), MaxReplyLen)
	}
	if len(ErrorBadRequest) != 17 {
		t.Errorf("ErrorBadRequest is %d bytes; the README promises 17", len(ErrorBadRequest))
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		give    string
		want    Reply
		wantErr bool
	}{
		{give: "OK 9876 10.0.0.7 12345", want: Reply{Kind: KindOK, ID: "9876", Client: netip.MustParseAddrPort("10.0.0.7:12345")}},
		{give: "OK 9876 ::1 0\n", want: Reply{Kind: KindOK, ID: "9876", Client: netip.MustParseAddrPort("[::1]:0")}},
		{give: "RESET 9876", want: Reply{Kind: KindReset, ID: "9876"}},
		{give: "RESET 9876\r\n", want: Reply{Kind: KindReset, ID: "9876"}},
		{give: "ERROR BAD_REQUEST", want: Reply{Kind: KindError, Code: BadRequest}},
		{give: "PONG", want: Reply{Kind: KindPong}},
		{give: "OK 9876 10.0.0.7", wantErr: true},
		{give: "OK 9876 10.0.0.7 65536", wantErr: true},
		{give: "OK 9876 10.0.0.7 080", wantErr: true},
		{give: "OK 9876 10.0.0.7 -1", wantErr: true},
		{give: "OK 9876 ::ffff:10.0.0.7 1", wantErr: true},
		{give: "OK 9876 fe80::1%eth0 1", wantErr: true},
		{give: "OK 9876 host 1", wantErr: true},
		{give: "OK 9876 ::0 1", wantErr: true},
		{give: "OK 9876 10.0.0.7 1 extra", wantErr: true},
		{give: "OK  10.0.0.7 1", wantErr: true},
		{give: "RESET", wantErr: true},
		{give: "RESET 98 76", wantErr: true},
		{give: "ERROR", wantErr: true},
		{give: "PONG x", wantErr: true},
		{give: "HELLO 9876", wantErr: true},
		{give: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseReply([]byte(tt.give))
		if tt.wantErr {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseReply(%q) = %+v, %v; want an ErrMalformed", tt.give, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseReply(%q) = %+v, %v; want %+v", tt.give, got, err, tt.want)
		}
		if s := got.String(); s != strings.TrimRight(tt.give, "\r\n") {
			t.Errorf("ParseReply(%q).String() = %q", tt.give, s)
		}
	}
}

func TestKindString(t *testing.T) {
	if got := KindReset.String(); got != "RESET" {
		t.Errorf("KindReset.String() = %q", got)
	}
	if got := Kind(99).String(); got != "Kind(99)" {
		t.Errorf("Kind(99).String() = %q", got)
	}
}
