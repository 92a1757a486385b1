package limit

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkKeyedAllow is the cost of one rate-limit decision: a shard
// lookup and a token taken, for a key already tracked.
func BenchmarkKeyedAllow(b *testing.B) {
	k := newKeyed(b, KeyedOptions{Rate: 1e9, Burst: 1 << 30})
	key := []byte{'i', 192, 0, 2, 1}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := k.Allow(key, now); !ok {
			b.Fatal("refused")
		}
	}
}

// BenchmarkKeyedAllowParallel: many clients at once, 4096 keys spread
// over the shards.
func BenchmarkKeyedAllowParallel(b *testing.B) {
	k := newKeyed(b, KeyedOptions{Rate: 1e9, Burst: 1 << 30})
	var next atomic.Uint32
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := []byte{'i', 10, 0, 0, 0}
		i := next.Add(1) << 12
		for pb.Next() {
			i++
			binary.BigEndian.PutUint16(key[3:], uint16(i&4095))
			k.Allow(key, now)
		}
	})
}

// BenchmarkKeyedRefused is the cost of a refusal, which makes a
// reservation to learn the wait and cancels it.
func BenchmarkKeyedRefused(b *testing.B) {
	k := newKeyed(b, KeyedOptions{Rate: 0.001, Burst: 1})
	key := []byte("client")
	now := time.Now()
	k.Allow(key, now)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := k.Allow(key, now); ok {
			b.Fatal("allowed")
		}
	}
}

// BenchmarkConcurrency is a slot taken and given back, uncontended and
// from many goroutines (with slots for all: no waiting).
func BenchmarkConcurrency(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		c := newConcurrency(b, ConcurrencyOptions{MaxInFlight: 1})
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Acquire(ctx); err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := newConcurrency(b, ConcurrencyOptions{MaxInFlight: 1 << 20})
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Acquire(ctx); err != nil {
					b.Error(err)
					return
				}
				c.Release()
			}
		})
	})
}

// BenchmarkKeyedMillionIPs is a memory measurement, not a timing: it
// feeds one million distinct IPv4 addresses, as a flood of clients
// would, and reports the heap the limiter retains afterwards
// (retained-B), per key tracked (B/key), and the keys tracked.
//
//   - cap: a slow rate (1/min), so no bucket refills during the flood
//     and only max_keys (the default, 100000) bounds memory;
//   - idle: 100/s with burst 10 and the clock moving 1µs per request,
//     so buckets refill in 0.1s and idle ones are swept as the flood
//     goes on.
func BenchmarkKeyedMillionIPs(b *testing.B) {
	for _, bc := range []struct {
		name string
		o    KeyedOptions
		step time.Duration
	}{
		{"cap", KeyedOptions{Rate: 1.0 / 60, Burst: 5}, 0},
		{"idle", KeyedOptions{Rate: 100, Burst: 10}, time.Microsecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const n = 1_000_000
			var retained, keys float64
			for b.Loop() {
				before := heapInUse()
				k := newKeyed(b, bc.o)
				now := time.Now()
				key := []byte{'i', 0, 0, 0, 0}
				for i := range n {
					binary.BigEndian.PutUint32(key[1:], uint32(0x0a000000+i))
					k.Allow(key, now)
					now = now.Add(bc.step)
				}
				retained = float64(heapInUse() - before)
				keys = float64(k.Len())
				runtime.KeepAlive(k)
			}
			b.ReportMetric(retained, "retained-B")
			b.ReportMetric(keys, "keys")
			b.ReportMetric(retained/max(keys, 1), "B/key")
		})
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
