package cache_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gateway/cache"
)

// sharedTier stands for a store several processes share, as Redis is: a
// MemoryStore whose objects say they were read from it.
type sharedTier struct{ *cache.MemoryStore }

func (s sharedTier) Get(ctx context.Context, primary string) (*cache.Object, error) {
	o, err := s.MemoryStore.Get(ctx, primary)
	if o == nil {
		return o, err
	}
	c := *o
	c.Shared = true
	return &c, err
}

// fakeCoord is a cache.Coordinator in memory: one lease per key, waiters
// woken when it is released.
type fakeCoord struct {
	fail    error
	settle  func() // called on Release before waking the waiters
	mu      sync.Mutex
	held    map[string]chan struct{}
	leases  atomic.Int64
	waits   atomic.Int64
	waiting notifier
}

func newFakeCoord() *fakeCoord { return &fakeCoord{held: make(map[string]chan struct{})} }

func (c *fakeCoord) Lease(ctx context.Context, primary string) (cache.Lease, error) {
	if c.fail != nil {
		return nil, c.fail
	}
	c.mu.Lock()
	ch, ok := c.held[primary]
	if !ok {
		ch = make(chan struct{})
		c.held[primary] = ch
		c.mu.Unlock()
		c.leases.Add(1)
		return &fakeLease{c: c, key: primary, ch: ch}, nil
	}
	c.mu.Unlock()
	c.waits.Add(1)
	c.waiting.notify()
	select {
	case <-ch:
	case <-ctx.Done():
	}
	return nil, nil
}

type fakeLease struct {
	c    *fakeCoord
	key  string
	ch   chan struct{}
	once sync.Once
}

func (l *fakeLease) Release() {
	l.once.Do(func() {
		if l.c.settle != nil {
			l.c.settle()
		}
		l.c.mu.Lock()
		delete(l.c.held, l.key)
		l.c.mu.Unlock()
		close(l.ch)
	})
}

// twoProcesses builds two gateways that share a second tier and a
// coordinator, as two replicas share Redis.
func twoProcesses(t *testing.T, co *fakeCoord, route cache.RouteOptions) (*gateway, *gateway, sharedTier) {
	t.Helper()
	shared, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Close() })
	tier := sharedTier{shared}
	if co != nil {
		// A Release takes effect after the holder's writes landed.
		co.settle = shared.Wait
	}
	build := func() *gateway {
		first, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = first.Close() })
		opts := cache.Options{Store: cache.NewTieredStore(first, tier, nil)}
		if co != nil {
			opts.Coordinator = co
		}
		return newGateway(t, gwConfig{cache: opts, route: route})
	}
	g1, g2 := build(), build()
	// The second gateway's goroutine check runs while the first still
	// serves: the first's connections must be gone by then.
	t.Cleanup(func() {
		g1.client.CloseIdleConnections()
		g1.srv.CloseClientConnections()
		g1.origin.CloseClientConnections()
	})
	return g1, g2, tier
}

func TestSharedFillCoalescesAcrossProcesses(t *testing.T) {
	co := newFakeCoord()
	g1, g2, _ := twoProcesses(t, co, cache.RouteOptions{})
	gate := newGate(t)
	g1.origin.handle(g1.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "one", gate: gate}))
	g2.origin.handle(g2.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "two"}))

	first := make(chan result, 1)
	go func() { first <- g1.get(t, "/a", "Host", "site.test") }()
	g1.origin.waitCount(t, "/a", 1)
	second := make(chan result, 1)
	go func() { second <- g2.get(t, "/a", "Host", "site.test") }()
	await(t, "the second process waiting for the lease", &co.waiting, func() bool { return co.waits.Load() == 1 })
	gate.release()

	r1, r2 := <-first, <-second
	if r1.status != http.StatusOK || r1.body != "one" {
		t.Fatalf("holder: %d %q", r1.status, r1.body)
	}
	if r2.status != http.StatusOK || r2.body != "one" {
		t.Fatalf("waiter: %d %q; want the holder's fill", r2.status, r2.body)
	}
	if d, _ := statusParam(r2.header, "detail"); d != "shared" {
		t.Errorf("waiter's Cache-Status %q; want a hit with detail=shared", r2.header.Get("Cache-Status"))
	}
	if n := g2.origin.count("/a"); n != 0 {
		t.Errorf("the waiting process went to its origin %d times; want 0", n)
	}
	if n := co.leases.Load(); n != 1 {
		t.Errorf("%d leases taken; want 1", n)
	}
	// The next request on the second process is a hit in its own memory.
	r3 := g2.get(t, "/a", "Host", "site.test")
	if _, hit := statusParam(r3.header, "hit"); !hit || r3.body != "one" {
		t.Errorf("third request: %q %q; want a hit", r3.header.Get("Cache-Status"), r3.body)
	}
	if d, _ := statusParam(r3.header, "detail"); d == "shared" {
		t.Errorf("third request read the shared tier again: %q", r3.header.Get("Cache-Status"))
	}
}

func TestSharedLeaseErrorFetchesAtOnce(t *testing.T) {
	co := newFakeCoord()
	co.fail = errors.New("shared tier down")
	g1, _, _ := twoProcesses(t, co, cache.RouteOptions{})
	g1.origin.handle(g1.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "x"}))
	if r := g1.get(t, "/a"); r.status != http.StatusOK || r.body != "x" {
		t.Fatalf("%d %q", r.status, r.body)
	}
	if r := g1.get(t, "/a"); r.body != "x" {
		t.Fatalf("second: %q", r.body)
	} else if _, hit := statusParam(r.header, "hit"); !hit {
		t.Errorf("second request not a hit: %q", r.header.Get("Cache-Status"))
	}
}

func TestSharedPassReachesWaiters(t *testing.T) {
	co := newFakeCoord()
	g1, g2, _ := twoProcesses(t, co, cache.RouteOptions{HitForPass: 30e9})
	gate := newGate(t)
	g1.origin.handle(g1.origin.static(resp{hdr: []string{"Cache-Control", "no-store"}, body: "one", gate: gate}))
	g2.origin.handle(g2.origin.static(resp{hdr: []string{"Cache-Control", "no-store"}, body: "two"}))

	first := make(chan result, 1)
	go func() { first <- g1.get(t, "/p", "Host", "site.test") }()
	g1.origin.waitCount(t, "/p", 1)
	second := make(chan result, 1)
	go func() { second <- g2.get(t, "/p", "Host", "site.test") }()
	await(t, "the second process waiting for the lease", &co.waiting, func() bool { return co.waits.Load() == 1 })
	gate.release()
	if r := <-first; r.body != "one" {
		t.Fatalf("holder: %q", r.body)
	}
	if r := <-second; r.body != "two" {
		t.Fatalf("waiter: %q; want its own origin's answer to an uncacheable key", r.body)
	}
	// The holder remembered the key as a pass in the shared tier before
	// it let the lease go, even though no request of its own process
	// waited on its flight: the waiter found it and went without a lease.
	if n := co.leases.Load(); n != 1 {
		t.Errorf("%d leases taken; want 1 (the waiter found the pass, and went without one)", n)
	}
}

func TestPurgeDuringFillIsNotStored(t *testing.T) {
	g := newGateway(t, gwConfig{})
	gate := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "old {n}", gate: gate}))
	first := make(chan result, 1)
	go func() { first <- g.get(t, "/a") }()
	g.origin.waitCount(t, "/a", 1)
	g.purge(t, "all", "1")
	gate.release()
	if r := <-first; r.body != "old 1" {
		t.Fatalf("first: %q", r.body)
	}
	if r := g.get(t, "/a"); r.body != "old 2" {
		t.Errorf("after a purge made during the fill: %q from %q; want a miss (old 2)", r.body, r.header.Get("Cache-Status"))
	}
}

func TestPurgeScope(t *testing.T) {
	plain := newGateway(t, gwConfig{})
	_, res, _ := purgeResult(t, plain)
	if res.Scope != "" {
		t.Errorf("scope without a shared tier: %q", res.Scope)
	}
	g1, _, _ := twoProcesses(t, nil, cache.RouteOptions{})
	if _, res, _ := purgeResult(t, g1); res.Scope != cache.ScopeCluster {
		t.Errorf("scope with a shared tier: %q", res.Scope)
	}
	first, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Close() })
	down := newGateway(t, gwConfig{cache: cache.Options{Store: cache.NewTieredStore(first, failingStore{}, nil)}})
	n, res, err := purgeResult(t, down)
	if err != nil || res.Scope != cache.ScopeLocal || res.ScopeReason == "" || n != res.Purged {
		t.Errorf("scope with the shared tier down: %+v, %v; want local with a reason and no error", res, err)
	}
}

func purgeResult(t *testing.T, g *gateway) (int, cache.PurgeResult, error) {
	res, err := g.cache.PurgeExplained(t.Context(), cache.Purge{All: true})
	return res.Purged, res, err
}

// failingStore fails every call, as a shared tier that is down does.
type failingStore struct{ cache.Store }

var errDown = errors.New("down")

func (failingStore) Get(context.Context, string) (*cache.Object, error) { return nil, errDown }
func (failingStore) PurgeAll(context.Context, bool) (int, error)        { return 0, errDown }
func (failingStore) Close() error                                       { return nil }

func TestFormsTravel(t *testing.T) {
	rec := cache.Record{
		Status:   200,
		Header:   http.Header{"Content-Type": {"text/plain"}, "Etag": {`"v1"`}},
		Body:     []byte("hello hello hello"),
		Lifetime: 60e9,
		Compress: cache.CompressEncode,
	}
	e := cache.NewEntry(rec)
	if fs := e.Forms(); len(fs) != 0 {
		t.Fatalf("new entry has forms %v", fs)
	}
	f := cache.Form{Coding: "br", Body: []byte("encoded"), ETag: `"v1-br"`}
	if !e.AddForm(f) {
		t.Fatal("AddForm refused a br form")
	}
	if e.AddForm(cache.Form{Coding: "br", Body: []byte("other"), ETag: `"x"`}) {
		t.Error("AddForm replaced a form already there")
	}
	if e.AddForm(cache.Form{Coding: "deflate", Body: []byte("x"), ETag: `"x"`}) {
		t.Error("AddForm took a coding the cache does not keep")
	}
	if e.AddForm(cache.Form{Coding: "gzip", Body: []byte("x")}) {
		t.Error("AddForm took a form without the ETag its entry has")
	}
	fs := e.Forms()
	if len(fs) != 1 || fs[0].Coding != "br" || string(fs[0].Body) != "encoded" || fs[0].ETag != `"v1-br"` {
		t.Errorf("Forms = %+v", fs)
	}
	rec.Compress = cache.CompressOff
	if cache.NewEntry(rec).AddForm(f) {
		t.Error("AddForm took a form for an entry that is served as stored")
	}
}

func TestApplyPurgeFirstTierOnly(t *testing.T) {
	first, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	second, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ts := cache.NewTieredStore(first, second, nil)
	t.Cleanup(func() { _ = ts.Close() })
	c, err := cache.New(cache.Options{MaxSize: 1 << 20, Store: ts, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := t.Context()
	const k = "http\x00a.test\x00/x\x00\x00"
	e := cache.NewEntry(cache.Record{Status: 200, Header: http.Header{}, Body: []byte("x"), ResponseTime: epoch, Lifetime: 60e9, Tags: []string{"t1"}})
	if ok, err := ts.Set(ctx, k, e); !ok || err != nil {
		t.Fatalf("Set = %v, %v", ok, err)
	}
	for _, kind := range []cache.PurgeKind{cache.PurgeKindTag, cache.PurgeKindURL, cache.PurgeKindPrefix, cache.PurgeKindAll} {
		if ok, err := first.Set(ctx, k, e); !ok || err != nil {
			t.Fatalf("Set = %v, %v", ok, err)
		}
		value := map[cache.PurgeKind]string{cache.PurgeKindTag: "t1", cache.PurgeKindURL: cache.URLPart(k), cache.PurgeKindPrefix: "http\x00a.test"}[kind]
		n, err := c.ApplyPurge(ctx, kind, value, false)
		if n != 1 || err != nil {
			t.Errorf("ApplyPurge(%v) = %d, %v; want 1", kind, n, err)
		}
		if o, _ := first.Get(ctx, k); o != nil {
			t.Errorf("ApplyPurge(%v) left the first tier's entry", kind)
		}
		if o, _ := second.Get(ctx, k); o == nil {
			t.Errorf("ApplyPurge(%v) reached the second tier, which the purge's maker purged itself", kind)
		}
	}
}

// A purge by path learns the URLs from this process's memory: when it
// holds none, nothing goes to the shared tier, and the answer must not
// say that the purge reached every replica.
func TestPurgeByPathScope(t *testing.T) {
	g1, _, _ := twoProcesses(t, nil, cache.RouteOptions{})
	for _, p := range []cache.Purge{{Path: "/only-elsewhere"}, {Prefix: "/only-elsewhere/"}} {
		res, err := g1.cache.PurgeExplained(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Scope != cache.ScopeLocal || res.ScopeReason == "" || strings.Contains(res.Reason, "every replica") {
			t.Errorf("purge %+v with nothing of it in memory: %+v; want scope local with a reason", p, res)
		}
	}
}

// A purge of one URL, made in another process (each POST that
// invalidates a URL makes one), keeps in-flight fills of that URL from
// storing, and no others: otherwise a steady stream of invalidations
// anywhere in the cluster would stop every process from caching.
func TestApplyPurgeOfAnotherURLKeepsFills(t *testing.T) {
	g := newGateway(t, gwConfig{})
	gate := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "v{n}", gate: gate}))
	first := make(chan result, 1)
	go func() { first <- g.get(t, "/a") }()
	g.origin.waitCount(t, "/a", 1)
	other := "http\x00" + g.host() + "\x00/b\x00"
	if _, err := g.cache.ApplyPurge(t.Context(), cache.PurgeKindURL, other, false); err != nil {
		t.Fatal(err)
	}
	gate.release()
	if r := <-first; r.body != "v1" {
		t.Fatalf("first: %q", r.body)
	}
	if r := g.get(t, "/a"); r.body != "v1" {
		t.Errorf("after a purge of another URL during the fill: %q from %q; want the fill stored (v1)", r.body, r.header.Get("Cache-Status"))
	}
}

// A purge of the URL itself still keeps the fill from storing.
func TestApplyPurgeOfTheURLDropsFill(t *testing.T) {
	g := newGateway(t, gwConfig{})
	gate := newGate(t)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "v{n}", gate: gate}))
	first := make(chan result, 1)
	go func() { first <- g.get(t, "/a") }()
	g.origin.waitCount(t, "/a", 1)
	if _, err := g.cache.ApplyPurge(t.Context(), cache.PurgeKindURL, "http\x00"+g.host()+"\x00/a\x00", false); err != nil {
		t.Fatal(err)
	}
	gate.release()
	<-first
	if r := g.get(t, "/a"); r.body != "v2" {
		t.Errorf("after a purge of the URL during its fill: %q from %q; want a miss (v2)", r.body, r.header.Get("Cache-Status"))
	}
}

// backgroundTier is a shared tier that takes invalidations to do later,
// as the Redis tier queues them.
type backgroundTier struct {
	sharedTier
	mu   sync.Mutex
	urls []string
}

func (b *backgroundTier) InvalidateURL(url string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.urls = append(b.urls, url)
}

func TestInvalidationHandedToSharedTier(t *testing.T) {
	first, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	second, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	bt := &backgroundTier{sharedTier: sharedTier{second}}
	ts := cache.NewTieredStore(first, bt, nil)
	t.Cleanup(func() { _ = ts.Close() })
	g := newGateway(t, gwConfig{cache: cache.Options{Store: ts}})
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "v{n}"}))
	if r := g.get(t, "/a"); r.body != "v1" {
		t.Fatalf("first: %q", r.body)
	}
	key := "http\x00" + g.host() + "\x00/a\x00"
	if o, _ := first.Get(t.Context(), key); o == nil {
		t.Fatalf("no entry under %q in this process's memory", key)
	}
	if r := g.do(t, http.MethodPost, "/a"); r.status != http.StatusOK {
		t.Fatalf("POST: %d", r.status)
	}
	bt.mu.Lock()
	urls := bt.urls
	bt.mu.Unlock()
	if len(urls) != 1 || cache.PathPart(urls[0]) != "/a\x00" {
		t.Errorf("the shared tier was handed %q; want the one URL /a", urls)
	}
	if o, _ := first.Get(t.Context(), key); o != nil {
		t.Error("the POST left the entry in this process's memory")
	}
}
