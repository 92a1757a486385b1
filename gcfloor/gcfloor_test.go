package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	const none = math.MaxInt64 // no soft memory limit
	tests := []struct {
		floor   int64
		scanned uint64
		limit   int64
		want    int
	}{
		{64 * mib, 8 * mib, none, 800},              // small heap: grow by the floor
		{64 * mib, 64 * mib, none, basePercent},     // GOGC alone gives the floor
		{64 * mib, 512 * mib, none, basePercent},    // large heap: Go's own pacing
		{32 * mib, 16 * mib, none, 2 * basePercent}, // 16 MiB scanned grows by 32
		// Below the runtime's 4 MiB heap minimum the percent stops
		// growing: the minimum scales with it, and the goal is the
		// floor (16 x 4 MiB), not 64 MiB x 100 / 256 KiB.
		{64 * mib, 256 << 10, none, 1600},
		{64 * mib, 0, none, 1600},             // nothing scanned yet
		{2 * mib, 1 * mib, none, basePercent}, // a floor below the minimum
		{1 << 62, 1, none, maxPercent},        // absurd floors stay in range
		// A limit with room for the whole floor changes nothing.
		{64 * mib, 8 * mib, 1 << 30, 800},
		// The gateway's limit for a 64 MiB cache (112 MiB; 105 MiB of it
		// for the heap) while the cache fills: 25 MiB scanned leaves 80
		// MiB of room, more than the floor; at 45 MiB only 60 MiB.
		{64 * mib, 25 * mib, 112 * mib, 256},
		{64 * mib, 45 * mib, 112 * mib, 133},
		// A limit of 48 MiB (45 for the heap) with 8 MiB scanned leaves
		// room for 37 MiB, not the floor's 64: 462%, not 800%.
		{64 * mib, 8 * mib, 48 * mib, 462},
		// Nothing scanned yet: the room (45 MiB) over the minimum.
		{64 * mib, 0, 48 * mib, 1125},
		// A heap at or past the limit: Go's own percent, never less.
		{64 * mib, 50 * mib, 48 * mib, basePercent},
		{64 * mib, 8 * mib, 0, basePercent},
	}
	for _, tt := range tests {
		if got := percentFor(tt.floor, tt.scanned, tt.limit); got != tt.want {
			t.Errorf("percentFor(%d MiB, %d MiB, %d) = %d; want %d", tt.floor>>20, tt.scanned>>20, tt.limit, got, tt.want)
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
	// above GOGC=100, and within the cap of 256 MiB / 4 MiB = 6400%.
	waitPercent(t, "above 1000", func(p int) bool { return p > 1000 && p <= 6400 })

	// The next collection aims at about the floor above what is live,
	// neither at Go's own goal nor far beyond the floor.
	runtime.GC()
	goal, scanned := heapGoal()
	if goal < 256<<20 || goal > 256<<20+2*scanned+(16<<20) {
		t.Errorf("heap goal %d MiB with %d MiB scanned; want about 256 MiB more than that", goal>>20, scanned>>20)
	}

	// Collections keep it applied (the cleanup re-arms itself).
	for range 3 {
		runtime.GC()
	}
	if p := Percent(); p <= 1000 || p > 6400 {
		t.Errorf("after three collections: GOGC percent %d; want 1000 to 6400", p)
	}

	Set(0)
	waitPercent(t, "100 after Set(0)", func(p int) bool { return p == basePercent })
}

// heapGoal is the runtime's heap goal and the bytes its pacer scales:
// live heap, stacks and globals.
func heapGoal() (goal, scanned uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	for _, v := range s[1:] {
		scanned += v.Value.Uint64()
	}
	return s[0].Value.Uint64(), scanned
}

// TestSetStaysWithinMemoryLimit: under a soft memory limit the floor
// shrinks, so that the goal GOGC sets lies within the limit (less the
// reserve for stacks and the runtime), not wherever the floor alone
// would put it.
func TestSetStaysWithinMemoryLimit(t *testing.T) {
	t.Setenv("GOGC", "")
	const limit = 64 << 20
	old := debug.SetMemoryLimit(limit)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	t.Cleanup(func() { Set(0) })
	if !Set(256 << 20) {
		t.Fatal("Set: not applied with GOGC unset")
	}
	// The percent is tuned after each collection, for what it left live:
	// waitPercent collects until the growth it allows fits (within the
	// 5% the tuning skips), and fails if it never does.
	var grow, want uint64
	waitPercent(t, "growth within the limit's room", func(p int) bool {
		_, scanned := heapGoal()
		// The runtime never aims below heapMinimum scaled by the percent.
		grow, want = max(scanned, heapMinimum)*uint64(p)/100, room(limit, scanned)
		return p > basePercent && grow <= want+want/16+(1<<20)
	})
	t.Logf("GOGC percent %d: grows by %d MiB, room %d MiB", Percent(), grow>>20, want>>20)
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
