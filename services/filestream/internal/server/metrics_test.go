package server

import (
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socklab/socklab/services/filestream/internal/client"
	"github.com/socklab/socklab/services/filestream/proto"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	h := newTestHandler(testConfig(t), m)

	// TCP over a pipe: an echo, a file, a refused file.
	srv := h.TCPServer()
	cc, sc := net.Pipe()
	done := make(chan struct{})
	go func() { srv.ServeConn(sc); close(done) }()
	s := client.NewTCP(cc, client.Options{})
	s.Echo(t.Context(), []byte("x"))
	s.File(t.Context(), 1000, nil)
	s.File(t.Context(), 1<<40, nil)
	s.Quit(t.Context())
	<-done
	cc.Close()

	// UDP: an unvalidated file request (RETRY) and a datagram too short
	// for any answer.
	w := &fakeWriter{}
	h.serveDatagram(w, peer, proto.AppendFileRequest(nil, 1, proto.FileRequest{Size: 10}), nil)
	h.serveDatagram(w, peer, []byte("x"), nil)

	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"tcp echo", m.Requests.WithLabelValues("tcp", "echo"), 1},
		{"tcp file", m.Requests.WithLabelValues("tcp", "file"), 2},
		{"tcp quit", m.Requests.WithLabelValues("tcp", "quit"), 1},
		{"tcp bytes", m.FileBytes.WithLabelValues("tcp"), 1000},
		{"tcp too large", m.Errors.WithLabelValues("tcp", "too_large"), 1},
		{"udp file", m.Requests.WithLabelValues("udp", "file"), 1},
		{"udp malformed", m.Errors.WithLabelValues("udp", "malformed"), 1},
		{"retries", m.Retries, 1},
		{"withheld", m.Withheld, 1},
		{"active", m.Active.WithLabelValues("tcp"), 0},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
}
