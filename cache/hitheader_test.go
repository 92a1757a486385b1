package cache_test

import (
	"testing"
	"time"
)

// TestHitHeaderFollowsClock: the Age and Cache-Status of hits, which hits
// share while they would be the same, change with the entry's age and
// with the kind of hit, never lagging behind either.
func TestHitHeaderFollowsClock(t *testing.T) {
	g := newGateway(t, gwConfig{})
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "x"}))
	g.get(t, "/a") // the miss stores it

	for _, step := range []struct {
		advance     time.Duration
		hdr         []string
		age, status string
	}{
		{0, nil, "0", "gateway; hit; ttl=60"},
		{0, nil, "0", "gateway; hit; ttl=60"},
		{500 * time.Millisecond, nil, "0", "gateway; hit; ttl=59"},
		{500 * time.Millisecond, nil, "1", "gateway; hit; ttl=59"},
		{time.Second, nil, "2", "gateway; hit; ttl=58"},
		{59 * time.Second, []string{"Cache-Control", "max-stale=10"}, "61", `gateway; hit; ttl=-1; detail="max-stale"`},
		{0, []string{"Cache-Control", "max-stale=10"}, "61", `gateway; hit; ttl=-1; detail="max-stale"`},
	} {
		g.clk.Advance(step.advance)
		r := g.get(t, "/a", step.hdr...)
		if age, st := r.header.Get("Age"), r.header.Get("Cache-Status"); age != step.age || st != step.status {
			t.Errorf("at %v: Age %q, Cache-Status %q; want %q, %q", g.clk.Now().Sub(time.Unix(0, 0)), age, st, step.age, step.status)
		}
	}
}
