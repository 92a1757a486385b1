// Package gcfloor lets the heap grow by at least a fixed amount before
// Go's garbage collector runs again.
//
// Go starts a collection when the heap has grown by GOGC percent (100)
// of what the last one kept. A proxy keeps little: a few MiB of live
// heap, while every request allocates several KiB that die as it ends.
// At tens of thousands of requests a second that is a collection every
// few hundred milliseconds or less, and each one costs more than its
// mark work: goroutines that allocate during it pay for marking out of
// their own time, and a goroutine that has just started (every HTTP/2
// request runs on a new one) owes a full assist on its first
// allocation. The floor spaces collections out while the heap is small
// and leaves Go's pacing alone once the live heap (a full cache, say)
// is large enough that GOGC alone gives at least the floor.
//
// The floor is set through the GOGC percent, recomputed after every
// collection from the live heap, stacks and globals the collector
// scans. It does what a "ballast" allocation does, without making the
// heap look bigger than it is in the gateway's metrics. A GOGC set in
// the environment wins: the floor is then not applied. Under a soft
// memory limit (debug.SetMemoryLimit, GOMEMLIMIT) the floor shrinks to
// the room the limit leaves above what is live, so the goal it sets
// never lies past the limit: the limit stays a backstop rather than the
// pacer, and the runtime keeps its usual runway and scavenging goal.
package gcfloor

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// basePercent is Go's default GOGC.
const basePercent = 100

// heapMinimum is the runtime's least heap goal at GOGC=100. The runtime
// scales it with the GOGC percent, so a percent meant for a tiny live
// heap would also lift the goal of the first collections far above the
// floor (1 GiB for 64 MiB over 256 KiB live): the percent is capped so
// that the scaled minimum stays within the floor.
const heapMinimum = 4 << 20

// maxFloor and maxPercent keep the arithmetic within its types (the
// runtime keeps GOGC in an int32); only floors of petabytes reach them.
const (
	maxFloor   = 1 << 50
	maxPercent = 1 << 30
)

var (
	mu      sync.Mutex
	floor   int64         // bytes; 0: off
	armed   bool          // a sentinel is waiting for the next collection
	percent = basePercent // the GOGC percent last set
	samples = []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
)

// Set makes the collector wait until the heap has grown by at least
// bytes beyond what the last collection kept; 0 returns to Go's own
// pacing. It reports false, and changes nothing, when GOGC is set in
// the environment.
func Set(bytes int64) bool {
	if os.Getenv("GOGC") != "" {
		return false
	}
	mu.Lock()
	defer mu.Unlock()
	floor = max(bytes, 0)
	tuneLocked()
	if floor > 0 && !armed {
		armed = true
		arm()
	}
	return true
}

// Percent is the GOGC percent in force.
func Percent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// sentinel is allocated to become garbage at once, so that its cleanup
// runs after each collection. At 16 bytes it is not packed into a
// tiny-allocator block, whose cleanups may never run.
type sentinel [16]byte

func arm() {
	runtime.AddCleanup(&sentinel{}, func(struct{}) { afterGC() }, struct{}{})
}

// afterGC runs on the runtime's cleanup goroutine after a collection.
func afterGC() {
	mu.Lock()
	defer mu.Unlock()
	tuneLocked()
	if floor > 0 {
		arm()
		return
	}
	armed = false
}

func tuneLocked() {
	p := basePercent
	if floor > 0 {
		metrics.Read(samples)
		var scanned uint64
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				scanned += s.Value.Uint64()
			}
		}
		p = percentFor(floor, scanned, debug.SetMemoryLimit(-1))
	}
	// A change of a few percent is not worth the runtime's lock.
	if p != percent && (p > percent*21/20 || p < percent*19/20 || p == basePercent) {
		debug.SetGCPercent(p)
		percent = p
	}
}

// percentFor is the GOGC percent that lets the heap grow by at least
// floor bytes, or by what the soft memory limit (math.MaxInt64: none)
// leaves above scanned, if that is less. Go's pacer grows the heap by
// GOGC percent of the live heap plus the stacks and globals it scans
// (scanned), and never aims below heapMinimum scaled by that percent.
// The floor only ever raises the percent above Go's default.
func percentFor(floor int64, scanned uint64, limit int64) int {
	f := uint64(min(max(floor, 0), maxFloor))
	if limit < math.MaxInt64 {
		f = min(f, room(limit, scanned))
	}
	p := f * 100 / heapMinimum
	if scanned > 0 {
		p = min(f*100/scanned, p)
	}
	return int(min(max(p, basePercent), maxPercent))
}

// limitReserve is the share of a soft memory limit (1/limitReserve)
// kept for what the heap goal does not count: goroutine stacks, the
// runtime's metadata and the few percent below the limit at which the
// runtime itself aims the heap.
const limitReserve = 16

// room is how far the heap may grow above scanned before it meets the
// part of limit that is left for the heap.
func room(limit int64, scanned uint64) uint64 {
	if limit <= 0 {
		return 0
	}
	heap := uint64(limit - limit/limitReserve)
	if heap <= scanned {
		return 0
	}
	return heap - scanned
}
