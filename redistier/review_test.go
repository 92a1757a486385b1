package redistier

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"gateway/cache"
)

// A lease key without an expiry is taken over, not taken for a lease
// this process holds (PTTL -1 once read as "taken").
func TestLeaseKeyWithoutExpiry(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	p := primary("noexpiry.example", "/")
	lk := a.k.lease(a.k.hash(p))
	srv.Do(t, "SET", lk, "someone-else")
	l, err := a.Lease(context.Background(), p)
	if err != nil || l == nil {
		t.Fatalf("Lease: %v, %v; want the lease, taken over", l, err)
	}
	if v := srv.Do(t, "GET", lk); v != l.(*lease).token {
		t.Errorf("lease key holds %q; want this lease's token %q", v, l.(*lease).token)
	}
	if v, _ := strconv.Atoi(srv.Do(t, "PTTL", lk)); v <= 0 {
		t.Errorf("lease key PTTL %d; want an expiry", v)
	}
	if st := a.TierStats(); st.LeaseTakeovers != 1 {
		t.Errorf("LeaseTakeovers %d; want 1", st.LeaseTakeovers)
	}
	l.Release()
	a.flush(t)
}

// A corrupt variant is deleted, so that the key does not stay a miss,
// and its warning is logged once however often it is read.
func TestCorruptValueDeleted(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	var logs syncBuffer
	a, err := Open(testConfig(srv.Addr), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitFor(t, "up", 10*time.Second, func() bool { return a.TierStats().State == "up" })
	p := primary("corrupt.example", "/")
	key := a.k.object(a.k.hash(p))
	srv.Do(t, "HSET", key, "m", string(encodeMeta(meta{Primary: p})), "vx", "garbage")
	for range 20 {
		if o := get(t, a, p); o != nil {
			t.Fatal("a corrupt value was served")
		}
	}
	a.flush(t)
	if n := srv.Do(t, "EXISTS", key); n != "0" {
		t.Errorf("EXISTS of the corrupt key %s; want it deleted", n)
	}
	if n := strings.Count(logs.String(), "corrupt value"); n != 1 {
		t.Errorf("%d corrupt warnings for 20 reads; want 1:\n%s", n, logs.String())
	}
	// Another key's value (a hash collision) is not this key's to delete.
	q := primary("foreign.example", "/")
	fk := a.k.object(a.k.hash(q))
	srv.Do(t, "HSET", fk, "m", string(encodeMeta(meta{Primary: p})))
	get(t, a, q)
	a.flush(t)
	if n := srv.Do(t, "EXISTS", fk); n != "1" {
		t.Errorf("EXISTS of another key's value %s; want it kept", n)
	}
}

// The write queue holds at most queueBudget bytes of entries.
func TestWriteQueueByteBudget(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	a.queueBudget = 10 << 10
	release := make(chan struct{})
	for _, q := range a.queues {
		q <- writeOp{after: func() { <-release }}
	}
	body := strings.Repeat("x", 1<<10)
	stored := 0
	for i := range 30 {
		if ok, _ := a.Set(context.Background(), primary("bytes.example", "/"+strconv.Itoa(i)), newEntry(body, nil, "", nil, time.Now())); ok {
			stored++
		}
	}
	close(release)
	a.flush(t)
	st := a.TierStats()
	if stored != 10 || st.WritesDropped != 20 || st.Writes != 10 {
		t.Errorf("queued %d, dropped %d, landed %d of 30 1 KiB entries with a 10 KiB budget; want 10, 20, 10", stored, st.WritesDropped, st.Writes)
	}
	if n := a.queuedBytes.Load(); n != 0 {
		t.Errorf("queued bytes %d after the queue drained; want 0", n)
	}
}

// Recost does not restamp a variant read from Redis with this process's
// newer stamp: the purge its writer missed still applies to it.
func TestRecostKeepsStamp(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	b := openTier(t, testConfig(srv.Addr), true)
	p := primary("recost.example", "/")
	// Written by a process that had not learned purge 1 yet, its request
	// sent after A learns it (clocks differ, or the purge was in flight).
	e := newEntry("old", nil, "", nil, time.Now().Add(5*time.Second))
	mv, field, value, err := a.encodeEntry(p, e, 0)
	if err != nil {
		t.Fatal(err)
	}
	key := a.k.object(a.k.hash(p))
	srv.Do(t, "HSET", key, "m", mv, field, value)
	srv.Do(t, "PEXPIRE", key, "60000")
	o := get(t, a.Tier, p)
	if o == nil {
		t.Fatal("planted entry not read")
	}
	if _, err := b.PurgeURL(context.Background(), cache.URLPart(p), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to learn the purge", 5*time.Second, func() bool { return a.TierStats().PurgeSeq >= 1 })
	a.Recost(p, o.Variants[0])
	a.flush(t)
	for _, tier := range []*Tier{a.Tier, b.Tier} {
		if o := get(t, tier, p); o != nil {
			t.Errorf("the recosted entry was restamped and escaped the purge: %q", o.Variants[0].Body)
		}
	}
}

// InvalidateURL returns at once; the purge is pending in this process
// (its reads miss) until Redis numbers it, then reaches the others. A
// second one while the first is queued joins it.
func TestInvalidateURL(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	b := openTier(t, testConfig(srv.Addr), true)
	p, other := primary("inv.example", "/x"), primary("inv.example", "/y")
	set(t, a.Tier, p, newEntry("x", nil, "", nil, time.Now()))
	set(t, a.Tier, other, newEntry("y", nil, "", nil, time.Now()))
	release := make(chan struct{})
	for _, q := range a.queues {
		q <- writeOp{after: func() { <-release }}
	}
	start := time.Now()
	a.InvalidateURL(cache.URLPart(p))
	a.InvalidateURL(cache.URLPart(p))
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("InvalidateURL took %v; want at once", d)
	}
	if o := get(t, a.Tier, p); o != nil {
		t.Error("A served an entry it invalidated, its purge still queued")
	}
	if o := get(t, a.Tier, other); o == nil {
		t.Error("A missed an entry the invalidation does not select")
	}
	if o := get(t, b.Tier, p); o == nil {
		t.Error("B missed before the invalidation was sent")
	}
	close(release)
	select {
	case ev := <-b.applied:
		if ev != (purgeEvent{cache.PurgeKindURL, cache.URLPart(p), false}) {
			t.Fatalf("B's OnPurge %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B did not learn the invalidation")
	}
	a.flush(t)
	if o := get(t, b.Tier, p); o != nil {
		t.Error("B served the invalidated entry")
	}
	if o := get(t, a.Tier, p); o != nil {
		t.Error("A served the invalidated entry once sent")
	}
	if st := a.TierStats(); st.PurgesSent != 1 || a.purges.hasPending() {
		t.Errorf("PurgesSent %d, pending %v; want 1 (the two joined), none", st.PurgesSent, a.purges.hasPending())
	}
	// A fill after the invalidation (and the clock-skew margin) is served.
	set(t, a.Tier, p, newEntry("new", nil, "", nil, time.Now().Add(clockSkew)))
	if o := get(t, a.Tier, p); o == nil {
		t.Error("a fill after the invalidation was not served")
	}
}

// A purge that fails on Redis is not undone by this process reading the
// object back from Redis, and is sent once the tier is up again.
func TestFailedPurgeStaysPending(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	cfg := testConfig(srv.Addr)
	cfg.Timeout = 100 * time.Millisecond
	a := openTier(t, cfg, true)
	b := openTier(t, testConfig(srv.Addr), true)
	p := primary("failed.example", "/")
	set(t, a.Tier, p, newEntry("x", nil, "", []string{"t1"}, time.Now()))
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	if _, err := a.PurgeTag(context.Background(), "t1", false); err == nil {
		t.Fatal("PurgeTag on a paused Redis: no error")
	}
	srv.Resume()
	resumed = true
	waitFor(t, "A up", 10*time.Second, func() bool { return a.TierStats().State == "up" })
	if o, err := a.Get(context.Background(), p); o != nil || err != nil {
		t.Errorf("A after its failed purge: %v, %v; want a miss", o, err)
	}
	select {
	case ev := <-b.applied:
		if ev != (purgeEvent{cache.PurgeKindTag, "t1", false}) {
			t.Fatalf("B's OnPurge %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the failed purge was not sent when the tier came back")
	}
	waitFor(t, "A's pending purge dropped", 5*time.Second, func() bool { return !a.purges.hasPending() })
	for _, tier := range []*Tier{a.Tier, b.Tier} {
		if o := get(t, tier, p); o != nil {
			t.Error("the purged entry was served")
		}
	}
}

// Pending purges are bounded: past maxPending one pending purge of
// everything replaces them.
func TestPendingBounded(t *testing.T) {
	var p purgeLog
	p.init()
	now := time.Now()
	for i := range maxPending + 1 {
		p.addPendingLocked(&pendingPurge{kind: cache.PurgeKindURL, value: strconv.Itoa(i), at: now, soft: i%2 == 0})
	}
	if len(p.pending) != 1 || p.pending[0].kind != cache.PurgeKindAll || p.pending[0].soft {
		t.Fatalf("%d pending, first %+v; want one hard purge of everything", len(p.pending), p.pending[0])
	}
	if v := p.check(0, "anything", nil, now); v != purgedHard {
		t.Errorf("check before the purges: %d; want hard", v)
	}
	if v := p.check(0, "anything", nil, now.Add(clockSkew)); v != purgedNot {
		t.Errorf("check past the clock-skew margin: %d; want not purged", v)
	}
}

// A process that stored entries before its first purge sync (it started
// while Redis was away) applies the purges that sync reads.
func TestFirstSyncAppliesPurgesAfterEarlyStores(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	b := openTier(t, testConfig(srv.Addr), true)
	u := cache.URLPart(primary("early.example", "/"))
	if _, err := b.PurgeURL(context.Background(), u, false); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	a := openTier(t, testConfig(srv.Addr), false)
	// Its memory tier takes this; the shared tier cannot yet.
	if ok, _ := a.Set(context.Background(), primary("early.example", "/"), newEntry("x", nil, "", nil, time.Now())); ok {
		t.Fatal("Set queued before the tier connected")
	}
	srv.Resume()
	resumed = true
	select {
	case ev := <-a.applied:
		if ev != (purgeEvent{cache.PurgeKindURL, u, false}) {
			t.Fatalf("OnPurge %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the purge made before the first sync was not applied")
	}
}

// A process that stored nothing before its first sync applies nothing.
func TestFirstSyncAppliesNothing(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	b := openTier(t, testConfig(srv.Addr), true)
	if _, err := b.PurgeAll(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	a := openTier(t, testConfig(srv.Addr), true)
	select {
	case ev := <-a.applied:
		t.Fatalf("OnPurge %+v on the first sync", ev)
	case <-time.After(100 * time.Millisecond):
	}
}

// An invalidation finding the queue full is dropped and counted, stays
// pending, and is sent once the queue has room.
func TestInvalidateURLQueueFull(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	cfg := testConfig(srv.Addr)
	cfg.WriteConcurrency, cfg.WriteQueue = 1, 1
	a := openTier(t, cfg, true)
	b := openTier(t, testConfig(srv.Addr), true)
	release := make(chan struct{})
	a.queues[0] <- writeOp{after: func() { <-release }}
	a.queues[0] <- writeOp{after: func() {}} // the queue is full
	u := cache.URLPart(primary("full.example", "/"))
	a.InvalidateURL(u)
	if st := a.TierStats(); st.WritesDropped != 1 || !a.purges.hasPending() {
		t.Errorf("dropped %d, pending %v; want 1, the invalidation pending", st.WritesDropped, a.purges.hasPending())
	}
	close(release)
	select {
	case ev := <-b.applied:
		if ev != (purgeEvent{cache.PurgeKindURL, u, false}) {
			t.Fatalf("B's OnPurge %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dropped invalidation was not sent again")
	}
	waitFor(t, "nothing pending", 5*time.Second, func() bool { return !a.purges.hasPending() })
}

// Invalidations queued for sending do not count against maxPending.
func TestPendingBoundSkipsQueued(t *testing.T) {
	var p purgeLog
	p.init()
	now := time.Now()
	for i := range maxPending + 10 {
		if !p.addPendingLocked(&pendingPurge{kind: cache.PurgeKindURL, value: strconv.Itoa(i), at: now, sending: true}) {
			t.Fatalf("invalidation %d, queued, was replaced by a purge of everything", i)
		}
	}
	if v := p.check(0, "other", nil, now); v != purgedNot {
		t.Errorf("check of a URL no invalidation selects: %d; want not purged", v)
	}
}
