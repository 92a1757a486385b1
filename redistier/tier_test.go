package redistier

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"gateway/cache"
	"gateway/internal/redistest"
)

func TestRoundTrip(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	b := openTier(t, testConfig(srv.Addr), true)
	p := primary("rt.example", "/page")
	now := time.Now()

	de := newEntry("hallo", []string{"Accept-Language"}, "de", []string{"t1", "t2"}, now.Add(-2*time.Second))
	en := newEntry("hello", []string{"Accept-Language"}, "en", []string{"t1"}, now.Add(-time.Second))
	en.AddForm(cache.Form{Coding: "gzip", Body: []byte("gz-bytes"), ETag: `W/"e1-gzip"`})
	set(t, a.Tier, p, de)
	set(t, a.Tier, p, en)

	o := get(t, b.Tier, p)
	if o == nil {
		t.Fatal("Get from the second tier: miss; want both variants")
	}
	if !o.Shared || o.Primary != p || !equalStrings(o.Vary, []string{"Accept-Language"}) || len(o.Variants) != 2 {
		t.Fatalf("object: shared %v, primary %q, vary %q, %d variants; want shared, %q, [Accept-Language], 2", o.Shared, o.Primary, o.Vary, len(o.Variants), p)
	}
	if d := sameEntry(o.Variants[0], en); d != "" {
		t.Errorf("newest variant: %s", d)
	}
	if d := sameEntry(o.Variants[1], de); d != "" {
		t.Errorf("older variant: %s", d)
	}

	// The key lives for the entry's remaining freshness plus its Linger.
	key := a.k.object(a.k.hash(p))
	pttl, _ := strconv.Atoi(srv.Do(t, "PTTL", key))
	want := 60*time.Second - time.Since(en.ResponseTime) + en.Linger
	if d := time.Duration(pttl)*time.Millisecond - want; d < -3*time.Second || d > time.Second {
		t.Errorf("PTTL %d ms; want about %v", pttl, want)
	}

	// Another Vary replaces every variant.
	gz := newEntry("any", []string{"Accept-Encoding"}, "gzip", nil, now)
	set(t, a.Tier, p, gz)
	o = get(t, b.Tier, p)
	if o == nil || len(o.Variants) != 1 || !equalStrings(o.Vary, []string{"Accept-Encoding"}) || string(o.Variants[0].Body) != "any" {
		t.Fatalf("after a Set with another Vary: %+v; want its one variant", o)
	}

	// A pass marker replaces everything, and so does the next Set.
	until := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	if err := a.SetPass(context.Background(), p, until); err != nil {
		t.Fatal(err)
	}
	a.flush(t)
	o = get(t, b.Tier, p)
	if o == nil || len(o.Variants) != 0 || !o.PassUntil.Equal(until) {
		t.Fatalf("after SetPass: %+v; want a pass marker until %v", o, until)
	}
	if pttl, _ := strconv.Atoi(srv.Do(t, "PTTL", key)); pttl <= 0 || pttl > 60000 {
		t.Errorf("pass marker PTTL %d ms; want until the marker ends", pttl)
	}
	set(t, a.Tier, p, de)
	if o = get(t, b.Tier, p); o == nil || !o.PassUntil.IsZero() || len(o.Variants) != 1 {
		t.Fatalf("after a Set on a pass marker: %+v; want the variant alone", o)
	}

	found, err := b.Delete(context.Background(), p)
	if err != nil || !found {
		t.Fatalf("Delete: %v, %v; want found", found, err)
	}
	if o := get(t, a.Tier, p); o != nil {
		t.Fatalf("Get after Delete: %+v; want a miss", o)
	}
	st := b.TierStats()
	if st.Hits < 4 || st.Misses != 0 || st.BytesRead == 0 || st.LatencyCount == 0 {
		t.Errorf("reader stats %+v; want hits counted, bytes read, latencies", st)
	}
	if st := a.TierStats(); st.Writes != 5 || st.BytesWritten == 0 {
		t.Errorf("writer stats: %d writes, %d bytes; want 5 and some", st.Writes, st.BytesWritten)
	}
}

func TestLimits(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	cfg := testConfig(srv.Addr)
	cfg.MaxObjectSize = 100
	a := openTier(t, cfg, true)
	p := primary("big.example", "/")
	stored, err := a.Set(context.Background(), p, newEntry(strings.Repeat("x", 101), nil, "", nil, time.Now()))
	if stored || err != nil {
		t.Fatalf("Set of an entry over MaxObjectSize: %v, %v; want not stored", stored, err)
	}
	if st := a.TierStats(); st.WritesTooLarge != 1 || st.WritesDropped != 1 {
		t.Fatalf("too large %d, dropped %d; want 1, 1", st.WritesTooLarge, st.WritesDropped)
	}

	// A full queue drops writes; hold the writer with a barrier.
	release := make(chan struct{})
	for _, q := range a.queues {
		q <- writeOp{after: func() { <-release }}
	}
	dropped := false
	for i := range 10000 {
		ok, _ := a.Set(context.Background(), primary("q.example", "/"+strconv.Itoa(i)), newEntry("x", nil, "", nil, time.Now()))
		if !ok {
			dropped = true
			break
		}
	}
	close(release)
	if !dropped || a.TierStats().WritesDropped < 2 {
		t.Fatalf("a full queue: dropped %v, counted %d", dropped, a.TierStats().WritesDropped)
	}
	a.flush(t)
}

func TestCorruptValuesAreMisses(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	good := newEntry("body", nil, "", nil, time.Now())
	mv, field, value, err := a.encodeEntry(primary("x.example", "/"), good, 0)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string { b := []byte(s); b[i] ^= 1; return string(b) }
	cases := []struct {
		name  string
		plant func(key string)
	}{
		{"garbage meta", func(k string) { srv.Do(t, "HSET", k, "m", "garbage") }},
		{"bit flipped", func(k string) { srv.Do(t, "HSET", k, "m", mv, field, flip(value, len(value)/2)) }},
		{"truncated", func(k string) { srv.Do(t, "HSET", k, "m", mv, field, value[:len(value)-5]) }},
		{"other version", func(k string) {
			v := []byte(value)
			v[3] = 99
			srv.Do(t, "HSET", k, "m", mv, field, string(seal(v[:len(v)-4], 0)))
		}},
		{"trailing bytes", func(k string) {
			v := []byte(value)
			srv.Do(t, "HSET", k, "m", mv, field, string(seal(append(v[:len(v)-4:len(v)-4], 0), 0)))
		}},
		{"other key's value", func(k string) { srv.Do(t, "HSET", k, "m", mv, field, value) }},
		{"wrong field", func(k string) { srv.Do(t, "HSET", k, "m", mv, "vother", value) }},
		{"not a hash", func(k string) { srv.Do(t, "SET", k, "x") }},
		{"no meta", func(k string) { srv.Do(t, "HSET", k, field, value) }},
	}
	for i, c := range cases {
		p := primary("c"+strconv.Itoa(i)+".example", "/")
		if c.name != "other key's value" {
			// plant under p's own meta, so that only the damage counts
			m := string(encodeMeta(meta{Primary: p}))
			mv = m
		}
		c.plant(a.k.object(a.k.hash(p)))
		before := a.TierStats().Errors["corrupt"]
		o, err := a.Get(context.Background(), p)
		if o != nil || err != nil {
			t.Errorf("%s: Get = %v, %v; want a miss", c.name, o, err)
		}
		if got := a.TierStats().Errors["corrupt"]; got != before+1 {
			t.Errorf("%s: corrupt count %d; want %d", c.name, got, before+1)
		}
	}
}

func TestPurges(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	b := openTier(t, testConfig(srv.Addr), true)
	cases := []struct {
		kind  cache.PurgeKind
		value func(host string) string
	}{
		{cache.PurgeKindURL, func(h string) string { return cache.URLPart(primary(h, "/hit")) }},
		{cache.PurgeKindPrefix, func(h string) string { return "https\x00" + h + "\x00/hi" }},
		{cache.PurgeKindTag, func(h string) string { return "tag-" + h }},
		{cache.PurgeKindAll, func(string) string { return "" }},
	}
	for i, c := range cases {
		for _, soft := range []bool{false, true} {
			name := c.kind.String() + map[bool]string{false: "/hard", true: "/soft"}[soft]
			t.Run(name, func(t *testing.T) {
				host := "p" + strconv.Itoa(i) + strconv.FormatBool(soft) + ".example"
				hit, miss := primary(host, "/hit"), primary(host, "/other")
				set(t, a.Tier, hit, newEntry("hit", nil, "", []string{"tag-" + host}, time.Now()))
				set(t, a.Tier, miss, newEntry("miss", nil, "", []string{"other"}, time.Now()))
				before := b.TierStats().PurgesReceived
				if n, err := cache.PurgeStore(context.Background(), a.Tier, c.kind, c.value(host), soft); n != 0 || err != nil {
					t.Fatalf("purge: %d, %v", n, err)
				}
				select {
				case ev := <-b.applied:
					if ev != (purgeEvent{c.kind, c.value(host), soft}) {
						t.Fatalf("OnPurge(%v, %q, %v); want (%v, %q, %v)", ev.kind, ev.value, ev.soft, c.kind, c.value(host), soft)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the other tier's OnPurge was not called")
				}
				if got := b.TierStats().PurgesReceived; got != before+1 {
					t.Errorf("PurgesReceived %d; want %d", got, before+1)
				}
				select {
				case ev := <-a.applied:
					t.Fatalf("the purging tier applied its own purge again: %+v", ev)
				default:
				}
				for _, tier := range []*Tier{a.Tier, b.Tier} {
					o := get(t, tier, hit)
					switch {
					case !soft && o != nil:
						t.Errorf("hard purged entry: %d variants; want a miss", len(o.Variants))
					case soft && (o == nil || !o.Variants[0].SoftPurged()):
						t.Errorf("soft purged entry: %+v; want it, soft purged", o)
					}
					o = get(t, tier, miss)
					if c.kind != cache.PurgeKindAll && (o == nil || o.Variants[0].SoftPurged()) {
						t.Errorf("entry the purge does not select: %+v; want it untouched", o)
					}
				}
			})
		}
	}
	if st := a.TierStats(); st.PurgesSent != 8 {
		t.Errorf("PurgesSent %d; want 8", st.PurgesSent)
	}
}

func TestPurgeOvertakesFill(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	b := openTier(t, testConfig(srv.Addr), true)
	p := primary("fill.example", "/")
	requested := time.Now() // the fill's request goes out
	waitFor(t, "the clock to move", time.Second, func() bool { return time.Now().After(requested) })
	if _, err := b.PurgeURL(context.Background(), cache.URLPart(p), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the purge to reach A", 5*time.Second, func() bool { return a.TierStats().PurgeSeq >= b.TierStats().PurgeSeq && b.TierStats().PurgeSeq > 0 })
	// The fill lands after the purge: it may hold what the purge removed.
	set(t, a.Tier, p, newEntry("old", nil, "", nil, requested))
	for _, tier := range []*Tier{a.Tier, b.Tier} {
		if o := get(t, tier, p); o != nil {
			t.Errorf("a fill that began before a purge was served: %q", o.Variants[0].Body)
		}
	}
	// One that began after it is served.
	set(t, a.Tier, p, newEntry("new", nil, "", nil, time.Now()))
	if o := get(t, b.Tier, p); o == nil || string(o.Variants[0].Body) != "new" {
		t.Errorf("a fill after the purge: %+v; want it", o)
	}
}

func TestLostNotification(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	bcfg := testConfig(srv.Addr)
	b := openTier(t, bcfg, false)
	subscribed, synced := make(chan struct{}, 100), make(chan struct{}, 100)
	hook := func(ev string) {
		switch ev {
		case "subscribed":
			subscribed <- struct{}{}
		case "synced":
			synced <- struct{}{}
		}
	}
	b.testHook.Store(&hook)
	waitFor(t, "tier up and synced", 10*time.Second, func() bool {
		return b.TierStats().State == "up" && b.purges.isSynced()
	})
	p := primary("lost.example", "/")
	set(t, a.Tier, p, newEntry("x", nil, "", nil, time.Now()))
	for len(subscribed) > 0 || len(synced) > 0 {
		select {
		case <-subscribed:
		case <-synced:
		}
	}
	// The subscription breaks, and comes back (rueidis subscribes again);
	// the notification of the purge made meanwhile never arrives.
	killSubscribers(t, srv)
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("B did not subscribe again")
	}
	select {
	case <-synced: // the sync of the new subscription: only the poll is left
	case <-time.After(10 * time.Second):
		t.Fatal("B did not sync after subscribing again")
	}
	b.dropPurgeMessages.Store(true)
	start := time.Now()
	if _, err := a.PurgeURL(context.Background(), cache.URLPart(p), false); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-b.applied:
		if ev.value != cache.URLPart(p) {
			t.Fatalf("OnPurge value %q", ev.value)
		}
	case <-time.After(4 * bcfg.PurgeBound):
		t.Fatalf("B did not learn the purge within %v", 4*bcfg.PurgeBound)
	}
	t.Logf("learned in %v (bound %v)", time.Since(start), bcfg.PurgeBound)
	if st := b.TierStats(); st.NotificationsLost != 1 {
		t.Errorf("NotificationsLost %d; want 1", st.NotificationsLost)
	}
	if o := get(t, b.Tier, p); o != nil {
		t.Error("B served the purged entry")
	}
}

func TestLease(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	cfg := testConfig(srv.Addr)
	cfg.LeaseTTL = 5 * time.Second
	a := openTier(t, cfg, true)
	b := openTier(t, cfg, true)
	p := primary("lease.example", "/")
	ctx := context.Background()
	l, err := a.Lease(ctx, p)
	if err != nil || l == nil {
		t.Fatalf("A's Lease: %v, %v; want the lease", l, err)
	}
	type result struct {
		l   cache.Lease
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := b.Lease(ctx, p)
		done <- result{l, err}
	}()
	waitFor(t, "B waiting", 5*time.Second, func() bool { return b.TierStats().LeaseWaits == 1 })
	select {
	case r := <-done:
		t.Fatalf("B's Lease returned %v, %v while A holds it", r.l, r.err)
	default:
	}
	released := time.Now()
	if ok, err := a.Set(ctx, p, newEntry("filled", nil, "", nil, time.Now())); !ok || err != nil {
		t.Fatal(ok, err)
	}
	l.Release()
	select {
	case r := <-done:
		if r.l != nil || r.err != nil {
			t.Fatalf("B's Lease: %v, %v; want nil, nil", r.l, r.err)
		}
	case <-time.After(cfg.LeaseTTL / 2):
		t.Fatal("B was not woken by the release")
	}
	t.Logf("woken in %v", time.Since(released))
	if o := get(t, b.Tier, p); o == nil || string(o.Variants[0].Body) != "filled" {
		t.Fatalf("B's Get after the release: %+v; want the fill", o)
	}
	if st := a.TierStats(); st.LeasesTaken != 1 {
		t.Errorf("LeasesTaken %d; want 1", st.LeasesTaken)
	}
}

// TestLeaseReleasedUnfilled: a holder that stored nothing tells the
// waiters so, and they fetch at once instead of taking the lease in turn.
func TestLeaseReleasedUnfilled(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	cfg := testConfig(srv.Addr)
	cfg.LeaseTTL = 5 * time.Second
	a := openTier(t, cfg, true)
	b := openTier(t, cfg, true)
	p := primary("unfilled.example", "/")
	ctx := context.Background()
	l, err := a.Lease(ctx, p)
	if err != nil || l == nil {
		t.Fatalf("A's Lease: %v, %v; want the lease", l, err)
	}
	done := make(chan error, 1)
	go func() {
		got, err := b.Lease(ctx, p)
		if got != nil {
			got.Release()
		}
		done <- err
	}()
	waitFor(t, "B waiting", 5*time.Second, func() bool { return b.TierStats().LeaseWaits == 1 })
	l.Release() // nothing was stored under p
	select {
	case err := <-done:
		if !errors.Is(err, errUnfilled) {
			t.Fatalf("B's Lease: %v; want errUnfilled, so that it fetches at once", err)
		}
	case <-time.After(cfg.LeaseTTL / 2):
		t.Fatal("B was not woken by the release")
	}
}

func TestLeaseLapses(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	cfg := testConfig(srv.Addr)
	cfg.LeaseTTL = 600 * time.Millisecond
	a := openTier(t, cfg, true)
	b := openTier(t, cfg, true)
	p := primary("dead.example", "/")
	ctx := context.Background()
	l, err := a.Lease(ctx, p)
	if err != nil || l == nil {
		t.Fatalf("A's Lease: %v, %v", l, err)
	}
	// Held across several LeaseTTLs, it is extended.
	time.Sleep(2 * cfg.LeaseTTL)
	if got, _ := b.Lease(ctx, p); got != nil {
		t.Fatal("B took a lease A holds and extends")
	}
	// A dies: nobody extends nor releases.
	l.(*lease).stopExtending()
	start := time.Now()
	var got cache.Lease
	for range 5 {
		if got, err = b.Lease(ctx, p); got != nil || err != nil {
			break
		}
	}
	if got == nil || err != nil {
		t.Fatalf("B's Lease after A died: %v, %v; want the lease", got, err)
	}
	if d := time.Since(start); d > 3*cfg.LeaseTTL {
		t.Errorf("took %v over; want about LeaseTTL %v", d, cfg.LeaseTTL)
	}
	if st := b.TierStats(); st.LeaseTakeovers != 1 {
		t.Errorf("LeaseTakeovers %d; want 1", st.LeaseTakeovers)
	}
	got.Release()
	b.flush(t)
}

func TestFailOpenPaused(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	cfg := testConfig(srv.Addr)
	cfg.Timeout = 100 * time.Millisecond
	a := openTier(t, cfg, true)
	p := primary("pause.example", "/")
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	// Every operation fails within Timeout; the tier's own (its purge
	// poll) count too, so the breaker may open before this test's.
	for i := 0; ; i++ {
		start := time.Now()
		_, err := a.Get(context.Background(), p)
		if err == nil {
			t.Fatalf("Get %d on a paused Redis: no error", i)
		}
		if d := time.Since(start); d > cfg.Timeout+time.Second {
			t.Fatalf("Get took %v; want about %v", d, cfg.Timeout)
		}
		if errors.Is(err, ErrDown) {
			break
		}
		if i >= cfg.BreakerFailures {
			t.Fatalf("%d failures in a row and the breaker is not open: %v", i+1, err)
		}
	}
	start := time.Now()
	if _, err := a.Get(context.Background(), p); !errors.Is(err, ErrDown) {
		t.Fatalf("Get with the breaker open: %v; want ErrDown", err)
	}
	if _, err := a.Lease(context.Background(), p); !errors.Is(err, ErrDown) {
		t.Fatalf("Lease with the breaker open: %v; want ErrDown", err)
	}
	if _, err := a.PurgeAll(context.Background(), false); !errors.Is(err, ErrDown) {
		t.Fatalf("PurgeAll with the breaker open: %v; want ErrDown", err)
	}
	if ok, err := a.Set(context.Background(), p, newEntry("x", nil, "", nil, time.Now())); ok || !errors.Is(err, ErrDown) {
		t.Fatalf("Set with the breaker open: %v, %v; want ErrDown", ok, err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("ops with the breaker open took %v; want at once", d)
	}
	if st := a.TierStats(); st.State != "down" || st.Breaker != "open" || st.Errors["timeout"] < uint64(cfg.BreakerFailures) {
		t.Errorf("stats while paused: %s, %s, %v", st.State, st.Breaker, st.Errors)
	}
	srv.Resume()
	resumed = true
	resumedAt := time.Now()
	waitFor(t, "the tier back up", 15*cfg.BreakerCoolDown, func() bool { return a.TierStats().State == "up" })
	t.Logf("back up %v after Resume (cool-down %v)", time.Since(resumedAt), cfg.BreakerCoolDown)
	if _, err := a.Get(context.Background(), p); err != nil {
		t.Fatalf("Get after resume: %v", err)
	}
}

func TestRestartedEmpty(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	p := primary("restart.example", "/")
	if _, err := a.PurgeAll(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	waitFor(t, "a write and read through the restarted Redis", 20*time.Second, func() bool {
		ok, err := a.Set(context.Background(), p, newEntry("x", nil, "", nil, time.Now()))
		if !ok {
			t.Logf("set: %v %+v", err, a.TierStats())
			return false
		}
		a.flush(t)
		o, err := a.Get(context.Background(), p)
		if err != nil || o == nil {
			t.Logf("after restart: %v, %v, %+v", o, err, a.TierStats())
		}
		return err == nil && o != nil
	})
	// The purge numbering does not go back: a purge now still applies.
	waitFor(t, "the purge numbering raised", 10*time.Second, func() bool {
		v, _ := srv.TextCmd("GET", a.k.seq())
		return v == strconv.FormatUint(a.TierStats().PurgeSeq, 10) && v == "1"
	})
	if _, err := a.PurgeURL(context.Background(), cache.URLPart(p), false); err != nil {
		t.Fatal(err)
	}
	if o := get(t, a.Tier, p); o != nil {
		t.Fatal("a purge after the restart did not apply")
	}
}

func TestOpenUnreachable(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	srv.Kill()
	a := openTier(t, testConfig(srv.Addr), false)
	if st := a.TierStats().State; st != "connecting" && st != "down" {
		t.Errorf("State %q; want connecting or down", st)
	}
	start := time.Now()
	if _, err := a.Get(context.Background(), primary("u.example", "/")); !errors.Is(err, ErrDown) {
		t.Errorf("Get: %v; want ErrDown", err)
	}
	if ok, err := a.Set(context.Background(), primary("u.example", "/"), newEntry("x", nil, "", nil, time.Now())); ok || !errors.Is(err, ErrDown) {
		t.Errorf("Set: %v, %v; want ErrDown", ok, err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("ops took %v; want at once", d)
	}
	waitFor(t, "a failed attempt", 5*time.Second, func() bool { return a.TierStats().State == "down" })
	srv.Restart(t)
	waitFor(t, "the tier up", 10*time.Second, func() bool { return a.TierStats().State == "up" })
	if _, err := a.Get(context.Background(), primary("u.example", "/")); err != nil {
		t.Fatal(err)
	}
}

func TestReconfigure(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	a, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c2 := cfg
	c2.Timeout = time.Second
	if err := a.Reconfigure(c2); err != nil || a.config().Timeout != time.Second {
		t.Fatalf("Reconfigure of Timeout: %v, %v", err, a.config().Timeout)
	}
	c3 := c2
	c3.Password = "secret"
	c3.KeyPrefix = "x:"
	err = a.Reconfigure(c3)
	if err == nil || !strings.Contains(err.Error(), "Password") || !strings.Contains(err.Error(), "KeyPrefix") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Reconfigure of Password and KeyPrefix: %v; want an error naming both, without the password", err)
	}
}

// killSubscribers kills the connections subscribed to a channel. CLIENT
// KILL TYPE pubsub would not do: RESP3 clients, as rueidis's are, count
// as normal clients whatever they subscribe to.
func killSubscribers(t *testing.T, srv *redistest.Server) {
	t.Helper()
	n := 0
	list := srv.Do(t, "CLIENT", "LIST")
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " sub=1 ") {
			continue
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
		srv.Do(t, "CLIENT", "KILL", "ID", id)
		n++
	}
	if n == 0 {
		t.Fatal("no subscribed connection to kill")
	}
}
