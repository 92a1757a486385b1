package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gateway/cache"
	"gateway/compress"
	"gateway/config"
	"gateway/proxy"
	"gateway/proxy/balance"
)

// fakeBackend is a Backend of fixed figures whose switches the tests
// flip: readiness, whether a cache and compression exist, whether a
// reload fails.
type fakeBackend struct {
	ready      atomic.Bool
	noCache    atomic.Bool
	noCompress atomic.Bool
	reloadErr  atomic.Pointer[error]
	storeFails atomic.Bool // PurgeCache fails as a store would
	shared     atomic.Bool // there is a shared cache tier, and it is down
	noJobs     atomic.Bool // no route is async
	gen        atomic.Uint64

	mu     sync.Mutex
	purges []cache.Purge // what PurgeCache was asked
}

var _ Backend = (*fakeBackend)(nil)

// fakeStart is when the fake process started.
var fakeStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newFakeBackend() *fakeBackend {
	b := &fakeBackend{}
	b.ready.Store(true)
	b.gen.Store(1)
	return b
}

func (b *fakeBackend) Status(context.Context) Status {
	return Status{Version: "v1.2.3", StartedAt: fakeStart, Generation: b.gen.Load(), LoadedAt: fakeStart.Add(time.Minute)}
}

func (b *fakeBackend) Ready(context.Context) (bool, any) {
	r := b.ready.Load()
	return r, map[string]bool{"app": r}
}

func (b *fakeBackend) Config(context.Context) any {
	return &config.Config{Admin: config.Admin{Address: "127.0.0.1:9090", Token: "REDACTED"}}
}

func (b *fakeBackend) Upstreams(context.Context) map[string]UpstreamStatus {
	return map[string]UpstreamStatus{
		"app": {
			Healthy:  true,
			Targets:  []balance.TargetStatus{{URL: "http://10.0.0.1:80", Healthy: true, ActiveOK: true, Breaker: balance.BreakerClosed}},
			Breakers: []balance.BreakerState{{Target: "http://10.0.0.1:80", State: balance.BreakerClosed}},
		},
		"plain": {Healthy: false, Targets: []balance.TargetStatus{{URL: "http://10.0.0.2:80"}}},
	}
}

func (b *fakeBackend) CacheStats(context.Context) (CacheStats, error) {
	if b.noCache.Load() {
		return CacheStats{}, ErrDisabled
	}
	var st CacheStats
	st.Hits, st.Misses, st.Entries, st.MaxBytes = 3, 1, 2, 1<<20
	st.Routes = map[string]cache.RouteStats{"cached": {Hits: 3, Misses: 1, HitRatio: 0.75}}
	if b.shared.Load() {
		st.Shared = &SharedStats{State: "down", Breaker: "open", Errors: map[string]uint64{"connection": 4}}
	}
	return st, nil
}

func (b *fakeBackend) PurgeCache(_ context.Context, p cache.Purge) (cache.PurgeResult, error) {
	if b.noCache.Load() {
		return cache.PurgeResult{}, ErrDisabled
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.purges = append(b.purges, p)
	if b.storeFails.Load() {
		return cache.PurgeResult{Purged: 1}, fmt.Errorf("%w: second tier: connection refused", cache.ErrStore)
	}
	if p.Tag == "none" {
		return cache.PurgeResult{Reason: "nothing stored is tagged none"}, nil
	}
	if b.shared.Load() {
		return cache.PurgeResult{Purged: 2, Scope: cache.ScopeLocal, ScopeReason: "shared tier unreachable"}, nil
	}
	return cache.PurgeResult{Purged: 2}, nil
}

func (b *fakeBackend) lastPurge() cache.Purge {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.purges) == 0 {
		return cache.Purge{}
	}
	return b.purges[len(b.purges)-1]
}

func (b *fakeBackend) CompressStats(context.Context) (map[string]map[string]compress.CodingStats, error) {
	if b.noCompress.Load() {
		return nil, ErrDisabled
	}
	return map[string]map[string]compress.CodingStats{
		"a": {"gzip": {Responses: 1, BytesIn: 100, BytesOut: 40}},
		"b": {"gzip": {Responses: 2, BytesIn: 200, BytesOut: 50}, "br": {Responses: 1, BytesIn: 10, BytesOut: 5}},
	}, nil
}

func (b *fakeBackend) WebSocketStats(context.Context) map[string]proxy.WSStats {
	return map[string]proxy.WSStats{"ws": {Open: 2, Upgraded: 5}, "api": {Rejected: 1}}
}

func (b *fakeBackend) Certificates(context.Context) (Certificates, error) {
	days := 61.5
	return Certificates{Obtained: 1, Failures: 2, Certificates: []Certificate{{
		Listener: ":443", Name: "a.example", NotAfter: time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), DaysLeft: &days,
		Serial: "3f1a", Issuer: "R11", Failures: 2, LastError: "CA unreachable",
	}}}, nil
}

func (b *fakeBackend) JobStats(context.Context) (JobStats, error) {
	if b.noJobs.Load() {
		return JobStats{}, ErrDisabled
	}
	return JobStats{Queued: 2, Running: 1, Succeeded: 5, Attempts: 7, Retries: 1,
		Wait: JobTiming{Count: 6, SumSeconds: 1.5, P50Seconds: 0.1, P99Seconds: 1}}, nil
}

func (b *fakeBackend) ExplainCache(_ context.Context, rawURL string, hdr http.Header) (cache.Explanation, error) {
	if strings.Contains(rawURL, "/nowhere") {
		return cache.Explanation{}, fmt.Errorf("%w: no route takes %s", ErrNotFound, rawURL)
	}
	ex := cache.Explanation{Route: "api", Key: "http example.com /a", Status: 200, DirectivesFrom: "Cache-Control", Directives: "max-age=60", Stored: true, Lifetime: 60, Grace: 600}
	if hdr.Get("Authorization") != "" {
		ex = cache.Explanation{Route: "api", Key: "http example.com /a", Status: 200, DirectivesFrom: "Cache-Control", Directives: "max-age=60", Reason: "authorization", Because: "the request carried Authorization", Advice: "send public or s-maxage"}
	}
	return ex, nil
}

func (b *fakeBackend) Health(context.Context) map[string]string {
	if b.shared.Load() {
		return map[string]string{"cache.shared": "down"}
	}
	return nil
}

func (b *fakeBackend) Reload(context.Context) (ReloadResult, error) {
	if p := b.reloadErr.Load(); p != nil {
		return ReloadResult{}, *p
	}
	return ReloadResult{Summary: "reloaded test.yaml: 1 routes, 1 upstreams", Generation: b.gen.Add(1)}, nil
}

// failReloads makes Reload fail with two problems.
func (b *fakeBackend) failReloads() {
	err := errors.New("test.yaml:3: routes[0].upstream: no upstream named x\ntest.yaml:9: cache.max_size: want a size")
	b.reloadErr.Store(&err)
}
