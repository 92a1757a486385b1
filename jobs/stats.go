package jobs

import (
	"sync"
	"sync/atomic"
	"time"
)

// histBounds are the buckets, in seconds, of the wait and run time
// histograms: from a few milliseconds to the default attempt timeout.
var histBounds = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800}

type hist struct {
	mu     sync.Mutex
	counts []uint64 // not cumulative; by bucket, the last one +Inf
	sum    float64
	n      uint64
}

func (h *hist) observe(d time.Duration) {
	s := d.Seconds()
	if s < 0 {
		s = 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, len(histBounds)+1)
	}
	i := 0
	for i < len(histBounds) && s > histBounds[i] {
		i++
	}
	h.counts[i]++
	h.sum += s
	h.n++
}

// read returns the cumulative counts of the finite bounds, the sum and
// the count.
func (h *hist) read() ([]uint64, float64, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]uint64, len(histBounds))
	var c uint64
	for i := range histBounds {
		if h.counts != nil {
			c += h.counts[i]
		}
		out[i] = c
	}
	return out, h.sum, h.n
}

type counters struct {
	succeeded, failed, cancelled     atomic.Uint64
	attempts, retries, callbackFails atomic.Uint64
	rejected                         atomic.Uint64
	wait, run                        hist
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Succeeded:        c.succeeded.Load(),
		Failed:           c.failed.Load(),
		Cancelled:        c.cancelled.Load(),
		Attempts:         c.attempts.Load(),
		Retries:          c.retries.Load(),
		CallbackFailures: c.callbackFails.Load(),
		Rejected:         c.rejected.Load(),
		WaitBounds:       append([]float64(nil), histBounds...),
		RunBounds:        append([]float64(nil), histBounds...),
	}
	s.WaitCounts, s.WaitSum, s.WaitCount = c.wait.read()
	s.RunCounts, s.RunSum, s.RunCount = c.run.read()
	return s
}
