package server

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/socklab/socklab/services/connid/internal/clock"
	"github.com/socklab/socklab/services/connid/proto"
)

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// TestIdle: the watch ends exactly two minutes after the last request.
func TestIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		idle := NewIdle(clock.Real{}, 2*time.Minute)
		errc := make(chan error, 1)
		go func() { errc <- idle.Wait(context.Background()) }()

		time.Sleep(90 * time.Second)
		idle.Touch(time.Now())
		time.Sleep(2*time.Minute - time.Nanosecond)
		synctest.Wait()
		select {
		case err := <-errc:
			t.Fatalf("Wait returned %v %v after start, 1ns before 2m of quiet", err, time.Since(start))
		default:
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		select {
		case err := <-errc:
			if !errors.Is(err, ErrIdle) {
				t.Errorf("Wait = %v, want ErrIdle", err)
			}
			if got := time.Since(start); got != 90*time.Second+2*time.Minute {
				t.Errorf("Wait returned at +%v, want +3m30s", got)
			}
		default:
			t.Fatal("Wait still running after 2m of quiet")
		}
	})
}

func TestIdleCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idle := NewIdle(clock.Real{}, 2*time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- idle.Wait(ctx) }()
		time.Sleep(time.Minute)
		cancel()
		if err := <-errc; err != context.Canceled {
			t.Errorf("Wait = %v, want context.Canceled", err)
		}
	})
}

// TestRequestsTouchIdle: every request but PING counts as activity.
func TestRequestsTouchIdle(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		give  string
		touch bool
	}{
		{"PING", false},
		{"HELLO 1", true},
		{"garbage that is long enough", true},
		{"x", true},
	}
	for _, tt := range tests {
		f.clk.Advance(time.Second)
		before := f.h.Idle.last.Load()
		f.h.request(nil, []byte(tt.give))
		touched := f.h.Idle.last.Load() != before
		if touched != tt.touch {
			t.Errorf("%q touched the idle clock: %v, want %v", tt.give, touched, tt.touch)
		}
	}
	if got, _, _, _ := f.h.request(nil, []byte(proto.Ping)); string(got) != proto.Pong {
		t.Errorf("PING answered %q", got)
	}
}
