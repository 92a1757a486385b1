package redistier

import (
	"sync"
	"sync/atomic"
	"time"
)

type counters struct {
	hits, misses, bytesRead, bytesWritten atomic.Uint64
	writes, dropped, tooLarge             atomic.Uint64
	leases, leaseWaits, takeovers         atomic.Uint64
	purgesSent, purgesReceived, lost      atomic.Uint64

	mu   sync.Mutex
	errs map[string]uint64
}

func (c *counters) err(kind string) {
	c.mu.Lock()
	if c.errs == nil {
		c.errs = map[string]uint64{}
	}
	c.errs[kind]++
	c.mu.Unlock()
}

func (c *counters) errors() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]uint64, len(c.errs))
	for k, v := range c.errs {
		m[k] = v
	}
	return m
}

// latencyBounds are the histogram's upper bounds, in seconds: Redis
// answers in well under a millisecond when all is well, and an operation
// past a second has long failed.
var latencyBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

type histogram struct {
	counts []atomic.Uint64 // per bound, not cumulative; the last is +Inf
	sumNs  atomic.Uint64
}

func (h *histogram) init() { h.counts = make([]atomic.Uint64, len(latencyBounds)+1) }

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(latencyBounds) && s > latencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(max(d, 0)))
}

func (h *histogram) snapshot() (bounds []float64, cum []uint64, sum float64, n uint64) {
	bounds = append([]float64(nil), latencyBounds...)
	cum = make([]uint64, len(latencyBounds))
	var acc uint64
	for i := range latencyBounds {
		acc += h.counts[i].Load()
		cum[i] = acc
	}
	n = acc + h.counts[len(latencyBounds)].Load()
	return bounds, cum, float64(h.sumNs.Load()) / float64(time.Second), n
}
