package service_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
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
