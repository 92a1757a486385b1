package memlimit

import (
	"math"
	"runtime/debug"
	"testing"
)

const mib = 1 << 20

func TestFor(t *testing.T) {
	tests := []struct {
		cache, want int64
	}{
		// gateway proxy's default cache: 112 MiB, where max_size + 256
		// MiB (320 MiB) let a 64 MiB cache's process reach 153 MiB.
		{64 * mib, 112 * mib},
		{256 * mib, 352 * mib}, // cache.max_size's default
		{1 << 30, 1<<30 + 256*mib + 32*mib},
		{0, Allowance},
		{-1, Allowance},
		{math.MaxInt64, math.MaxInt64}, // no overflow
		{(math.MaxInt64 - Allowance) / 5 * 4, (math.MaxInt64-Allowance)/5*4 + (math.MaxInt64-Allowance)/5 + Allowance},
	}
	for _, tt := range tests {
		if got := For(tt.cache); got != tt.want {
			t.Errorf("For(%d) = %d; want %d", tt.cache, got, tt.want)
		}
	}
}

// TestForWithinBound: the limit, plus the ~12 MiB of the binary's pages
// that count in the resident set but not in Go's limit and a margin for
// the runtime overshooting a soft limit, stays within the promise of
// max_size × 1.25 + 50 MiB.
func TestForWithinBound(t *testing.T) {
	for _, c := range []int64{0, 1 * mib, 8 * mib, 64 * mib, 256 * mib, 1 << 30, 16 << 30} {
		bound := c + c/4 + 50*mib
		if got := For(c) + 16*mib; got > bound {
			t.Errorf("For(%d MiB) + 16 MiB = %d MiB; want at most %d MiB", c/mib, got/mib, bound/mib)
		}
	}
}

func TestSet(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })

	t.Setenv("GOMEMLIMIT", "")
	if limit, ok := Set(64 * mib); !ok || limit != 112*mib {
		t.Errorf("Set(64 MiB) = %d, %t; want %d, true", limit, ok, 112*mib)
	}
	if got := debug.SetMemoryLimit(-1); got != 112*mib {
		t.Errorf("limit in force %d; want %d", got, 112*mib)
	}

	// GOMEMLIMIT wins: the runtime read it at start; Set leaves the limit
	// in force alone.
	debug.SetMemoryLimit(100 * mib)
	t.Setenv("GOMEMLIMIT", "100MiB")
	if limit, ok := Set(64 * mib); ok || limit != 100*mib {
		t.Errorf("Set(64 MiB) with GOMEMLIMIT = %d, %t; want %d, false", limit, ok, 100*mib)
	}
	if got := debug.SetMemoryLimit(-1); got != 100*mib {
		t.Errorf("limit in force %d with GOMEMLIMIT; want %d", got, 100*mib)
	}
}
