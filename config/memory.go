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

// The GC floors of the profiles. sidecarHeapFloor is 0 (Go's default
// GOGC of 100): with a live heap of a few MiB that is a collection
// every 4 to 8 MiB allocated, which bench/footprint.sh shows costs a
// hit little CPU against the floor's resident MiB.
const (
	sidecarHeapFloor = 0
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
