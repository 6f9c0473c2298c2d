package clock

import (
	"testing"
	"time"
)

func fired(t Timer) bool {
	select {
	case <-t.C():
		return true
	default:
		return false
	}
}

func TestFake(t *testing.T) {
	start := time.Date(2023, 1, 16, 6, 6, 6, 123456000, time.UTC)
	f := NewFake(start)
	tm := f.NewTimer(30 * time.Second)
	f.Advance(29 * time.Second)
	if fired(tm) {
		t.Fatal("timer fired after 29s of 30s")
	}
	f.Advance(time.Second)
	if !fired(tm) {
		t.Fatal("timer did not fire after 30s")
	}
	if got, want := f.Now(), start.Add(30*time.Second); !got.Equal(want) {
		t.Errorf("Now() = %v, want %v", got, want)
	}

	tm.Reset(time.Minute)
	f.Advance(time.Minute)
	tm.Reset(time.Minute) // must discard the value from the first minute
	if fired(tm) {
		t.Error("Reset left a stale value in C")
	}
	tm.Stop()
	f.Advance(time.Hour)
	if fired(tm) || f.Timers() != 0 {
		t.Errorf("stopped timer fired or is still waiting (%d timers)", f.Timers())
	}
	tm.Reset(0)
	if !fired(tm) {
		t.Error("Reset(0) did not fire at once")
	}
}

func TestReal(t *testing.T) {
	var c Clock = Real{}
	tm := c.NewTimer(time.Hour)
	tm.Stop()
	tm.Reset(0)
	select {
	case <-tm.C():
	case <-time.After(10 * time.Second):
		t.Fatal("real timer reset to 0 did not fire")
	}
	if c.Now().IsZero() {
		t.Error("Real.Now() is zero")
	}
}
