package redistier

import (
	"context"
	"errors"
	"testing"
	"time"

	"gateway/cache"
)

// TestUnderTieredStore: two processes, each a memory store over its
// tier, as the gateway composes them: what one stores the other serves,
// and a purge in one reaches the other's memory.
func TestUnderTieredStore(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	type proc struct {
		tier  *Tier
		store *cache.TieredStore
	}
	open := func() proc {
		var ts *cache.TieredStore
		tier, err := Open(testConfig(srv.Addr), Options{OnPurge: func(k cache.PurgeKind, v string, soft bool) {
			_, _ = ts.PurgeFirst(context.Background(), k, v, soft)
		}})
		if err != nil {
			t.Fatal(err)
		}
		mem, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		ts = cache.NewTieredStore(mem, tier, nil)
		t.Cleanup(func() { _ = ts.Close() })
		waitFor(t, "tier up", 10*time.Second, func() bool { return tier.TierStats().State == "up" && tier.purges.isSynced() })
		return proc{tier, ts}
	}
	a, b := open(), open()
	ctx := context.Background()
	p := primary("tiered.example", "/")
	if ok, err := a.store.Set(ctx, p, newEntry("shared", nil, "", nil, time.Now())); !ok || err != nil {
		t.Fatal(ok, err)
	}
	a.tier.flush(t)
	o, err := b.store.Get(ctx, p)
	if err != nil || o == nil || !o.Shared || string(o.Variants[0].Body) != "shared" {
		t.Fatalf("B's Get: %+v, %v; want the shared entry", o, err)
	}
	b.store.Wait()
	if o, _ := b.store.Get(ctx, p); o == nil || o.Shared {
		t.Fatalf("B's second Get: %+v; want it from B's memory", o)
	}
	// A purges: B's memory and Redis both lose the entry.
	if _, err := a.store.PurgeURL(ctx, cache.URLPart(p), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B's memory purged", 5*time.Second, func() bool {
		o, _ := b.store.Get(ctx, p)
		return o == nil
	})
}

// TestLocalPurgeNotUndone: a purge made while Redis does not answer
// purges this process's memory; its next miss must not read the object
// back from Redis, which still holds it.
func TestLocalPurgeNotUndone(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	cfg := testConfig(srv.Addr)
	cfg.Timeout = 100 * time.Millisecond
	tier, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ts := cache.NewTieredStore(mem, tier, nil)
	defer ts.Close()
	waitFor(t, "tier up", 10*time.Second, func() bool { return tier.TierStats().State == "up" && tier.purges.isSynced() })
	ctx := context.Background()
	p := primary("undone.example", "/")
	if ok, err := ts.Set(ctx, p, newEntry("old", nil, "", nil, time.Now())); !ok || err != nil {
		t.Fatal(ok, err)
	}
	tier.flush(t)
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	var ste *cache.SecondTierError
	if _, err := ts.PurgeURL(ctx, cache.URLPart(p), false); !errors.As(err, &ste) {
		t.Fatalf("PurgeURL with Redis paused: %v; want a SecondTierError (scope local)", err)
	}
	srv.Resume()
	resumed = true
	waitFor(t, "tier up", 10*time.Second, func() bool { return tier.TierStats().State == "up" })
	if o, _ := ts.Get(ctx, p); o != nil {
		t.Fatalf("the locally purged entry came back from Redis: %q", o.Variants[0].Body)
	}
}
