package cache_test

import (
	"slices"
	"testing"

	"gateway/cache"
)

// TestTopKeysRequests: real requests through the gateway show up in
// TopKeys, hits and misses apart, once watched; before that, and after
// the watch stops, nothing is counted.
func TestTopKeysRequests(t *testing.T) {
	g := newGateway(t, gwConfig{})
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "x"}))
	host := g.host()

	g.get(t, "/early") // unwatched: neither its miss nor its hit counts
	g.get(t, "/early")
	if hits, misses := g.cache.TopKeys("r", 10); hits != nil || misses != nil {
		t.Fatalf("unwatched: %v, %v; want none", hits, misses)
	}

	g.cache.WatchKeys(true)
	for range 3 {
		g.get(t, "/a?q=1") // one miss, two hits
	}
	g.get(t, "/b") // one miss, one hit
	g.get(t, "/b")
	g.get(t, "/early")                                // a hit
	g.get(t, "/nostore", "Cache-Control", "no-store") // a pass: not counted

	hits, misses := g.cache.TopKeys("r", 10)
	wantHits := []cache.KeyCount{{Key: host + "/a?q=1", Count: 2}, {Key: host + "/b", Count: 1}, {Key: host + "/early", Count: 1}}
	wantMisses := []cache.KeyCount{{Key: host + "/a?q=1", Count: 1}, {Key: host + "/b", Count: 1}}
	if !slices.Equal(hits, wantHits) {
		t.Errorf("hits %v; want %v", hits, wantHits)
	}
	if !slices.Equal(misses, wantMisses) {
		t.Errorf("misses %v; want %v", misses, wantMisses)
	}
	if h, _ := g.cache.TopKeys("r", 1); len(h) != 1 || h[0] != wantHits[0] {
		t.Errorf("TopKeys(r, 1) hits %v; want %v", h, wantHits[:1])
	}
	if h, m := g.cache.TopKeys("other", 10); h != nil || m != nil {
		t.Errorf("unknown route: %v, %v; want none", h, m)
	}

	g.cache.WatchKeys(false)
	g.get(t, "/a?q=1")
	if hits, misses := g.cache.TopKeys("r", 10); hits != nil || misses != nil {
		t.Fatalf("after the watch: %v, %v; want none", hits, misses)
	}
	g.cache.WatchKeys(true)
	g.get(t, "/b")
	if hits, _ := g.cache.TopKeys("r", 10); !slices.Equal(hits, []cache.KeyCount{{Key: host + "/b", Count: 1}}) {
		t.Fatalf("a new watch: hits %v; want only its own", hits)
	}
}
