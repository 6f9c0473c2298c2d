package service_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/socklab/socklab/services/kit/service"
)

// fakeUnit serves until shut down, or fails with failErr when given.
func fakeUnit(failErr error) (service.Unit, *bool) {
	stop := make(chan struct{})
	shutdown := new(bool)
	errClosed := errors.New("closed")
	return service.Unit{
		Name: "fake",
		Serve: func() error {
			if failErr != nil {
				return failErr
			}
			<-stop
			return errClosed
		},
		Shutdown: func(context.Context) error {
			if !*shutdown {
				*shutdown = true
				close(stop)
			}
			return nil
		},
		Closed: func(err error) bool { return errors.Is(err, errClosed) },
	}, shutdown
}

func TestRunStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	u1, s1 := fakeUnit(nil)
	u2, s2 := fakeUnit(nil)
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, zap.NewNop(), time.Second, u1, u2) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	if !*s1 || !*s2 {
		t.Errorf("units shut down = %v, %v; want both", *s1, *s2)
	}
}

func TestRunStopsOnFailure(t *testing.T) {
	boom := errors.New("boom")
	u1, s1 := fakeUnit(nil)
	u2, _ := fakeUnit(boom)
	err := service.Run(context.Background(), zap.NewNop(), time.Second, u1, u2)
	if !errors.Is(err, boom) {
		t.Errorf("Run with a failing unit = %v, want it to wrap %v", err, boom)
	}
	if !*s1 {
		t.Error("the healthy unit was not shut down")
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		give error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{service.Usage(errors.New("bad flag")), 2},
	}
	for _, tt := range tests {
		if got := service.ExitCode(tt.give, &discard{}); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.give, got, tt.want)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestJobFinishesRun(t *testing.T) {
	server, stopped := fakeUnit(nil)
	job := service.Job("job", func(context.Context) error { return nil })
	if err := service.Run(context.Background(), zap.NewNop(), time.Second, server, job); err != nil {
		t.Errorf("Run with a job that finished = %v, want nil", err)
	}
	if !*stopped {
		t.Error("the server was not shut down when the job finished")
	}
}

func TestJobStoppedByShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	job := service.Job("job", func(jctx context.Context) error {
		close(started)
		<-jctx.Done()
		return jctx.Err()
	})
	done := make(chan error, 1)
	// The shutdown timeout bounds the wait for the job to return after its
	// context ends, which must not expire: not a second on a loaded machine.
	go func() { done <- service.Run(ctx, zap.NewNop(), 10*time.Second, job) }()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run of a job stopped by its context = %v, want nil", err)
	}
}

func TestJobFailure(t *testing.T) {
	boom := errors.New("boom")
	job := service.Job("job", func(context.Context) error { return boom })
	if err := service.Run(context.Background(), zap.NewNop(), time.Second, job); !errors.Is(err, boom) {
		t.Errorf("Run of a failing job = %v, want %v", err, boom)
	}
}

func TestJobFinishedWithCause(t *testing.T) {
	var logs bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zap.InfoLevel))
	idle := errors.New("idle timeout: no request for 2m0s")
	job := service.Job("idle", func(context.Context) error { return service.Finished(idle) })
	if err := service.Run(context.Background(), log, time.Second, job); err != nil {
		t.Errorf("Run of a job finished with a cause = %v, want nil", err)
	}
	if !strings.Contains(logs.String(), `"cause":"idle timeout: no request for 2m0s"`) {
		t.Errorf("log does not give the cause:\n%s", logs.String())
	}
}

// TestRunPhases: the units of one phase stop together, and a phase begins
// only once the one before it has stopped.
func TestRunPhases(t *testing.T) {
	var order []string
	var mu sync.Mutex
	record := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	// Two Serving units that each wait for the other to have begun its
	// Shutdown: they deadlock unless stopped in parallel.
	begun := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	unit := func(name string, phase service.Phase, shut func()) service.Unit {
		stop := make(chan struct{})
		return service.Unit{
			Name: name, Phase: phase,
			Serve: func() error { <-stop; return nil },
			Shutdown: func(context.Context) error {
				shut()
				record(name)
				close(stop)
				return nil
			},
		}
	}
	units := []service.Unit{
		unit("metrics", service.Observing, func() {}),
		unit("store", service.Backing, func() {}),
		unit("tcp", service.Serving, func() { close(begun[0]); <-begun[1] }),
		unit("udp", service.Serving, func() { close(begun[1]); <-begun[0] }),
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := service.Run(ctx, zap.NewNop(), 5*time.Second, units...); err != nil {
		t.Fatalf("Run = %v", err)
	}
	got := strings.Join(order, " ")
	if got != "tcp udp store metrics" && got != "udp tcp store metrics" {
		t.Errorf("shutdown order %q, want tcp and udp, then store, then metrics", got)
	}
}

// TestRunBounded: a unit whose Serve never returns, and whose Shutdown
// ignores its context, holds Run no longer than the shutdown timeout.
func TestRunBounded(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	u := service.Unit{
		Name:     "stuck",
		Serve:    func() error { <-never; return nil },
		Shutdown: func(context.Context) error { <-never; return nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := service.Run(ctx, zap.NewNop(), 50*time.Millisecond, u)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v with a 50ms shutdown timeout", took)
	}
	if err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("Run = %v, want an error naming the stuck unit", err)
	}
}
