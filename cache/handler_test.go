package cache_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"gateway/cache"
	"gateway/proxy"
)

// Integration tests of the cache as the gateway runs it: real sockets,
// the real proxy, an injected clock. The harness is in helpers_test.go.

// cc is a static origin response with the given Cache-Control and body
// "v{n}" (the path's request number), plus more header pairs.
func cc(v string, more ...string) resp {
	return resp{hdr: append([]string{"Cache-Control", v}, more...), body: "v{n}"}
}

func TestStorability(t *testing.T) {
	const miss60 = "fwd=uri-miss; fwd-status=200; ttl=60; stored"
	const pass = "fwd=uri-miss; fwd-status=200"
	auth := []string{"Authorization", "Bearer secret"}
	runRows(t, []row{
		{
			name:   "max-age: stored, hits age with the clock, stale after",
			origin: cc("max-age=60"),
			steps: []step{
				{count: 1, body: "v1", cs: miss60},
				{advance: 10 * time.Second, count: 1, body: "v1", cs: "hit; ttl=50", age: "10"},
				{advance: 49 * time.Second, count: 1, body: "v1", cs: "hit; ttl=1", age: "59"},
				{advance: 2 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=60; stored"},
				{count: 2, body: "v2", cs: "hit; ttl=60", age: "0"},
			},
		},
		{
			// Fresh means lifetime > age (RFC 9111 4.2): at age == max-age
			// the response is stale, and without stale-while-revalidate
			// it must not be served without going forward.
			name:   "max-age: at age == max-age the response is stale",
			origin: cc("max-age=60"),
			steps: []step{
				{count: 1, body: "v1", cs: miss60},
				{advance: 60 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=60; stored"},
			},
		},
		{
			// RFC 9111 4.2.3: an Age from an upstream cache counts.
			name:   "Age received from upstream is part of the age",
			origin: cc("max-age=60", "Age", "30"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=30; stored", age: "30"},
				{advance: 10 * time.Second, count: 1, body: "v1", cs: "hit; ttl=20", age: "40"},
				{advance: 21 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=30; stored", age: "30"},
			},
		},
		{
			// RFC 9111 4.2.3: apparent_age = response_time - date_value.
			name:   "a Date in the past is part of the age",
			origin: cc("max-age=60", "Date", "@-45s"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=15; stored"},
				{advance: 10 * time.Second, count: 1, body: "v1", cs: "hit; ttl=5", age: "55"},
				{advance: 6 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=15; stored"},
			},
		},
		{
			name:   "s-maxage overrides max-age and forbids serving stale",
			origin: cc("max-age=300, s-maxage=30"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=30; stored"},
				{advance: 20 * time.Second, count: 1, body: "v1", cs: "hit; ttl=10", age: "20"},
				{label: "max-stale does not apply", advance: 11 * time.Second, hdr: []string{"Cache-Control", "max-stale=600"},
					count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=30; stored"},
			},
		},
		{
			name:   "no-store response is not stored",
			origin: cc("no-store, max-age=60"),
			steps: []step{
				{count: 1, body: "v1", cs: pass},
				{count: 2, body: "v2", cs: pass},
			},
		},
		{
			name:   "no-store request: its response is not stored",
			origin: cc("max-age=60"),
			steps: []step{
				{hdr: []string{"Cache-Control", "no-store"}, count: 1, body: "v1", cs: pass},
				{count: 2, body: "v2", cs: miss60},
				{count: 2, body: "v2", cs: "hit; ttl=60", age: "0"},
			},
		},
		{
			name:   "no-cache response: stored, revalidated before every use (304)",
			origin: cc("no-cache", "ETag", `"e1"`),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=0; stored"},
				{count: 2, body: "v1", cs: "fwd; fwd-status=304; ttl=0; stored", age: "*",
					check: sawHdr("/r", "If-None-Match", `"e1"`)},
				{advance: time.Second, count: 3, body: "v1", cs: "fwd; fwd-status=304; ttl=0; stored", age: "*",
					check: sawHdr("/r", "If-None-Match", `"e1"`)},
			},
		},
		{
			name:   "no-cache with max-age: still revalidated while fresh",
			origin: cc("no-cache, max-age=600", "ETag", `"e1"`),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=600; stored"},
				{advance: time.Second, count: 2, body: "v1", cs: "fwd; fwd-status=304; ttl=600; stored", age: "*",
					check: sawHdr("/r", "If-None-Match", `"e1"`)},
			},
		},
		{
			name:   "private is never stored",
			origin: cc("private, max-age=60"),
			steps: []step{
				{count: 1, body: "v1", cs: pass},
				{count: 2, body: "v2", cs: pass},
			},
		},
		{
			name:   "public with Last-Modified: heuristic freshness",
			origin: cc("public", "Last-Modified", httpDate(-10*time.Hour)),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=3600; stored"},
				{advance: 30 * time.Minute, count: 1, body: "v1", cs: "hit; ttl=1800", age: "1800"},
			},
		},
		{
			name:   "must-revalidate: stale goes to origin, even with max-stale and stale windows",
			cfg:    gwConfig{route: cache.RouteOptions{StaleIfError: time.Hour, StaleWhileRevalidate: time.Hour}},
			origin: cc("max-age=10, must-revalidate"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
				{advance: 11 * time.Second, hdr: []string{"Cache-Control", "max-stale=600"},
					count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=10; stored"},
				{label: "origin fails: the error, not the stale response",
					origin: &resp{status: http.StatusServiceUnavailable, body: "down"}, advance: 11 * time.Second,
					count: 3, status: http.StatusServiceUnavailable, body: "down", cs: "fwd=stale; fwd-status=503"},
			},
		},
		{
			name:   "proxy-revalidate: stale goes to origin, even with max-stale and stale windows",
			cfg:    gwConfig{route: cache.RouteOptions{StaleIfError: time.Hour, StaleWhileRevalidate: time.Hour}},
			origin: cc("max-age=10, proxy-revalidate"),
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
				{advance: 11 * time.Second, hdr: []string{"Cache-Control", "max-stale"},
					count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=10; stored"},
				{origin: &resp{status: http.StatusInternalServerError, body: "down"}, advance: 11 * time.Second,
					count: 3, status: http.StatusInternalServerError, body: "down", cs: "fwd=stale; fwd-status=500"},
			},
		},
		{
			name:   "Expires minus Date is the lifetime",
			origin: resp{hdr: []string{"Expires", "@+60s"}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: miss60},
				{advance: 59 * time.Second, count: 1, body: "v1", cs: "hit; ttl=1", age: "59"},
				{advance: 2 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=60; stored"},
			},
		},
		{
			name:   "max-age overrides Expires",
			origin: resp{hdr: []string{"Expires", "@+600s", "Cache-Control", "max-age=60"}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: miss60},
				{advance: 61 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=60; stored"},
			},
		},
		{
			// RFC 9111 5.3: an invalid Expires ("0") means already expired.
			name:   "invalid Expires (0) is already expired",
			origin: resp{hdr: []string{"Expires", "0"}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=0; stored"},
				{count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=0; stored"},
			},
		},
		{
			name:   "heuristic freshness: 10% of Date - Last-Modified",
			origin: resp{hdr: []string{"Last-Modified", httpDate(-10 * time.Hour)}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=3600; stored"},
				{advance: 59 * time.Minute, count: 1, body: "v1", cs: "hit; ttl=60", age: "3540"},
				{label: "stale: revalidated with If-Modified-Since", advance: 2 * time.Minute,
					count: 2, body: "v1", cs: "fwd=stale; fwd-status=304; ttl; stored", age: "*",
					check: sawHdr("/r", "If-Modified-Since", httpDate(-10*time.Hour))},
			},
		},
		{
			name:   "heuristic freshness applies to 404",
			origin: resp{status: 404, hdr: []string{"Last-Modified", httpDate(-10 * time.Hour)}, body: "gone {n}"},
			steps: []step{
				{count: 1, status: 404, body: "gone 1", cs: "fwd=uri-miss; fwd-status=404; ttl=3600; stored"},
				{advance: time.Minute, count: 1, status: 404, body: "gone 1", cs: "hit; ttl=3540", age: "60"},
			},
		},
		{
			name:   "no heuristic freshness for a 302: not stored",
			origin: resp{status: 302, hdr: []string{"Location", "/elsewhere", "Last-Modified", httpDate(-10 * time.Hour)}, body: "moved {n}"},
			steps: []step{
				{count: 1, status: 302, body: "moved 1", cs: "fwd=uri-miss; fwd-status=302"},
				{count: 2, status: 302, body: "moved 2", cs: "fwd=uri-miss; fwd-status=302"},
			},
		},
		{
			name:   "302 with max-age is stored",
			origin: resp{status: 302, hdr: []string{"Location", "/elsewhere", "Cache-Control", "max-age=60"}, body: "moved {n}"},
			steps: []step{
				{count: 1, status: 302, body: "moved 1", cs: "fwd=uri-miss; fwd-status=302; ttl=60; stored"},
				{count: 1, status: 302, body: "moved 1", cs: "hit; ttl=60", age: "0", check: hdrIs("Location", "/elsewhere")},
			},
		},
		{
			name:   "Set-Cookie is not stored by default",
			origin: cc("max-age=60", "Set-Cookie", "sid=abc"),
			steps: []step{
				{count: 1, body: "v1", cs: pass},
				{count: 2, body: "v2", cs: pass},
			},
		},
		{
			name:   "Set-Cookie is stored with AllowSetCookie",
			cfg:    gwConfig{route: cache.RouteOptions{Policy: cache.StoreOptions{AllowSetCookie: true}}},
			origin: cc("max-age=60", "Set-Cookie", "sid=abc"),
			steps: []step{
				{count: 1, body: "v1", cs: miss60},
				{count: 1, body: "v1", cs: "hit; ttl=60", age: "0", check: hdrIs("Set-Cookie", "sid=abc")},
			},
		},
		{
			name:   "Authorization: not stored with max-age only",
			origin: cc("max-age=60"),
			steps: []step{
				{hdr: auth, count: 1, body: "v1", cs: pass},
				{hdr: auth, count: 2, body: "v2", cs: pass},
			},
		},
		{
			name:   "Authorization: stored with public",
			origin: cc("public, max-age=60"),
			steps: []step{
				{hdr: auth, count: 1, body: "v1", cs: miss60},
				{hdr: auth, count: 1, body: "v1", cs: "hit; ttl=60", age: "0"},
			},
		},
		{
			name:   "Authorization: stored with s-maxage",
			origin: cc("s-maxage=60"),
			steps: []step{
				{hdr: auth, count: 1, body: "v1", cs: miss60},
				{hdr: auth, count: 1, body: "v1", cs: "hit; ttl=60", age: "0"},
			},
		},
		{
			name:   "Authorization: stored with must-revalidate",
			origin: cc("max-age=60, must-revalidate"),
			steps: []step{
				{hdr: auth, count: 1, body: "v1", cs: miss60},
				{hdr: auth, count: 1, body: "v1", cs: "hit; ttl=60", age: "0"},
			},
		},
		{
			name:   "POST is not cached",
			origin: cc("max-age=60"),
			steps: []step{
				{method: http.MethodPost, count: 1, body: "v1", cs: "fwd=method; fwd-status=200"},
				{method: http.MethodPost, count: 2, body: "v2", cs: "fwd=method; fwd-status=200"},
			},
		},
		{
			name:   "HEAD is answered from a stored GET",
			origin: cc("max-age=60"),
			steps: []step{
				{count: 1, body: "v1", cs: miss60},
				{method: http.MethodHead, advance: 5 * time.Second, count: 1, body: "", cs: "hit; ttl=55", age: "5",
					check: hdrIs("Content-Length", "2")},
			},
		},
		{
			name:   "HEAD miss fills the cache for a later GET",
			origin: cc("max-age=60"),
			steps: []step{
				{method: http.MethodHead, count: 1, body: "", cs: miss60,
					check: func(t *testing.T, g *gateway, _ result) {
						if m := g.origin.last(t, "/r").method; m != http.MethodGet {
							t.Errorf("origin saw %s; want GET (the cache fetches the body)", m)
						}
					}},
				{count: 1, body: "v1", cs: "hit; ttl=60", age: "0"},
			},
		},
		{
			name:   "404 with max-age is cached",
			origin: resp{status: 404, hdr: []string{"Cache-Control", "max-age=60"}, body: "nf {n}"},
			steps: []step{
				{count: 1, status: 404, body: "nf 1", cs: "fwd=uri-miss; fwd-status=404; ttl=60; stored"},
				{advance: 3 * time.Second, count: 1, status: 404, body: "nf 1", cs: "hit; ttl=57", age: "3"},
			},
		},
		{
			// RFC 9111 5.2.2.3: a cache that understands the status
			// ignores no-store when must-understand is present.
			name:   "must-understand with an understood status overrides no-store",
			origin: cc("max-age=60, must-understand, no-store"),
			steps: []step{
				{count: 1, body: "v1", cs: miss60},
				{count: 1, body: "v1", cs: "hit; ttl=60", age: "0"},
			},
		},
		{
			name:   "must-understand with a status the cache does not know: not stored",
			origin: resp{status: 299, hdr: []string{"Cache-Control", "max-age=60, must-understand, no-store"}, body: "v{n}"},
			steps: []step{
				{count: 1, status: 299, body: "v1", cs: "fwd=uri-miss; fwd-status=299"},
				{count: 2, status: 299, body: "v2", cs: "fwd=uri-miss; fwd-status=299"},
			},
		},
		{
			name:   "204 with max-age is cached",
			origin: resp{status: 204, hdr: []string{"Cache-Control", "max-age=60"}},
			steps: []step{
				{count: 1, status: 204, body: "", cs: "fwd=uri-miss; fwd-status=204; ttl=60; stored"},
				{count: 1, status: 204, body: "", cs: "hit; ttl=60", age: "0"},
			},
		},
		{
			name:   "500 without explicit freshness is not cached",
			origin: resp{status: 500, hdr: []string{"Last-Modified", httpDate(-10 * time.Hour), "ETag", `"e"`}, body: "err {n}"},
			steps: []step{
				{count: 1, status: 500, body: "err 1", cs: "fwd=uri-miss; fwd-status=500"},
				{count: 2, status: 500, body: "err 2", cs: "fwd=uri-miss; fwd-status=500"},
			},
		},
	})
}

func TestRequestDirectives(t *testing.T) {
	origin := cc("max-age=100", "ETag", `"e1"`)
	revalidated := "fwd=request; fwd-status=304; ttl=100; stored"
	inm := sawHdr("/r", "If-None-Match", `"e1"`)
	first := step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=100; stored"}
	ccHdr := func(v string) []string { return []string{"Cache-Control", v} }
	runRows(t, []row{
		{
			name: "max-age: an older entry is revalidated (fwd=request)", origin: origin,
			steps: []step{first,
				{advance: 30 * time.Second, hdr: ccHdr("max-age=20"), count: 2, body: "v1", cs: revalidated, age: "*", check: inm},
				{label: "refreshed", count: 2, body: "v1", cs: "hit; ttl=100", age: "0"},
			},
		},
		{
			name: "max-age: a young enough entry is a hit", origin: origin,
			steps: []step{first,
				{advance: 10 * time.Second, hdr: ccHdr("max-age=20"), count: 1, body: "v1", cs: "hit; ttl=90", age: "10"},
			},
		},
		{
			name: "max-age=0 forces a revalidation", origin: origin,
			steps: []step{first,
				{advance: time.Second, hdr: ccHdr("max-age=0"), count: 2, body: "v1", cs: revalidated, age: "*", check: inm},
			},
		},
		{
			name: "min-fresh: too little freshness left is revalidated", origin: origin,
			steps: []step{first,
				{advance: 50 * time.Second, hdr: ccHdr("min-fresh=60"), count: 2, body: "v1", cs: revalidated, age: "*", check: inm},
			},
		},
		{
			name: "min-fresh: enough freshness left is a hit", origin: origin,
			steps: []step{first,
				{advance: 50 * time.Second, hdr: ccHdr("min-fresh=40"), count: 1, body: "v1", cs: "hit; ttl=50", age: "50"},
			},
		},
		{
			name: "max-stale=N: within N the stale entry is served", origin: origin,
			steps: []step{first,
				{advance: 110 * time.Second, hdr: ccHdr("max-stale=15"), count: 1, body: "v1", cs: "hit; ttl=-10", age: "110"},
			},
		},
		{
			name: "max-stale=N: beyond N it is revalidated", origin: origin,
			steps: []step{first,
				{advance: 110 * time.Second, hdr: ccHdr("max-stale=5"), count: 2, body: "v1",
					cs: "fwd=stale; fwd-status=304; ttl=100; stored", age: "*", check: inm},
			},
		},
		{
			name: "max-stale without a value accepts any staleness", origin: origin,
			steps: []step{first,
				{advance: 1000 * time.Second, hdr: ccHdr("max-stale"), count: 1, body: "v1", cs: "hit; ttl=-900", age: "1000"},
			},
		},
		{
			name: "no-cache request: a fresh entry is revalidated", origin: origin,
			steps: []step{first,
				{advance: time.Second, hdr: ccHdr("no-cache"), count: 2, body: "v1", cs: revalidated, age: "*", check: inm},
				{count: 2, body: "v1", cs: "hit; ttl=100", age: "0"},
			},
		},
		{
			name: "no-store request: not stored, later requests miss", origin: origin,
			steps: []step{
				{hdr: ccHdr("no-store"), count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200"},
				{hdr: ccHdr("no-store"), count: 2, body: "v2", cs: "fwd=uri-miss; fwd-status=200"},
				{count: 3, body: "v3", cs: "fwd=uri-miss; fwd-status=200; ttl=100; stored"},
			},
		},
		{
			// RFC 9111 5.2.1.7: nothing to answer with and the client
			// forbids going forward: 504. The request did not go
			// forward, so Cache-Status must not say it did (RFC 9211 2.2).
			name: "only-if-cached with nothing stored: 504", origin: origin,
			steps: []step{
				{hdr: ccHdr("only-if-cached"), count: 0, status: http.StatusGatewayTimeout, body: "*", cs: ""},
			},
		},
		{
			name: "only-if-cached with a fresh entry: hit", origin: origin,
			steps: []step{first,
				{advance: 5 * time.Second, hdr: ccHdr("only-if-cached"), count: 1, body: "v1", cs: "hit; ttl=95", age: "5"},
			},
		},
		{
			name: "only-if-cached with a stale entry: 504", origin: origin,
			steps: []step{first,
				{advance: 200 * time.Second, hdr: ccHdr("only-if-cached"), count: 1, status: http.StatusGatewayTimeout, body: "*", cs: ""},
			},
		},
		{
			name: "only-if-cached with max-stale: the stale entry", origin: origin,
			steps: []step{first,
				{advance: 200 * time.Second, hdr: ccHdr("only-if-cached, max-stale"), count: 1, body: "v1", cs: "hit; ttl=-100", age: "200"},
			},
		},
	})
}

func TestVary(t *testing.T) {
	ae := func(v string) []string { return []string{"Accept-Encoding", v} }
	origin := resp{hdr: []string{"Cache-Control", "max-age=60", "Vary", "Accept-Encoding"}, body: "{h:Accept-Encoding} {n}"}
	runRows(t, []row{
		{
			name: "one entry per variant", origin: origin,
			steps: []step{
				{hdr: ae("gzip"), count: 1, body: "gzip 1", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"},
				{hdr: ae("br"), count: 2, body: "br 2", cs: "fwd=vary-miss; fwd-status=200; ttl=60; stored"},
				{hdr: ae("gzip"), count: 2, body: "gzip 1", cs: "hit; ttl=60", age: "0"},
				{hdr: ae("br"), count: 2, body: "br 2", cs: "hit; ttl=60", age: "0"},
				{label: "absent is its own variant", count: 3, body: " 3", cs: "fwd=vary-miss; fwd-status=200; ttl=60; stored"},
			},
		},
		{
			name: "equivalent values share a variant", origin: origin,
			steps: []step{
				{hdr: ae("gzip, br"), count: 1, body: "gzip, br 1", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"},
				{hdr: ae("br,gzip"), count: 1, body: "gzip, br 1", cs: "hit; ttl=60", age: "0"},
				{hdr: ae("BR ,  GZIP"), count: 1, body: "gzip, br 1", cs: "hit; ttl=60", age: "0"},
				{hdr: ae("gzip"), count: 2, body: "gzip 2", cs: "fwd=vary-miss; fwd-status=200; ttl=60; stored"},
			},
		},
		{
			name:   "Vary: * is never stored",
			origin: resp{hdr: []string{"Cache-Control", "max-age=60", "Vary", "*"}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200"},
				{count: 2, body: "v2", cs: "fwd=uri-miss; fwd-status=200"},
			},
		},
		{
			name:   "Vary: *, Accept-Encoding is never stored",
			origin: resp{hdr: []string{"Cache-Control", "max-age=60", "Vary", "Accept-Encoding, *"}, body: "v{n}"},
			steps: []step{
				{hdr: ae("gzip"), count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200"},
				{hdr: ae("gzip"), count: 2, body: "v2", cs: "fwd=uri-miss; fwd-status=200"},
			},
		},
		{
			// The proxy rewrites X-Forwarded-For for an untrusted peer, so
			// the origin varied on a value the cache never saw: keyed on
			// the client's (forgeable) value, one client's response would
			// be served to every client sending the same.
			name:   "Vary on X-Forwarded-For is never stored",
			origin: resp{hdr: []string{"Cache-Control", "max-age=60", "Vary", "Accept-Encoding, x-forwarded-for"}, body: "v{n}"},
			steps: []step{
				{hdr: []string{"X-Forwarded-For", "203.0.113.9"}, count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200"},
				{hdr: []string{"X-Forwarded-For", "203.0.113.9"}, count: 2, body: "v2", cs: "fwd=uri-miss; fwd-status=200"},
			},
		},
		{
			name:   "Vary on another field the gateway sets is never stored",
			origin: resp{hdr: []string{"Cache-Control", "max-age=60", "Vary", "Via", "Vary", "X-Request-ID"}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200"},
				{count: 2, body: "v2", cs: "fwd=uri-miss; fwd-status=200"},
			},
		},
		{
			name: "a new Vary list replaces the old variants", origin: origin,
			steps: []step{
				{hdr: ae("gzip"), count: 1, body: "gzip 1", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"},
				{hdr: ae("br"), count: 2, body: "br 2", cs: "fwd=vary-miss; fwd-status=200; ttl=60; stored"},
				{label: "origin now varies on Accept-Language",
					origin:  &resp{hdr: []string{"Cache-Control", "max-age=60", "Vary", "Accept-Language"}, body: "{h:Accept-Language} {n}"},
					advance: 61 * time.Second, hdr: []string{"Accept-Encoding", "gzip", "Accept-Language", "en"},
					count: 3, body: "en 3", cs: "fwd=stale; fwd-status=200; ttl=60; stored"},
				{label: "the old br variant is gone", hdr: []string{"Accept-Encoding", "br", "Accept-Language", "de"},
					count: 4, body: "de 4", cs: "fwd=vary-miss; fwd-status=200; ttl=60; stored"},
				{label: "Accept-Encoding no longer matters", hdr: []string{"Accept-Encoding", "br", "Accept-Language", "en"},
					count: 4, body: "en 3", cs: "hit; ttl=60", age: "0"},
			},
		},
	})
}

func TestConditionals(t *testing.T) {
	lm := httpDate(-time.Hour)
	origin := resp{hdr: []string{"Cache-Control", "max-age=60", "ETag", `"e1"`, "Last-Modified", lm}, body: "0123456789"}
	first := step{count: 1, body: "0123456789", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"}
	runRows(t, []row{
		{
			name: "If-None-Match on a fresh entry: 304 from the cache", origin: origin,
			steps: []step{first,
				{advance: 2 * time.Second, hdr: []string{"If-None-Match", `"e1"`}, count: 1, status: 304, body: "", cs: "hit; ttl=58", age: "2",
					check: hdrIs("Etag", `"e1"`)},
				{hdr: []string{"If-None-Match", `"other"`}, count: 1, body: "0123456789", cs: "hit; ttl=58", age: "2"},
			},
		},
		{
			name: "If-Modified-Since on a fresh entry: 304 from the cache", origin: origin,
			steps: []step{first,
				{hdr: []string{"If-Modified-Since", httpDate(0)}, count: 1, status: 304, body: "", cs: "hit; ttl=60", age: "0"},
				{hdr: []string{"If-Modified-Since", httpDate(-2 * time.Hour)}, count: 1, body: "0123456789", cs: "hit; ttl=60", age: "0"},
			},
		},
		{
			name: "Range on a hit: 206 from the cache", origin: origin,
			steps: []step{first,
				{hdr: []string{"Range", "bytes=2-4"}, count: 1, status: 206, body: "234", cs: "hit; ttl=60", age: "0",
					check: all(hdrIs("Content-Range", "bytes 2-4/10"), hdrIs("Content-Length", "3"))},
			},
		},
		{
			name:   "Range on a hit of an encoded response: 206 with the range's length",
			origin: resp{hdr: []string{"Cache-Control", "max-age=60", "Content-Encoding", "gzip", "Vary", "Accept-Encoding"}, body: "0123456789"},
			steps: []step{
				{hdr: []string{"Accept-Encoding", "gzip"}, count: 1, body: "0123456789", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"},
				{hdr: []string{"Accept-Encoding", "gzip", "Range", "bytes=0-1"}, count: 1, status: 206, body: "01", cs: "hit; ttl=60", age: "0",
					check: all(hdrIs("Content-Range", "bytes 0-1/10"), hdrIs("Content-Length", "2"))},
			},
		},
		{
			name: "If-None-Match on a stale entry: revalidated, then 304 to the client", origin: origin,
			steps: []step{first,
				{advance: 61 * time.Second, hdr: []string{"If-None-Match", `"e1"`}, count: 2, status: 304, body: "",
					cs: "fwd=stale; fwd-status=304; ttl=60; stored", age: "*", check: sawHdr("/r", "If-None-Match", `"e1"`)},
			},
		},
		{
			name: "a conditional request with nothing stored goes to the origin as sent", origin: origin,
			steps: []step{
				{hdr: []string{"If-None-Match", `"e1"`}, count: 1, status: 304, body: "", cs: "fwd=uri-miss; fwd-status=304",
					check: sawHdr("/r", "If-None-Match", `"e1"`)},
			},
		},
	})
}

// TestRevalidation: a stale entry is revalidated with its validators, and
// the origin's 304 refreshes the stored headers and freshness without the
// body being fetched again.
func TestRevalidation(t *testing.T) {
	lm := httpDate(-time.Hour)
	handler := func(o *origin) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("ETag", `"e1"`)
			if r.Header.Get("If-None-Match") == `"e1"` {
				h.Set("Cache-Control", "max-age=100")
				h.Set("X-Version", "2")
				w.WriteHeader(http.StatusNotModified)
				return
			}
			h.Set("Cache-Control", "max-age=10")
			h.Set("Last-Modified", lm)
			h.Set("X-Version", "1")
			_, _ = w.Write([]byte("body " + strconv.Itoa(o.count(r.URL.Path))))
		}
	}
	runRows(t, []row{{
		name:    "304 refreshes headers and freshness",
		handler: handler,
		steps: []step{
			{count: 1, body: "body 1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored", check: hdrIs("X-Version", "1")},
			{advance: 5 * time.Second, count: 1, body: "body 1", cs: "hit; ttl=5", age: "5"},
			{label: "stale: conditional request, 304", advance: 6 * time.Second, count: 2, body: "body 1",
				cs: "fwd=stale; fwd-status=304; ttl=100; stored", age: "*",
				check: all(sawHdr("/r", "If-None-Match", `"e1"`), sawHdr("/r", "If-Modified-Since", lm),
					hdrIs("X-Version", "2"), hdrIs("Cache-Control", "max-age=100"))},
			{label: "fresh again", advance: 50 * time.Second, count: 2, body: "body 1", cs: "hit; ttl=50", age: "50",
				check: all(hdrIs("X-Version", "2"), hdrIs("Content-Length", "6"))},
		},
	}, {
		// A 304 updates the stored header (RFC 9111 4.3.4), but what it
		// updates it with must still be storable: a Set-Cookie in a 304
		// is one client's cookie, and must not be replayed to others.
		name:    "a Set-Cookie in a 304 is not stored",
		handler: notModifiedWith("Cache-Control", "max-age=10", "Set-Cookie", "sid=for-the-revalidating-client"),
		steps: []step{
			{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
			{label: "revalidated: 304 with Set-Cookie", advance: 11 * time.Second, count: 2, body: "v1", cs: "*", age: "*"},
			// The merged response carries Set-Cookie, so it is no longer
			// storable and is dropped, as a 200 with Set-Cookie would not
			// be stored: the next client goes to the origin and is not
			// handed the revalidating client's cookie.
			{label: "another client", count: 3, body: "v3", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored", check: hdrIs("Set-Cookie", "")},
		},
	}, {
		// After a 304 saying private, the stored response is private: a
		// shared cache must not serve it to other clients (RFC 9111 3,
		// 5.2.2.7).
		name:    "a 304 that makes the response private: not served from the cache",
		handler: notModifiedWith("Cache-Control", "private, max-age=60"),
		steps: []step{
			{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
			{label: "revalidated: 304 with private", advance: 11 * time.Second, count: 2, body: "v1", cs: "*", age: "*",
				check: hdrIs("Cache-Control", "private, max-age=60")},
			// The merged response is private and was dropped: the next
			// client gets a fresh response (the origin's 200 is public).
			{label: "another client", count: 3, body: "v3", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
		},
	}, {
		name:   "a 200 to the conditional request replaces the entry",
		origin: cc("max-age=10", "ETag", `"e1"`),
		steps: []step{
			{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
			{label: "new representation", origin: &resp{hdr: []string{"Cache-Control", "max-age=10", "ETag", `"e2"`}, body: "v{n}"},
				advance: 11 * time.Second, count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=10; stored",
				check: all(sawHdr("/r", "If-None-Match", `"e1"`), hdrIs("Etag", `"e2"`))},
			{count: 2, body: "v2", cs: "hit; ttl=10", age: "0", check: hdrIs("Etag", `"e2"`)},
		},
	}, {
		// RFC 9111 4.3.4: a 304 whose strong validator matches no stored
		// response updates nothing; the cache must get the full response.
		name: "a 304 for another representation: fetched in full",
		handler: func(o *origin) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				n := o.count(r.URL.Path)
				if n == 1 {
					o.reply(w, r, cc("max-age=10", "ETag", `"e1"`))
					return
				}
				w.Header().Set("Cache-Control", "max-age=10")
				w.Header().Set("ETag", `"e2"`)
				if r.Header.Get("If-None-Match") != "" {
					w.WriteHeader(http.StatusNotModified)
					return
				}
				_, _ = w.Write([]byte("v" + strconv.Itoa(n)))
			}
		},
		steps: []step{
			{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
			{advance: 11 * time.Second, count: 3, body: "v3", cs: "fwd; fwd-status=200; ttl=10; stored",
				check: all(hdrIs("Etag", `"e2"`), func(t *testing.T, g *gateway, _ result) {
					if inm := g.origin.last(t, "/r").header.Get("If-None-Match"); inm != "" {
						t.Errorf("the refetch was conditional (If-None-Match %q); want unconditional", inm)
					}
				})},
			{count: 3, body: "v3", cs: "hit; ttl=10", age: "0"},
		},
	}, {
		// The entry was validated by Last-Modified alone; a strong ETag
		// in the 304 names a representation the cache never stored, so
		// it selects nothing for update (RFC 9111 4.3.4).
		name: "a 304 with a strong ETag for an entry without one: fetched in full",
		handler: func(o *origin) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				n := o.count(r.URL.Path)
				if n == 1 {
					o.reply(w, r, cc("max-age=10", "Last-Modified", lm))
					return
				}
				w.Header().Set("Cache-Control", "max-age=10")
				w.Header().Set("ETag", `"e2"`)
				if r.Header.Get("If-Modified-Since") != "" {
					w.WriteHeader(http.StatusNotModified)
					return
				}
				_, _ = w.Write([]byte("v" + strconv.Itoa(n)))
			}
		},
		steps: []step{
			{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
			{advance: 11 * time.Second, count: 3, body: "v3", cs: "fwd; fwd-status=200; ttl=10; stored",
				check: all(hdrIs("Etag", `"e2"`), func(t *testing.T, g *gateway, _ result) {
					if ims := g.origin.last(t, "/r").header.Get("If-Modified-Since"); ims != "" {
						t.Errorf("the refetch was conditional (If-Modified-Since %q); want unconditional", ims)
					}
				})},
			{count: 3, body: "v3", cs: "hit; ttl=10", age: "0", check: hdrIs("Etag", `"e2"`)},
		},
	}, {
		// The 304 is not stored because of the revalidating request's
		// Authorization (RFC 9111 3.5), which says nothing about the
		// stored response: it stays for other clients.
		name:    "a 304 to a request with Authorization keeps the entry",
		handler: notModifiedWith("Cache-Control", "max-age=10"),
		steps: []step{
			{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=10; stored"},
			{label: "revalidated with Authorization", advance: 11 * time.Second, hdr: []string{"Authorization", "Bearer t"},
				count: 2, body: "v1", cs: "fwd=stale; fwd-status=304; ttl=10", age: "*"},
			{label: "another client", count: 3, body: "v1", cs: "fwd=stale; fwd-status=304; ttl=10; stored", age: "*"},
		},
	}})
}

// notModifiedWith is an origin whose response carries ETag "e1" and
// max-age=10, and that answers a request for "e1" with a 304 carrying
// the header fields kv (name, value pairs).
func notModifiedWith(kv ...string) func(o *origin) http.HandlerFunc {
	return func(o *origin) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("If-None-Match") == `"e1"` {
				w.Header().Set("ETag", `"e1"`)
				for i := 0; i+1 < len(kv); i += 2 {
					w.Header().Set(kv[i], kv[i+1])
				}
				w.WriteHeader(http.StatusNotModified)
				return
			}
			o.reply(w, r, cc("max-age=10", "ETag", `"e1"`))
		}
	}
}

func TestCacheKey(t *testing.T) {
	origin := cc("max-age=60")
	miss := "fwd=uri-miss; fwd-status=200; ttl=60; stored"
	hit := "hit; ttl=60"
	runRows(t, []row{
		{
			name: "query parameters are sorted", origin: origin,
			steps: []step{
				{path: "/r?a=1&b=2", count: 1, body: "v1", cs: miss},
				{path: "/r?b=2&a=1", count: 1, body: "v1", cs: hit, age: "0"},
				{path: "/r?a=2&b=1", count: 2, body: "v2", cs: miss},
			},
		},
		{
			name: "ignored parameters", origin: origin,
			cfg: gwConfig{route: cache.RouteOptions{Key: cache.KeyOptions{IgnoreParams: []string{"utm_*"}}}},
			steps: []step{
				{path: "/r?x=1&utm_source=a", count: 1, body: "v1", cs: miss},
				{path: "/r?utm_medium=b&x=1&utm_source=c", count: 1, body: "v1", cs: hit, age: "0"},
				{path: "/r?x=1", count: 1, body: "v1", cs: hit, age: "0"},
				{path: "/r?x=2&utm_source=a", count: 2, body: "v2", cs: miss},
			},
		},
		{
			name: "key headers make separate entries", origin: origin,
			cfg: gwConfig{route: cache.RouteOptions{Key: cache.KeyOptions{Headers: []string{"X-Tenant"}}}},
			steps: []step{
				{hdr: []string{"X-Tenant", "a"}, count: 1, body: "v1", cs: miss},
				{hdr: []string{"X-Tenant", "b"}, count: 2, body: "v2", cs: miss},
				{hdr: []string{"X-Tenant", "a"}, count: 2, body: "v1", cs: hit, age: "0"},
				{label: "absent", count: 3, body: "v3", cs: miss},
			},
		},
		{
			name: "key cookies make separate entries", origin: origin,
			cfg: gwConfig{route: cache.RouteOptions{Key: cache.KeyOptions{Cookies: []string{"sid"}}}},
			steps: []step{
				{hdr: []string{"Cookie", "sid=1; theme=dark"}, count: 1, body: "v1", cs: miss},
				{hdr: []string{"Cookie", "sid=2; theme=dark"}, count: 2, body: "v2", cs: miss},
				{hdr: []string{"Cookie", "theme=light; sid=1"}, count: 2, body: "v1", cs: hit, age: "0"},
			},
		},
		{
			// The proxy replaces the X-Forwarded-* of an untrusted peer, so
			// the origin builds the response from the gateway's values; the
			// client's values must neither split nor select entries.
			name: "X-Forwarded-Host and -Proto of an untrusted peer are not keyed", origin: origin,
			steps: []step{
				{hdr: []string{"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https"}, count: 1, body: "v1", cs: miss,
					check: func(t *testing.T, g *gateway, _ result) {
						sawHdr("/r", "X-Forwarded-Host", g.host())(t, g, result{})
						sawHdr("/r", "X-Forwarded-Proto", "http")(t, g, result{})
					}},
				{count: 1, body: "v1", cs: hit, age: "0"},
				{hdr: []string{"X-Forwarded-Host", "other.example"}, count: 1, body: "v1", cs: hit, age: "0"},
			},
		},
		{
			name: "X-Forwarded-Host and -Proto of a trusted peer are keyed", origin: origin,
			cfg: gwConfig{trusted: loopback, route: cache.RouteOptions{TrustedPeer: func(*http.Request) bool { return true }}},
			steps: []step{
				{hdr: []string{"X-Forwarded-Host", "a.example"}, count: 1, body: "v1", cs: miss,
					check: sawHdr("/r", "X-Forwarded-Host", "a.example")},
				{hdr: []string{"X-Forwarded-Host", "b.example"}, count: 2, body: "v2", cs: miss,
					check: sawHdr("/r", "X-Forwarded-Host", "b.example")},
				{hdr: []string{"X-Forwarded-Host", "a.example"}, count: 2, body: "v1", cs: hit, age: "0"},
				{hdr: []string{"X-Forwarded-Host", "a.example", "X-Forwarded-Proto", "https"}, count: 3, body: "v3", cs: miss,
					check: sawHdr("/r", "X-Forwarded-Proto", "https")},
			},
		},
	})
}

// TestCacheStatus: every response of a cached route carries exactly one
// Cache-Status member from this cache, describing what happened.
func TestCacheStatus(t *testing.T) {
	origin := resp{hdr: []string{"Cache-Control", "max-age=60", "ETag", `"e1"`, "Vary", "Accept-Encoding"}, body: "v{n}"}
	gz := []string{"Accept-Encoding", "gzip"}
	runRows(t, []row{{
		name: "the sequence", origin: origin,
		steps: []step{
			{label: "uri-miss", hdr: gz, count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"},
			{label: "hit", advance: 20 * time.Second, hdr: gz, count: 1, body: "v1", cs: "hit; ttl=40", age: "20"},
			{label: "vary-miss", hdr: []string{"Accept-Encoding", "br"}, count: 2, body: "v2", cs: "fwd=vary-miss; fwd-status=200; ttl=60; stored"},
			{label: "request", hdr: append([]string{"Cache-Control", "no-cache"}, gz...), count: 3, body: "v1",
				cs: "fwd=request; fwd-status=304; ttl=60; stored", age: "*"},
			{label: "stale", advance: 61 * time.Second, hdr: gz, count: 4, body: "v1", cs: "fwd=stale; fwd-status=304; ttl=60; stored", age: "*"},
			{label: "method", method: http.MethodPost, count: 5, body: "v5", cs: "fwd=method; fwd-status=200"},
			{label: "pass (no-store request)", hdr: append([]string{"Cache-Control", "no-store"}, gz...), count: 6, body: "v6", cs: "fwd=uri-miss; fwd-status=200"},
			{label: "upstream error", origin: &resp{status: 502, body: "bad"}, path: "/err", count: 1, status: 502, body: "bad", cs: "fwd=uri-miss; fwd-status=502"},
			{label: "bypass (WebSocket upgrade)", origin: &origin, path: "/ws", hdr: []string{"Connection", "Upgrade", "Upgrade", "websocket"},
				count: 1, body: "v1", cs: "fwd=bypass; fwd-status?=200"},
			{label: "upgrade response not stored", path: "/ws", count: 2, body: "v2", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"},
			{label: "only-if-cached, nothing stored: not forwarded", path: "/none", hdr: []string{"Cache-Control", "only-if-cached"},
				count: 0, status: 504, body: "*", cs: ""},
			{label: "origin down: the proxy's 502", before: func(t *testing.T, g *gateway) { g.origin.Close() },
				path: "/down", count: 0, status: 502, body: "*", cs: "fwd=uri-miss; fwd-status=502"},
		},
	}})
}

func TestInvalidation(t *testing.T) {
	// GETs are cacheable and vary on Accept-Encoding; other methods answer
	// with what the request's X-Reply-* fields ask for.
	handler := func(o *origin) http.HandlerFunc {
		get := o.static(resp{hdr: []string{"Cache-Control", "max-age=600", "Vary", "Accept-Encoding"}, body: "{h:Accept-Encoding} {n}"})
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				get(w, r)
				return
			}
			rs := resp{body: "done"}
			if s := r.Header.Get("X-Reply-Status"); s != "" {
				rs.status, _ = strconv.Atoi(s)
			}
			for _, name := range []string{"Location", "Content-Location"} {
				if v := r.Header.Get("X-Reply-" + name); v != "" {
					rs.hdr = append(rs.hdr, name, v)
				}
			}
			o.reply(w, r, rs)
		}
	}
	gz, br := []string{"Accept-Encoding", "gzip"}, []string{"Accept-Encoding", "br"}
	hit := "hit; ttl=600"
	stored := "fwd=uri-miss; fwd-status=200; ttl=600; stored"
	unsafe := func(method string) row {
		return row{
			name: "successful " + method + " invalidates every variant", handler: handler,
			steps: []step{
				{hdr: gz, count: 1, body: "gzip 1", cs: stored},
				{hdr: br, count: 2, body: "br 2", cs: "fwd=vary-miss; fwd-status=200; ttl=600; stored"},
				{hdr: gz, count: 2, body: "gzip 1", cs: hit, age: "0"},
				{method: method, count: 3, body: "done", cs: "fwd=method; fwd-status=200"},
				{hdr: gz, count: 4, body: "gzip 4", cs: stored},
				{hdr: br, count: 5, body: "br 5", cs: "fwd=vary-miss; fwd-status=200; ttl=600; stored"},
			},
		}
	}
	runRows(t, []row{
		unsafe(http.MethodPost),
		unsafe(http.MethodPut),
		unsafe(http.MethodDelete),
		unsafe(http.MethodPatch),
		{
			name: "OPTIONS is safe: nothing invalidated", handler: handler,
			steps: []step{
				{hdr: gz, count: 1, body: "gzip 1", cs: stored},
				{method: http.MethodOptions, count: 2, body: "done", cs: "fwd=method; fwd-status=200"},
				{hdr: gz, count: 2, body: "gzip 1", cs: hit, age: "0"},
			},
		},
		{
			name: "Location and Content-Location on the same host, not on another", handler: handler,
			steps: []step{
				{path: "/a", hdr: gz, count: 1, body: "gzip 1", cs: stored},
				{path: "/b?x=1", hdr: gz, count: 1, body: "gzip 1", cs: stored},
				{path: "/c", hdr: []string{"Host", "other.example", "Accept-Encoding", "gzip"}, count: 1, body: "gzip 1", cs: stored},
				{path: "/d", hdr: gz, count: 1, body: "gzip 1", cs: stored},
				{label: "POST with Location /a and Content-Location http://<same host>/b?x=1",
					method: http.MethodPost, path: "/items",
					hdr:   []string{"X-Reply-Status", "201", "X-Reply-Location", "/a", "X-Reply-Content-Location", "http://{host}/b?x=1"},
					count: 1, status: 201, body: "done", cs: "fwd=method; fwd-status=201"},
				{path: "/a", hdr: gz, count: 2, body: "gzip 2", cs: stored},
				{path: "/b?x=1", hdr: gz, count: 2, body: "gzip 2", cs: stored},
				{path: "/d", hdr: gz, count: 1, body: "gzip 1", cs: hit, age: "0"},
				{label: "POST with Location on another host",
					method: http.MethodPost, path: "/items",
					hdr:   []string{"X-Reply-Status", "201", "X-Reply-Location", "http://other.example/c", "X-Reply-Content-Location", "https://{host}/d"},
					count: 2, status: 201, body: "done", cs: "fwd=method; fwd-status=201"},
				{path: "/c", hdr: []string{"Host", "other.example", "Accept-Encoding", "gzip"}, count: 1, body: "gzip 1", cs: hit, age: "0"},
				{label: "another scheme is another origin", path: "/d", hdr: gz, count: 1, body: "gzip 1", cs: hit, age: "0"},
			},
		},
		{
			name: "the invalidated URL is keyed as GETs are (query order)", handler: handler,
			steps: []step{
				{path: "/q?a=1&b=2", hdr: gz, count: 1, body: "gzip 1", cs: stored},
				{method: http.MethodPost, path: "/q?b=2&a=1", count: 2, body: "done", cs: "fwd=method; fwd-status=200"},
				{path: "/q?a=1&b=2", hdr: gz, count: 3, body: "gzip 3", cs: stored},
			},
		},
		{
			name: "failed unsafe requests invalidate nothing", handler: handler,
			steps: []step{
				{hdr: gz, count: 1, body: "gzip 1", cs: stored},
				{method: http.MethodPost, hdr: []string{"X-Reply-Status", "400"}, count: 2, status: 400, body: "done", cs: "fwd=method; fwd-status=400"},
				{hdr: gz, count: 2, body: "gzip 1", cs: hit, age: "0"},
				{method: http.MethodDelete, hdr: []string{"X-Reply-Status", "500"}, count: 3, status: 500, body: "done", cs: "fwd=method; fwd-status=500"},
				{hdr: gz, count: 3, body: "gzip 1", cs: hit, age: "0"},
				{method: http.MethodPost, hdr: []string{"X-Reply-Status", "503", "X-Reply-Location", "/r"}, count: 4, status: 503, body: "done", cs: "fwd=method; fwd-status=503"},
				{hdr: gz, count: 4, body: "gzip 1", cs: hit, age: "0"},
			},
		},
	})
}

// TestHTTP2 runs a miss, a hit and a HEAD through a gateway speaking
// HTTP/2 over TLS.
func TestHTTP2(t *testing.T) {
	g := newGateway(t, gwConfig{h2: true})
	g.origin.handle(g.origin.static(cc("max-age=60", "ETag", `"e1"`)))
	r := g.get(t, "/r")
	if r.proto != 2 {
		t.Fatalf("protocol HTTP/%d; want HTTP/2", r.proto)
	}
	checkResult(t, g, "miss", "/r", r, step{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"})
	g.clk.Advance(7 * time.Second)
	r = g.get(t, "/r")
	checkResult(t, g, "hit", "/r", r, step{count: 1, body: "v1", cs: "hit; ttl=53", age: "7"})
	r = g.do(t, http.MethodHead, "/r")
	checkResult(t, g, "HEAD hit", "/r", r, step{count: 1, body: "", cs: "hit; ttl=53", age: "7"})
	r = g.get(t, "/r", "If-None-Match", `"e1"`)
	checkResult(t, g, "conditional hit", "/r", r, step{count: 1, status: 304, body: "", cs: "hit; ttl=53", age: "7"})
	// The key's scheme is https: a purge by the https URL finds it.
	if n := g.purge(t, "url", g.url("/r")); n != 1 {
		t.Errorf("purge %s: purged %d; want 1", g.url("/r"), n)
	}
	r = g.get(t, "/r")
	checkResult(t, g, "miss after purge", "/r", r, step{count: 2, body: "v2", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"})
}

// TestInvalidatorRoute: an unsafe request that goes through a route
// without a cache (Invalidator) invalidates what a cached route stored
// for its URL, as keyed by that route, and the Location it names; a
// failed one or a safe one invalidates nothing.
func TestInvalidatorRoute(t *testing.T) {
	checkGoroutines(t)
	g := &gateway{clk: newClock()}
	g.origin = newOrigin(t, g.clk)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			g.origin.reply(w, r, cc("max-age=600"))
			return
		}
		if loc := r.Header.Get("X-Reply-Location"); loc != "" {
			w.Header().Set("Location", loc)
		}
		status := http.StatusOK
		if s := r.Header.Get("X-Reply-Status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "done")
	})
	up, err := proxy.NewUpstream(proxy.UpstreamOptions{Name: "origin", Targets: []*url.URL{mustURL(t, g.origin.URL)}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	c, err := cache.New(cache.Options{MaxSize: 1 << 20, Now: g.clk.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	g.cache = c
	rt, err := c.Route(cache.RouteOptions{Name: "reads", Key: cache.KeyOptions{IgnoreParams: []string{"utm_*"}}})
	if err != nil {
		t.Fatal(err)
	}
	ph, err := proxy.New(proxy.Options{
		Routes: []proxy.RouteOptions{
			{Name: "reads", Path: "/api", Methods: []string{http.MethodGet, http.MethodHead}, Upstream: up, Middleware: []proxy.Middleware{rt.Wrap}},
			{Name: "writes", Path: "/api", Methods: []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}, Upstream: up,
				Middleware: []proxy.Middleware{c.Invalidator}},
		},
		Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	g.srv = httptest.NewServer(ph)
	t.Cleanup(g.srv.Close)
	g.client = g.srv.Client()

	stored := "fwd=uri-miss; fwd-status=200; ttl=600; stored"
	hit := "hit; ttl=600"
	noCache := func(t *testing.T, _ *gateway, r result) {
		t.Helper()
		if cs := r.header.Get("Cache-Status"); cs != "" {
			t.Errorf("%s: Cache-Status %q from a route without a cache", r.label, cs)
		}
	}
	steps := []step{
		{path: "/api/x", count: 1, body: "v1", cs: stored},
		{path: "/api/x?utm_source=a", count: 1, body: "v1", cs: hit, age: "0"},
		{label: "failed DELETE", method: http.MethodDelete, path: "/api/x", hdr: []string{"X-Reply-Status", "500"}, count: 2, status: 500, body: "done", cs: "*", check: noCache},
		{path: "/api/x", count: 2, body: "v1", cs: hit, age: "0"},
		{label: "PUT with a parameter the cached route ignores", method: http.MethodPut, path: "/api/x?utm_source=b", count: 3, body: "done", cs: "*", check: noCache},
		{path: "/api/x", count: 4, body: "v4", cs: stored},
		{label: "POST elsewhere, Location /api/x", method: http.MethodPost, path: "/api/items", hdr: []string{"X-Reply-Status", "201", "X-Reply-Location", "/api/x"},
			count: 1, status: 201, body: "done", cs: "*", check: noCache},
		{path: "/api/x", count: 5, body: "v5", cs: stored},
		{label: "HEAD on the cached route is safe", method: http.MethodHead, path: "/api/x", count: 5, body: "", cs: hit, age: "0"},
		{path: "/api/x", count: 5, body: "v5", cs: hit, age: "0"},
	}
	for i, s := range steps {
		label := "step " + strconv.Itoa(i+1)
		if s.label != "" {
			label += " (" + s.label + ")"
		}
		runStep(t, g, "", label, s)
		if t.Failed() {
			return
		}
	}
}
