package memlimit

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// TrimOptions configure a Trimmer; the zero value is the gateway's.
type TrimOptions struct {
	// Interval is the time between two looks at the heap; 0 means 5s.
	Interval time.Duration
	// Quiet is what the process may allocate between two looks and still
	// count as idle; 0 means 4 MiB (under a MiB a second at 5s: health
	// checks and metrics scrapes, not traffic).
	Quiet uint64
	// MinSurplus is the least memory held above the live heap that is
	// worth a trim; 0 means 16 MiB. A trim costs a collection, which
	// marks the whole live heap: a process with a small one can afford
	// it for less.
	MinSurplus uint64
	// OnTrim, if not nil, is called after each trim with the bytes the
	// process held before it and after it (the runtime's, not the
	// kernel's count).
	OnTrim func(before, after uint64)
}

// defaultMinSurplus is TrimOptions.MinSurplus's default.
const defaultMinSurplus = 16 << 20

// Trimmer returns memory to the operating system once the process has
// gone idle holding much more than its live heap: after a load, the heap
// goal and the memory kept for it stay where the load left them until
// the next collection, which an idle process does not run, and under a
// soft memory limit the scavenger returns memory only down to the limit.
//
// A trim is debug.FreeOSMemory: a collection, then every free page back
// to the kernel. It runs only when two looks an Interval apart saw less
// than Quiet allocated between them and more than the larger of 16 MiB
// and an eighth of the live heap held above it, so a process under load
// is never trimmed (its collector paces itself) and an idle one at most
// once for each such surplus it builds up (MinSurplus sets the 16 MiB).
type Trimmer struct {
	o    TrimOptions
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// StartTrimmer starts a Trimmer's goroutine; Close stops it.
func StartTrimmer(o TrimOptions) *Trimmer {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Quiet == 0 {
		o.Quiet = 4 << 20
	}
	if o.MinSurplus == 0 {
		o.MinSurplus = defaultMinSurplus
	}
	t := &Trimmer{o: o, stop: make(chan struct{}), done: make(chan struct{})}
	go t.run()
	return t
}

// Close stops the Trimmer and waits for its goroutine to end (and for a
// trim in progress to finish).
func (t *Trimmer) Close() {
	t.once.Do(func() { close(t.stop) })
	<-t.done
}

func (t *Trimmer) run() {
	defer close(t.done)
	tick := time.NewTicker(t.o.Interval)
	defer tick.Stop()
	prev := readHeap()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		cur := readHeap()
		if shouldTrim(prev, cur, t.o.Quiet, t.o.MinSurplus) {
			debug.FreeOSMemory()
			after := readHeap()
			if t.o.OnTrim != nil {
				t.o.OnTrim(cur.held, after.held)
			}
			cur = after
		}
		prev = cur
	}
}

// heapSample is one look at the heap.
type heapSample struct {
	allocs uint64 // bytes allocated since the process started
	held   uint64 // heap memory mapped and not returned to the kernel
	live   uint64 // heap left live by the last collection
}

var heapMetrics = []string{
	"/gc/heap/allocs:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
}

func readHeap() heapSample {
	s := make([]metrics.Sample, len(heapMetrics))
	for i, name := range heapMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return heapSample{allocs: v(0), live: v(1), held: v(2) + v(3) + v(4)}
}

// shouldTrim reports whether a trim is due at cur, given the look before
// it: the process allocated less than quiet in between, and holds more
// than minSurplus, and more than an eighth of its live heap, above it.
func shouldTrim(prev, cur heapSample, quiet, minSurplus uint64) bool {
	if cur.allocs-prev.allocs >= quiet || cur.held <= cur.live {
		return false
	}
	return cur.held-cur.live > max(minSurplus, cur.live/8)
}
