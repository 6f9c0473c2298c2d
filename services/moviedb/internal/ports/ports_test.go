package ports

import (
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		give string
		want []int
	}{
		{"5000", []int{5000}},
		{"5000-5003", []int{5000, 5001, 5002, 5003}},
		{"5000,5001", []int{5000, 5001}},
		{" 6000 , 5000-5001 ", []int{6000, 5000, 5001}},
		{"0", []int{0}},
		{"65535", []int{65535}},
	}
	for _, tt := range tests {
		l, err := Parse(tt.give)
		if err != nil || !reflect.DeepEqual(l.Ports(), tt.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.give, l.Ports(), err, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ give, want string }{
		{"", "empty port list"},
		{"abc", `bad port "abc"`},
		{"5000-", `bad port ""`},
		{"70000", `bad port "70000"`},
		{"5009-5000", "runs backwards"},
		{"5000,5000", "listed twice"},
		{"5000-5002,5001", "listed twice"},
		{"0,5000", "must stand alone"},
		{"1-2000", "more than 1024 ports"},
		{"-1", `bad port ""`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.give)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %v, want %q", tt.give, err, tt.want)
		}
	}
}

// busyPort returns a port held by a listener until the test ends.
func busyPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestListenTakesFirstFree(t *testing.T) {
	b1, b2, free := busyPort(t), busyPort(t), freePort(t)
	spec := strconv.Itoa(b1) + "," + strconv.Itoa(b2) + "," + strconv.Itoa(free)
	ln, err := Listen("127.0.0.1", MustParse(spec))
	if err != nil {
		t.Fatalf("Listen(%s): %v", spec, err)
	}
	defer ln.Close()
	if got := ln.Addr().(*net.TCPAddr).Port; got != free {
		t.Errorf("Listen(%s) took port %d, want %d, the first free", spec, got, free)
	}
	// With the free one now taken too, a second server finds none.
	_, err = Listen("127.0.0.1", MustParse(spec))
	if err == nil || !strings.Contains(err.Error(), `no free port in the port list "`+spec+`"`) ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Listen with every port busy: %v, want an error naming the list", err)
	}
}

func TestListenBadHost(t *testing.T) {
	_, err := Listen("192.0.2.1", MustParse("0")) // TEST-NET-1: not local
	if err == nil || strings.Contains(err.Error(), "no free port") {
		t.Errorf("Listen on a foreign address: %v, want the listen error itself", err)
	}
}
