package redistier

import (
	"context"
	"strconv"
	"testing"
	"time"

	"gateway/cache"
	"gateway/internal/redistest"
)

func TestCluster(t *testing.T) {
	leaks(t)
	cl := redistest.StartCluster(t, 3)
	cfg := testConfig(cl.Addrs...)
	cfg.Mode = ModeCluster
	a := openTier(t, cfg, true)
	b := openTier(t, cfg, true)
	p := primary("cluster.example", "/")
	ctx := context.Background()

	// One primary's records share a slot, which scripts need.
	h := a.k.hash(p)
	slot := cl.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", a.k.object(h))
	for _, k := range []string{a.k.lease(h), a.k.waiters(h)} {
		if s := cl.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", k); s != slot {
			t.Fatalf("%q in slot %s, the object in %s", k, s, slot)
		}
	}
	if cl.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", a.k.seq()) != cl.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", a.k.log()) {
		t.Fatal("the purge sequence and log are in different slots")
	}

	e := newEntry("clustered", nil, "", []string{"ct"}, time.Now())
	set(t, a.Tier, p, e)
	o := get(t, b.Tier, p)
	if o == nil || sameEntry(o.Variants[0], e) != "" {
		t.Fatalf("round trip through the cluster: %+v", o)
	}

	// Leases across the cluster.
	l, err := a.Lease(ctx, p)
	if err != nil || l == nil {
		t.Fatalf("Lease: %v, %v", l, err)
	}
	done := make(chan cache.Lease, 1)
	go func() { got, _ := b.Lease(ctx, p); done <- got }()
	waitFor(t, "B waiting", 5*time.Second, func() bool { return b.TierStats().LeaseWaits == 1 })
	l.Release()
	select {
	case got := <-done:
		if got != nil {
			t.Fatal("B took the lease A released; want woken with nil")
		}
	case <-time.After(cfg.LeaseTTL / 2):
		t.Fatal("B was not woken")
	}

	// Purges across the cluster.
	if _, err := a.PurgeTag(ctx, "ct", false); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-b.applied:
		if ev != (purgeEvent{cache.PurgeKindTag, "ct", false}) {
			t.Fatalf("OnPurge %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B did not learn the purge")
	}
	if o := get(t, b.Tier, p); o != nil {
		t.Fatal("purged entry served")
	}

	// The slot moves to another node: the tier follows it.
	p2 := primary("cluster.example", "/moved")
	set(t, a.Tier, p2, newEntry("moved", nil, "", nil, time.Now()))
	s2, _ := strconv.Atoi(cl.Nodes[0].Do(t, "CLUSTER", "KEYSLOT", a.k.object(a.k.hash(p2))))
	dst := (cl.NodeOfSlot(t, s2) + 1) % len(cl.Nodes)
	cl.MoveSlot(t, s2, dst)
	errs := 0
	waitFor(t, "Get after the slot moved", 10*time.Second, func() bool {
		o, err := b.Get(ctx, p2)
		if err != nil {
			errs++
		}
		return err == nil && o != nil && string(o.Variants[0].Body) == "moved"
	})
	if errs > 3 {
		t.Errorf("%d errors after the slot moved; want at most a few", errs)
	}
}

func TestSentinel(t *testing.T) {
	leaks(t)
	g := redistest.StartSentinel(t, "gwmaster")
	cfg := testConfig(g.Addrs...)
	cfg.Mode = ModeSentinel
	cfg.MasterName = g.MasterName
	a := openTier(t, cfg, true)
	b := openTier(t, cfg, true)
	p := primary("sentinel.example", "/")
	e := newEntry("watched", nil, "", nil, time.Now())
	set(t, a.Tier, p, e)
	if o := get(t, b.Tier, p); o == nil || sameEntry(o.Variants[0], e) != "" {
		t.Fatalf("round trip through Sentinel: %+v", o)
	}
	g.Failover(t)
	errs := 0
	p2 := primary("sentinel.example", "/after")
	waitFor(t, "a write and read after the failover", 30*time.Second, func() bool {
		ok, err := a.Set(context.Background(), p2, newEntry("after", nil, "", nil, time.Now()))
		if err != nil || !ok {
			errs++
			return false
		}
		a.flush(t)
		o, err := b.Get(context.Background(), p2)
		if err != nil {
			errs++
		}
		return err == nil && o != nil
	})
	t.Logf("%d errors across the failover", errs)
	// Purges still travel, and leases still work, on the new master.
	if _, err := a.PurgeURL(context.Background(), cache.URLPart(p2), false); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-b.applied:
		if ev.value != cache.URLPart(p2) {
			t.Fatalf("OnPurge %+v", ev)
		}
	case <-time.After(4 * cfg.PurgeBound):
		t.Fatal("B did not learn the purge made after the failover")
	}
	if o := get(t, b.Tier, p2); o != nil {
		t.Fatal("purged entry served after the failover")
	}
	if l, err := b.Lease(context.Background(), p2); l == nil || err != nil {
		t.Fatalf("Lease after the failover: %v, %v", l, err)
	} else {
		l.Release()
	}
	b.flush(t)
	// What landed is on the promoted master (Failover swapped the two).
	if n := g.Master.Do(t, "EXISTS", a.k.object(a.k.hash(p2))); n != "1" {
		t.Errorf("the write after the failover is not on the new master: EXISTS %s", n)
	}
}
