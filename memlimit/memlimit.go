// Package memlimit bounds the memory of a process whose heap is mostly a
// cache: it sets Go's soft memory limit from the cache's size, and it
// gives memory back to the operating system once the process goes idle.
//
// A full cache is live heap that Go's collector cannot shrink. With the
// default GOGC the heap would grow to twice the cache between
// collections; the soft limit (debug.SetMemoryLimit) makes the collector
// run sooner instead, so the process stays near the cache's size plus a
// bounded allowance. Under a limit the runtime's scavenger returns memory
// only down to the limit, and the heap goal after a load stays where the
// load left it, so an idle process would keep its peak: the Trimmer
// forces that return (debug.FreeOSMemory) once allocation has stopped.
//
// GOMEMLIMIT in the environment wins over the limit set here; GOGC is
// left to Go and to package gcfloor.
package memlimit

import (
	"math"
	"os"
	"runtime/debug"
)

// Allowance is what the limit leaves, beyond the cache and a quarter of
// it, for connections, buffers, the runtime and garbage between
// collections.
const Allowance = 32 << 20

// For is the soft memory limit for a cache of cacheBytes: the cache, a
// quarter more for the garbage that replacing its entries makes (and
// the index and ristretto's counters), plus Allowance. Go accounts the
// limit against all the memory it maps; the process's resident set adds
// the binary's own pages (about 12 MiB), so it stays within
// cacheBytes × 1.25 + 50 MiB.
func For(cacheBytes int64) int64 {
	c := max(cacheBytes, 0)
	if c > (math.MaxInt64-Allowance)/5*4 {
		return math.MaxInt64
	}
	return c + c/4 + Allowance
}

// Set sets the soft memory limit for a cache of cacheBytes, unless
// GOMEMLIMIT is set in the environment. It returns the limit in force
// and whether it set it.
func Set(cacheBytes int64) (int64, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), false
	}
	limit := For(cacheBytes)
	debug.SetMemoryLimit(limit)
	return limit, true
}
