package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/socklab/socklab/services/kit/nettest"
	"github.com/socklab/socklab/services/kit/service"
)

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{args: []string{"-h"}, code: 0, want: "$DASHBOARD_ADDR"},
		{args: []string{"-interval", "0s"}, code: 2, want: "must be positive"},
		{args: []string{"extra"}, code: 2, want: "unexpected arguments"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		err := run(t.Context(), tt.args, nil, &stderr, &stderr)
		if code := service.ExitCode(err, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("dashboard %q: exit %d, %q; want %d and %q", tt.args, code, stderr.String(), tt.code, tt.want)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"healthcheck", "-addr", addr}, nil, &stderr, &stderr); err != nil {
		t.Errorf("healthcheck of a listener: %v", err)
	}
	ln.Close()
	if err := run(t.Context(), []string{"healthcheck", "-addr", nettest.RefusedAddr(t)}, nil, &stderr, &stderr); err == nil {
		t.Error("healthcheck of a closed port succeeded")
	}
}
