package cache_test

import (
	"testing"
	"time"

	"gateway/cache"
)

// TestTargetedCacheControl runs RFC 9213 targeted fields against a
// counting origin: a valid CDN-Cache-Control (or the route's own field)
// decides storage and freshness in place of Cache-Control, an invalid one
// is ignored, and the fields reach the client unless the route strips
// them.
func TestTargetedCacheControl(t *testing.T) {
	const miss600 = "fwd=uri-miss; fwd-status=200; ttl=600; stored"
	const miss60 = "fwd=uri-miss; fwd-status=200; ttl=60; stored"
	both := func(cdn string, more ...string) resp {
		return resp{hdr: append([]string{"Cache-Control", "max-age=60", "CDN-Cache-Control", cdn}, more...), body: "v{n}"}
	}
	own := gwConfig{route: cache.RouteOptions{TargetedField: "gateway-cache-control"}}
	fresh600 := []step{
		{count: 1, body: "v1", cs: miss600, check: all(hdrIs("Cache-Control", "max-age=60"), hdrIs("CDN-Cache-Control", "max-age=600"))},
		{advance: 599 * time.Second, count: 1, body: "v1", cs: "hit; ttl=1", age: "599",
			check: all(hdrIs("Cache-Control", "max-age=60"), hdrIs("CDN-Cache-Control", "max-age=600"))},
		{advance: 2 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=600; stored"},
	}
	ccUsed := []step{
		{count: 1, body: "v1", cs: miss60},
		{advance: 59 * time.Second, count: 1, body: "v1", cs: "hit; ttl=1", age: "59"},
		{advance: 2 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=60; stored"},
	}
	runRows(t, []row{
		{name: "CDN-Cache-Control's max-age is this cache's", origin: both("max-age=600"), steps: fresh600},
		{name: "CDN-Cache-Control no-store: not stored though Cache-Control allows",
			origin: both("no-store"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200"},
				{count: 2, body: "v2", cs: "*"},
			}},
		{name: "CDN-Cache-Control stores what Cache-Control forbids",
			origin: resp{hdr: []string{"Cache-Control", "private, no-store", "CDN-Cache-Control", "max-age=60"}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: miss60, check: hdrIs("Cache-Control", "private, no-store")},
				{count: 1, body: "v1", cs: "hit; ttl=60", age: "0"},
			}},
		// RFC 9213 2.1: the targeted field replaces Expires too.
		{name: "CDN-Cache-Control without max-age: Expires not used",
			origin: resp{hdr: []string{"Expires", "@+600s", "CDN-Cache-Control", "must-revalidate", "Etag", `"e"`}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=0; stored"},
				{count: 2, body: "v1", cs: "fwd=stale; fwd-status=304; ttl=0; stored", age: "0"},
			}},
		{name: "invalid CDN-Cache-Control (quoted max-age): Cache-Control used", origin: both(`max-age="600"`), steps: ccUsed},
		{name: "invalid CDN-Cache-Control (syntax): Cache-Control used", origin: both("max-age=600,"), steps: ccUsed},
		{name: "invalid CDN-Cache-Control (upper case): Cache-Control used", origin: both("Max-Age=600"), steps: ccUsed},
		{name: "the route's field wins", cfg: own,
			origin: both("max-age=60", "Gateway-Cache-Control", "max-age=600"),
			steps: []step{
				{count: 1, body: "v1", cs: miss600, check: hdrIs("Gateway-Cache-Control", "max-age=600")},
				{advance: 599 * time.Second, count: 1, body: "v1", cs: "hit; ttl=1", age: "599"},
			}},
		{name: "the route's field invalid: CDN-Cache-Control", cfg: own,
			origin: both("max-age=600", "Gateway-Cache-Control", "max-age=1.5"), steps: fresh600},
		{name: "another route's field is not ours",
			origin: resp{hdr: []string{"Cache-Control", "max-age=60", "Gateway-Cache-Control", "max-age=600"}, body: "v{n}"},
			steps:  ccUsed},
		{name: "stripped downstream on a miss, a hit and a pass",
			cfg:    gwConfig{route: cache.RouteOptions{TargetedField: "Gateway-Cache-Control", StripTargeted: true}},
			origin: both("max-age=600", "Gateway-Cache-Control", "max-age=300"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=300; stored",
					check: all(hdrIs("Cache-Control", "max-age=60"), hdrIs("CDN-Cache-Control", ""), hdrIs("Gateway-Cache-Control", ""))},
				{advance: 10 * time.Second, count: 1, body: "v1", cs: "hit; ttl=290", age: "10",
					check: all(hdrIs("Cache-Control", "max-age=60"), hdrIs("CDN-Cache-Control", ""), hdrIs("Gateway-Cache-Control", ""))},
				{label: "stale: refetched", advance: 291 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=300; stored",
					check: all(hdrIs("CDN-Cache-Control", ""), hdrIs("Gateway-Cache-Control", ""))},
				{method: "POST", count: 3, body: "v3", cs: "fwd=method; fwd-status=200",
					check: all(hdrIs("CDN-Cache-Control", ""), hdrIs("Gateway-Cache-Control", ""))},
			}},
	})
}

func TestTargetedFieldValidated(t *testing.T) {
	c, err := cache.New(cache.Options{MaxSize: 1 << 20, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, f := range []string{"Bad Field", "cache-control", "X:Y", "é"} {
		if _, err := c.Route(cache.RouteOptions{Name: "r", TargetedField: f}); err == nil {
			t.Errorf("TargetedField %q accepted", f)
		}
	}
	if _, err := c.Route(cache.RouteOptions{Name: "r", TargetedField: "gateway-cache-control", StripTargeted: true}); err != nil {
		t.Error(err)
	}
}
