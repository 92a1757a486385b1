package gcfloor

import (
	"runtime"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		floor   int64
		scanned uint64
		want    int
	}{
		{64 * mib, 4 * mib, 1600},             // small heap: grow by the floor
		{64 * mib, 64 * mib, basePercent},     // GOGC alone gives the floor
		{64 * mib, 512 * mib, basePercent},    // large heap: Go's own pacing
		{64 * mib, 0, maxPercent},             // nothing scanned yet
		{1 << 40, 1, maxPercent},              // bounded
		{32 * mib, 16 * mib, 2 * basePercent}, // 16 MiB scanned grows by 32
	}
	for _, tt := range tests {
		if got := percentFor(tt.floor, tt.scanned); got != tt.want {
			t.Errorf("percentFor(%d, %d) = %d; want %d", tt.floor, tt.scanned, got, tt.want)
		}
	}
}

// waitPercent runs collections until the GOGC percent satisfies ok:
// the floor is applied as soon as it is set and again after every
// collection, on the runtime's cleanup goroutine.
func waitPercent(t *testing.T, what string, ok func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(Percent()) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC percent %d; want %s", Percent(), what)
		}
		runtime.GC()
		runtime.Gosched()
	}
}

func TestSetFloor(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Cleanup(func() { Set(0) })
	if !Set(256 << 20) {
		t.Fatal("Set: not applied with GOGC unset")
	}
	// A test binary's live heap is a few MiB: a 256 MiB floor is far
	// above GOGC=100.
	waitPercent(t, "above 1000", func(p int) bool { return p > 1000 })

	// Collections keep it applied (the cleanup re-arms itself).
	for range 3 {
		runtime.GC()
	}
	if p := Percent(); p <= 1000 {
		t.Errorf("after three collections: GOGC percent %d; want above 1000", p)
	}

	Set(0)
	waitPercent(t, "100 after Set(0)", func(p int) bool { return p == basePercent })
}

func TestSetRespectsGOGC(t *testing.T) {
	t.Setenv("GOGC", "150")
	before := Percent()
	if Set(64 << 20) {
		t.Error("Set: applied although GOGC is set in the environment")
	}
	if p := Percent(); p != before {
		t.Errorf("GOGC percent %d after Set; want %d unchanged", p, before)
	}
}
