package main

import (
	"log/slog"
	"os"

	"gateway/config"
	"gateway/gcfloor"
	"gateway/memlimit"
)

// memoryPlan is what the process does about its memory for a config:
// the trade memory_profile chose, in the terms of packages gcfloor and
// memlimit.
type memoryPlan struct {
	// floor is the GC floor (gcfloor.Set): gc_heap_floor, whose
	// default is the profile's.
	floor int64
	// limit says whether to set the soft memory limit for a cache of
	// cacheBytes (memlimit.Set). A cache holds up to max_size of live
	// heap; with the default GOGC the heap would grow to twice that
	// between collections, and the limit keeps the process near
	// max_size instead. Both profiles set it: it bounds the cache, not
	// the trade.
	limit      bool
	cacheBytes int64
	// trim, if not nil, starts a Trimmer that gives back what a load
	// left once it is over. The edge profile trims only a process with
	// a cache (whose limit keeps the scavenger from returning memory
	// below it), for a surplus of 16 MiB; the sidecar profile trims
	// every process, for 4 MiB, since its idle resident set is what it
	// is chosen for.
	trim *memlimit.TrimOptions
}

// sidecarMinSurplus is the sidecar profile's TrimOptions.MinSurplus: a
// trim of a live heap of a few MiB costs a millisecond or two of
// marking, once per load.
const sidecarMinSurplus = 4 << 20

func planMemory(cfg *config.Config, caches bool) memoryPlan {
	p := memoryPlan{floor: int64(cfg.GCHeapFloor), limit: caches, cacheBytes: int64(cfg.Cache.MaxSize)}
	switch {
	case cfg.MemoryProfile == config.MemorySidecar:
		p.trim = &memlimit.TrimOptions{MinSurplus: sidecarMinSurplus}
	case caches:
		p.trim = &memlimit.TrimOptions{}
	}
	return p
}

// applyMemoryPlan sets the soft memory limit (unless GOMEMLIMIT is set),
// then the GC floor again, which shrinks to fit under the limit, and
// starts the plan's Trimmer, if any, which the caller closes.
func applyMemoryPlan(p memoryPlan, log *slog.Logger) *memlimit.Trimmer {
	if p.limit {
		if limit, set := memlimit.Set(p.cacheBytes); set {
			log.Debug("soft memory limit set", "limit_mib", limit>>20, "cache_max_size_mib", p.cacheBytes>>20)
		} else {
			log.Info("soft memory limit from GOMEMLIMIT in the environment", "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"))
		}
	}
	gcfloor.Set(p.floor)
	if p.trim == nil {
		return nil
	}
	o := *p.trim
	o.OnTrim = func(before, after uint64) {
		log.Debug("idle: memory returned to the OS", "held_mib", before>>20, "now_mib", after>>20)
	}
	return memlimit.StartTrimmer(o)
}
