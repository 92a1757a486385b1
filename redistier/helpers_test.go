package redistier

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"gateway/cache"
	"gateway/internal/leakcheck"
	"gateway/internal/redistest"
)

// startRedis starts a Redis server for one test; every test gets its
// own through this one function.
func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t)
}

// testConfig is a Config with bounds short enough for tests yet loose
// enough for -race on a loaded machine.
func testConfig(addrs ...string) Config {
	return Config{
		Addrs:           addrs,
		Timeout:         500 * time.Millisecond,
		WriteTimeout:    time.Second,
		DialTimeout:     time.Second,
		PurgeBound:      400 * time.Millisecond,
		LeaseTTL:        2 * time.Second,
		BreakerFailures: 3,
		BreakerCoolDown: 200 * time.Millisecond,
	}
}

// purgeEvent is one call of Options.OnPurge.
type purgeEvent struct {
	kind  cache.PurgeKind
	value string
	soft  bool
}

type testTier struct {
	*Tier
	applied chan purgeEvent
}

// openTier opens a tier, waits for it to be up and synced unless
// wait is false, and closes it when the test ends.
func openTier(t *testing.T, cfg Config, wait bool) *testTier {
	t.Helper()
	tt := &testTier{applied: make(chan purgeEvent, 100)}
	tier, err := Open(cfg, Options{OnPurge: func(k cache.PurgeKind, v string, soft bool) {
		tt.applied <- purgeEvent{k, v, soft}
	}})
	if err != nil {
		t.Fatal(err)
	}
	tt.Tier = tier
	t.Cleanup(func() { _ = tier.Close() })
	if wait {
		waitFor(t, "tier up and synced", 10*time.Second, func() bool {
			return tier.TierStats().State == "up" && tier.purges.isSynced()
		})
	}
	return tt
}

// leaks fails t when the tier's or the client's goroutines outlive it.
func leaks(t *testing.T) { leakcheck.Check(t, "gateway/redistier.", "github.com/redis/rueidis.") }

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flush waits until every write queued so far has run.
func (t *Tier) flush(tb testing.TB) {
	tb.Helper()
	var chans []chan struct{}
	for _, q := range t.queues {
		ch := make(chan struct{})
		chans = append(chans, ch)
		q <- writeOp{after: func() { close(ch) }}
	}
	for _, ch := range chans {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			tb.Fatal("queued writes did not run")
		}
	}
}

// primary builds a primary key: scheme, host, path, query, then the rest.
func primary(host, path string) string {
	return "https\x00" + host + "\x00" + path + "\x00\x00GET"
}

// newEntry builds an entry as the cache stores one.
func newEntry(body string, vary []string, varyKey string, tags []string, reqTime time.Time) *cache.Entry {
	h := http.Header{
		"Content-Type":  {"text/plain"},
		"Cache-Control": {"max-age=60"},
		"Etag":          {`"e1"`},
	}
	var vk []byte
	if varyKey != "" {
		vk = []byte(varyKey)
	}
	e := cache.NewEntry(cache.Record{
		Status:       200,
		Header:       h,
		Body:         []byte(body),
		RequestTime:  reqTime.UTC(),
		ResponseTime: reqTime.Add(time.Millisecond).UTC(),
		Lifetime:     60 * time.Second,
		InitialAge:   0,
		Vary:         vary,
		VaryKey:      vk,
		Tags:         tags,
		Compress:     cache.CompressEncode,
	})
	e.Linger = 30 * time.Second
	return e
}

// sameEntry reports how got differs from want, "" when it does not.
func sameEntry(got, want *cache.Entry) string {
	var b strings.Builder
	check := func(ok bool, what string) {
		if !ok {
			b.WriteString(what + " differs; ")
		}
	}
	g, w := got.Record, want.Record
	check(g.Status == w.Status, "status")
	check(headerString(g.Header) == headerString(w.Header), "header")
	check(bytes.Equal(g.Body, w.Body), "body")
	check(g.RequestTime.Equal(w.RequestTime) && g.ResponseTime.Equal(w.ResponseTime), "times")
	check(g.Lifetime == w.Lifetime && g.InitialAge == w.InitialAge && g.Heuristic == w.Heuristic, "freshness")
	check(equalStrings(g.Vary, w.Vary) && bytes.Equal(g.VaryKey, w.VaryKey), "vary")
	check(equalStrings(g.Tags, w.Tags), "tags")
	check(g.Compress == w.Compress, "compress")
	check(got.Linger == want.Linger, "linger")
	gf, wf := got.Forms(), want.Forms()
	check(len(gf) == len(wf), "forms")
	for i := range min(len(gf), len(wf)) {
		check(gf[i].Coding == wf[i].Coding && gf[i].ETag == wf[i].ETag && bytes.Equal(gf[i].Body, wf[i].Body), "form "+gf[i].Coding)
	}
	return b.String()
}

func headerString(h http.Header) string {
	var b bytes.Buffer
	_ = h.Write(&b)
	return b.String()
}

// get is Get with a background context, failing t on error.
func get(t *testing.T, tier *Tier, primary string) *cache.Object {
	t.Helper()
	o, err := tier.Get(context.Background(), primary)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return o
}

// set is Set then flush, failing t unless stored.
func set(t *testing.T, tier *Tier, primary string, e *cache.Entry) {
	t.Helper()
	ok, err := tier.Set(context.Background(), primary, e)
	if err != nil || !ok {
		t.Fatalf("Set: %v, %v", ok, err)
	}
	tier.flush(t)
}

// redisWithPassword starts a Redis server that requires password.
func redisWithPassword(t *testing.T, password string) *redistest.Server {
	t.Helper()
	return redistest.Start(t, "--requirepass", password)
}
