package live

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errMissing = errors.New("route ip+net: no such network interface")

// appearsAfter returns a lookup that fails n times, then succeeds.
func appearsAfter(n int) (func(string) error, *int) {
	calls := 0
	return func(string) error {
		calls++
		if calls <= n {
			return errMissing
		}
		return nil
	}, &calls
}

func TestWaitInterface(t *testing.T) {
	tests := []struct {
		name      string
		failures  int
		wait      time.Duration
		wantErr   string
		wantTime  time.Duration
		wantCalls int
		wantLogs  []string
	}{
		{name: "present", failures: 0, wait: 30 * time.Second, wantCalls: 1},
		{name: "appears", failures: 8, wait: 30 * time.Second, wantTime: 2 * time.Second, wantCalls: 9,
			wantLogs: []string{"waiting for interface", "interface found"}},
		{name: "never", failures: 1 << 30, wait: 30 * time.Second, wantTime: 30 * time.Second, wantCalls: 121,
			wantErr: "interface socklab0 not found after 30s: route ip+net: no such network interface", wantLogs: []string{"waiting for interface"}},
		{name: "no wait", failures: 1, wait: 0, wantCalls: 1, wantErr: "interface socklab0: route ip+net"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				core, logs := observer.New(zap.InfoLevel)
				lookup, calls := appearsAfter(tt.failures)
				start := time.Now()
				err := WaitInterface(t.Context(), "socklab0", tt.wait, 0, zap.New(core), lookup)
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Errorf("WaitInterface = %v, want error %q", err, tt.wantErr)
				}
				if got := time.Since(start); got != tt.wantTime {
					t.Errorf("waited %v, want %v", got, tt.wantTime)
				}
				if *calls != tt.wantCalls {
					t.Errorf("%d lookups, want %d", *calls, tt.wantCalls)
				}
				var msgs []string
				for _, e := range logs.All() {
					msgs = append(msgs, e.Message)
				}
				if strings.Join(msgs, "|") != strings.Join(tt.wantLogs, "|") {
					t.Errorf("logs %q, want %q", msgs, tt.wantLogs)
				}
			})
		})
	}
}

func TestWaitInterfaceCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		stop := errors.New("SIGTERM")
		time.AfterFunc(3*time.Second, func() { cancel(stop) })
		lookup, _ := appearsAfter(1 << 30)
		err := WaitInterface(ctx, "socklab0", time.Minute, 0, zap.NewNop(), lookup)
		if !errors.Is(err, stop) {
			t.Errorf("WaitInterface = %v, want the context's cause", err)
		}
	})
}
