package redistier

import (
	"context"
	"testing"
	"time"

	"gateway/cache"
)

// A purge made on a Redis that lost its data (restarted empty, or a
// failover to a replica that lagged), before any process noticed, must
// still rank above the stamps of the entries written meanwhile and reach
// the other processes.
func TestPurgeAfterDataLoss(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	cfg := testConfig(srv.Addr)
	cfg.PurgeBound = time.Minute // no polling: only notifications and forced syncs
	a := openTier(t, cfg, true)
	b := openTier(t, cfg, true)
	for range 3 {
		if _, err := a.PurgeTag(context.Background(), "warm-up", false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both tiers at the third purge", 10*time.Second, func() bool {
		return a.TierStats().PurgeSeq == 3 && b.TierStats().PurgeSeq == 3
	})
	for len(b.applied) > 0 {
		<-b.applied
	}
	if _, err := srv.TextCmd("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	p := primary("lost-data.example", "/")
	requested := time.Now()
	waitFor(t, "the clock to move", time.Second, func() bool { return time.Now().After(requested) })
	// B's fill, begun before the purge, lands in the emptied Redis.
	set(t, b.Tier, p, newEntry("old", nil, "", nil, requested))
	if _, err := a.PurgeURL(context.Background(), cache.URLPart(p), false); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-b.applied:
		if ev.value != cache.URLPart(p) {
			t.Fatalf("B applied %+v; want the purge of %q", ev, cache.URLPart(p))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("B never applied the purge made right after Redis lost its data")
	}
	for name, tier := range map[string]*Tier{"A": a.Tier, "B": b.Tier} {
		if o := get(t, tier, p); o != nil {
			t.Errorf("%s served from Redis an entry fetched before the purge: %q", name, o.Variants[0].Body)
		}
	}
}
