package config

// The values of memory_profile. Each is a choice of what the process
// spends when memory and CPU trade against each other; the gateway's
// command line turns it into the garbage collector's floor (package
// gcfloor) and the return of idle memory (package memlimit).
const (
	// MemorySidecar favours a small resident set: Go's own GC pacing
	// and idle memory returned to the OS early, for a gateway that
	// runs next to each instance of an application, where many copies
	// add up and the traffic of one is small.
	MemorySidecar = "sidecar"
	// MemoryEdge favours CPU per request: the heap may grow by
	// edgeHeapFloor between collections, for a gateway that takes a
	// site's traffic on a host of its own.
	MemoryEdge = "edge"
)

// The GC floors of the profiles. With Go's own pacing (GOGC 100) and the
// few MiB a proxy keeps live, a collection comes every 4 MiB allocated:
// about every 400 pass-through requests, whose fixed cost (two pauses,
// every goroutine's stack scanned, and a full assist owed by each new
// goroutine, which every HTTP/2 request is) the sidecar profile paid in
// 10 to 30% more CPU per request than edge. Its floor of 8 MiB halves the
// number of collections for about 2 MiB more at the peak, and keeps the
// resident set under load well within the working set plus 32 MiB that a
// sidecar is chosen for; edge's 64 MiB makes them rare.
const (
	sidecarHeapFloor = 8 * mib
	edgeHeapFloor    = 64 * mib
)

// HeapFloor is the gc_heap_floor a profile gives when the file sets
// none: the profile's own, or edge's for a value that is not a profile
// (validation reports it).
func HeapFloor(profile string) Size {
	if profile == MemorySidecar {
		return sidecarHeapFloor
	}
	return edgeHeapFloor
}
