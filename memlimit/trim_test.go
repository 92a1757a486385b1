package memlimit

import (
	"runtime"
	"testing"
	"time"

	"gateway/internal/leakcheck"
)

func TestShouldTrim(t *testing.T) {
	const quiet = 4 * mib
	idle := heapSample{allocs: 1000 * mib}
	tests := []struct {
		name       string
		allocated  uint64 // since the look before
		held, live uint64
		want       bool
	}{
		// A 64 MiB cache after its fill: 112 MiB held, 67 MiB live.
		{"idle after a load", 1 * mib, 112 * mib, 67 * mib, true},
		{"still under load", 40 * mib, 112 * mib, 67 * mib, false},
		{"just under quiet", quiet - 1, 112 * mib, 67 * mib, true},
		{"at quiet", quiet, 112 * mib, 67 * mib, false},
		{"already trimmed", 0, 70 * mib, 67 * mib, false},
		{"small surplus", 0, 16 * mib, 0, false},
		{"surplus over 16 MiB", 0, 17 * mib, 0, true},
		// A 4 GiB cache: an eighth of it (512 MiB) before a collection
		// of the whole of it is worth it.
		{"large heap, small surplus", 0, 4096*mib + 500*mib, 4096 * mib, false},
		{"large heap, large surplus", 0, 4096*mib + 600*mib, 4096 * mib, true},
		{"live above held", 0, 60 * mib, 67 * mib, false},
	}
	for _, tt := range tests {
		cur := heapSample{allocs: idle.allocs + tt.allocated, held: tt.held, live: tt.live}
		if got := shouldTrim(idle, cur, quiet, defaultMinSurplus); got != tt.want {
			t.Errorf("%s: shouldTrim(%d MiB allocated, %d MiB held, %d MiB live) = %t; want %t",
				tt.name, tt.allocated/mib, tt.held/mib, tt.live/mib, got, tt.want)
		}
	}
}

// TestShouldTrimMinSurplus: a smaller MinSurplus (a sidecar's 4 MiB)
// trims a small process for less; an eighth of the live heap still
// bounds it from below.
func TestShouldTrimMinSurplus(t *testing.T) {
	const quiet, minSurplus = 4 * mib, 4 * mib
	idle := heapSample{allocs: 1000 * mib}
	tests := []struct {
		held, live uint64
		want       bool
	}{
		{11 * mib, 6 * mib, true},
		{9 * mib, 6 * mib, false},
		{300 * mib, 256 * mib, true},
		{280 * mib, 256 * mib, false}, // 24 MiB: under an eighth
	}
	for _, tt := range tests {
		cur := heapSample{allocs: idle.allocs, held: tt.held, live: tt.live}
		if got := shouldTrim(idle, cur, quiet, minSurplus); got != tt.want {
			t.Errorf("shouldTrim(%d MiB held, %d MiB live, min surplus 4 MiB) = %t; want %t", tt.held/mib, tt.live/mib, got, tt.want)
		}
	}
}

var sink [][]byte

// TestTrimmerReturnsMemory: garbage left by a burst of allocation is
// given back once the process is idle, and the Trimmer's goroutine ends
// with Close.
func TestTrimmerReturnsMemory(t *testing.T) {
	leakcheck.Check(t, "memlimit.(*Trimmer)")
	trimmed := make(chan [2]uint64, 1)
	tr := StartTrimmer(TrimOptions{
		Interval: 20 * time.Millisecond,
		OnTrim: func(before, after uint64) {
			select {
			case trimmed <- [2]uint64{before, after}:
			default:
			}
		},
	})
	defer tr.Close()
	for range 64 {
		sink = append(sink, make([]byte, mib))
	}
	sink = nil
	runtime.GC() // the burst is garbage now, its memory still held
	select {
	case b := <-trimmed:
		t.Logf("trimmed: %d MiB held before, %d MiB after", b[0]/mib, b[1]/mib)
		if b[0] < b[1]+defaultMinSurplus {
			t.Errorf("trim went from %d to %d bytes held; want at least %d fewer", b[0], b[1], defaultMinSurplus)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no trim within 30s of the process going idle")
	}
	tr.Close()
	tr.Close() // idempotent
}
