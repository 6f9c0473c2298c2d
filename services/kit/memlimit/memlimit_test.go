package memlimit

import (
	"math"
	"os"
	"runtime/debug"
	"testing"

	"go.uber.org/zap"
)

func TestSetFromProvider(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("AUTOMEMLIMIT", "")
	os.Unsetenv("AUTOMEMLIMIT") // set, even empty, it must parse as a ratio
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	var container uint64 = 256 << 20
	got := set(zap.NewNop(), func() (uint64, error) { return container, nil })
	want := int64(float64(container) * Ratio)
	if got != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("set(256 MiB) = %d, runtime limit %d; want %d", got, debug.SetMemoryLimit(-1), want)
	}
}

func TestSetKeepsGOMEMLIMIT(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "100MiB")
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	called := false
	set(zap.NewNop(), func() (uint64, error) { called = true; return 1 << 30, nil })
	if called || debug.SetMemoryLimit(-1) != prev {
		t.Errorf("with GOMEMLIMIT set, the provider was asked (%v) or the limit changed to %d", called, debug.SetMemoryLimit(-1))
	}
}

func TestSetFromCgroupHere(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "")
	got := Set(zap.NewNop())
	if got <= 0 || (got != math.MaxInt64 && got != debug.SetMemoryLimit(-1)) {
		t.Errorf("Set() = %d, runtime limit %d", got, debug.SetMemoryLimit(-1))
	}
	t.Logf("this process's limit: %d", got)
}
