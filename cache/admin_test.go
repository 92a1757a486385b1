package cache_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gateway/cache"
)

// hitOrMiss requests path and checks whether it was answered from the
// cache.
func hitOrMiss(t *testing.T, g *gateway, wantHit bool, path string, hdr ...string) result {
	t.Helper()
	r := g.get(t, path, hdr...)
	_, hit := statusParam(r.header, "hit")
	if hit != wantHit {
		t.Errorf("GET %s %v: Cache-Status %q; want hit=%v", path, hdr, r.header.Get("Cache-Status"), wantHit)
	}
	if r.status != http.StatusOK {
		t.Errorf("GET %s: status %d", path, r.status)
	}
	return r
}

func TestPurge(t *testing.T) {
	varying := resp{hdr: []string{"Cache-Control", "max-age=600", "Vary", "Accept-Encoding"}, body: "{h:Accept-Encoding} {n}"}
	gz, br := []string{"Accept-Encoding", "gzip"}, []string{"Accept-Encoding", "br"}

	t.Run("url: every variant", func(t *testing.T) {
		g := newGateway(t, gwConfig{})
		g.origin.handle(g.origin.static(varying))
		for _, p := range []string{"/p", "/p?x=1"} {
			hitOrMiss(t, g, false, p, gz...)
			hitOrMiss(t, g, false, p, br...)
		}
		if n := g.purge(t, "url", g.url("/p")); n != 2 {
			t.Errorf("purged %d; want 2", n)
		}
		hitOrMiss(t, g, false, "/p", gz...)
		hitOrMiss(t, g, false, "/p", br...)
		hitOrMiss(t, g, true, "/p?x=1", gz...)
		hitOrMiss(t, g, true, "/p?x=1", br...)
		if n := g.purge(t, "url", g.url("/p?x=1")); n != 2 {
			t.Errorf("purged %d; want 2", n)
		}
		hitOrMiss(t, g, false, "/p?x=1", gz...)
	})

	t.Run("prefix: only what is under it", func(t *testing.T) {
		g := newGateway(t, gwConfig{})
		g.origin.handle(g.origin.static(varying))
		paths := []string{"/a/1", "/a/2?q=1", "/a/x/y", "/b/1", "/ab", "/a"}
		for _, p := range paths {
			hitOrMiss(t, g, false, p, gz...)
		}
		if n := g.purge(t, "prefix", g.url("/a/")); n != 3 {
			t.Errorf("purged %d; want 3", n)
		}
		for _, p := range paths {
			hitOrMiss(t, g, !strings.HasPrefix(p, "/a/"), p, gz...)
		}
	})

	t.Run("tag", func(t *testing.T) {
		g := newGateway(t, gwConfig{})
		tagged := func(name, value string) resp {
			return resp{hdr: []string{"Cache-Control", "max-age=600", name, value}, body: "v{n}"}
		}
		set := map[string]resp{
			"/t1": tagged("Surrogate-Key", "a b"),
			"/t2": tagged("Cache-Tag", "ab, c"),
			"/t3": tagged("Surrogate-Key", "c  d"),
			"/t4": tagged("Cache-Tag", "b"),
		}
		g.origin.handle(func(w http.ResponseWriter, r *http.Request) { g.origin.reply(w, r, set[r.URL.Path]) })
		noTags := func(label string, r result) {
			t.Helper()
			for _, name := range []string{"Surrogate-Key", "Cache-Tag"} {
				if v, ok := r.header[name]; ok {
					t.Errorf("%s: %s %q sent to the client; want none", label, name, v)
				}
			}
		}
		for _, p := range []string{"/t1", "/t2", "/t3", "/t4"} {
			noTags("miss "+p, hitOrMiss(t, g, false, p))
			noTags("hit "+p, hitOrMiss(t, g, true, p))
		}
		if n := g.purge(t, "tag", "a"); n != 1 {
			t.Errorf("purge tag a: purged %d; want 1 (/t1; tag ab is another tag)", n)
		}
		hitOrMiss(t, g, false, "/t1")
		hitOrMiss(t, g, true, "/t2")
		if n := g.purge(t, "tag", "c"); n != 2 {
			t.Errorf("purge tag c: purged %d; want 2 (/t2 by Cache-Tag, /t3 by Surrogate-Key)", n)
		}
		hitOrMiss(t, g, false, "/t2")
		hitOrMiss(t, g, false, "/t3")
		hitOrMiss(t, g, true, "/t4")
		// Responses that are not stored do not show the tags either.
		for _, tc := range []struct {
			method string
			hdr    []string
		}{
			{http.MethodPost, nil},
			{http.MethodGet, []string{"Cache-Control", "no-store"}},
			{http.MethodGet, []string{"Connection", "Upgrade", "Upgrade", "websocket"}},
		} {
			noTags(tc.method+" "+strings.Join(tc.hdr, ": "), g.do(t, tc.method, "/t4", tc.hdr...))
		}
		hitOrMiss(t, g, false, "/t4") // the POST invalidated it
		// /t1 was stored again above, with its tags.
		if n := g.purge(t, "tag", "b"); n != 2 {
			t.Errorf("purge tag b: purged %d; want 2 (/t1, /t4)", n)
		}
		hitOrMiss(t, g, false, "/t4")
	})

	t.Run("all", func(t *testing.T) {
		g := newGateway(t, gwConfig{})
		g.origin.handle(g.origin.static(varying))
		for _, p := range []string{"/x", "/y", "/z/1"} {
			hitOrMiss(t, g, false, p, gz...)
			hitOrMiss(t, g, false, p, br...)
		}
		if n := g.purge(t, "all", "true"); n != 6 {
			t.Errorf("purged %d; want 6", n)
		}
		for _, p := range []string{"/x", "/y", "/z/1"} {
			hitOrMiss(t, g, false, p, gz...)
		}
		if st := g.stats(t, ""); st.Entries != 3 {
			t.Errorf("entries %d; want 3", st.Entries)
		}
	})

	t.Run("soft: stale-if-error still serves, a working origin refetches", func(t *testing.T) {
		g := newGateway(t, gwConfig{route: cache.RouteOptions{StaleIfError: time.Minute}})
		g.origin.handle(g.origin.static(cc("max-age=600")))
		hitOrMiss(t, g, false, "/s")
		hitOrMiss(t, g, false, "/o")
		if n := g.purge(t, "url", g.url("/s"), "soft", "true"); n != 1 {
			t.Errorf("soft purge: purged %d; want 1", n)
		}
		if n := g.purge(t, "prefix", g.url("/o"), "soft", "1"); n != 1 {
			t.Errorf("soft purge: purged %d; want 1", n)
		}
		g.clk.Advance(time.Second)
		g.origin.handle(g.origin.static(resp{status: 503, body: "down"}))
		r := g.get(t, "/s")
		checkResult(t, g, "origin failing", "/s", r, step{count: 2, body: "v1", cs: "fwd=stale; fwd-status=503; ttl=-1; detail=stale-if-error", age: "1"})
		g.origin.handle(g.origin.static(cc("max-age=600")))
		r = g.get(t, "/s")
		checkResult(t, g, "origin up", "/s", r, step{count: 3, body: "v3", cs: "fwd=stale; fwd-status=200; ttl=600; stored"})
		r = g.get(t, "/s")
		checkResult(t, g, "refetched", "/s", r, step{count: 3, body: "v3", cs: "hit; ttl=600", age: "0"})
		r = g.get(t, "/o")
		checkResult(t, g, "soft-purged by prefix", "/o", r, step{count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=600; stored"})
	})

	t.Run("bad requests: 400 with a reason", func(t *testing.T) {
		g := newGateway(t, gwConfig{})
		for _, q := range []string{
			"",
			"url=" + url.QueryEscape("/relative"),
			"url=" + url.QueryEscape("ftp://h/x"),
			"url=" + url.QueryEscape("http:///nohost"),
			"prefix=" + url.QueryEscape("http://h/a/?q=1"),
			"url=" + url.QueryEscape("http://h/x") + "&tag=a",
			"tag=",
			"all=false",
			"all=true&soft=maybe",
		} {
			code, body := g.adminDo(t, http.MethodPost, "/cache/purge?"+q)
			if code != http.StatusBadRequest || strings.TrimSpace(body) == "" {
				t.Errorf("POST /cache/purge?%s: %d %q; want 400 with a reason", q, code, body)
			}
		}
		if code, _ := g.adminDo(t, http.MethodGet, "/cache/purge?all=true"); code != http.StatusMethodNotAllowed {
			t.Errorf("GET /cache/purge: %d; want 405", code)
		}
	})
}

func TestStats(t *testing.T) {
	t.Run("counters", func(t *testing.T) {
		g := newGateway(t, gwConfig{})
		g.origin.handle(g.origin.static(cc("max-age=60", "ETag", `"e1"`)))

		// Every documented field is present.
		_, body := g.adminDo(t, http.MethodGet, "/cache/stats")
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"hits", "misses", "stale_hits", "revalidations", "coalesced", "stores",
			"admission_drops", "evictions", "purges", "bytes_used", "entries", "hit_ratio", "not_stored", "shares", "routes"} {
			if _, ok := raw[f]; !ok {
				t.Errorf("stats JSON has no %q: %s", f, body)
			}
		}
		if st := g.stats(t, ""); len(st.NotStored) != len(cache.NotStoredReasons()) {
			t.Errorf("fresh cache: not_stored %v; want every reason, at 0", st.NotStored)
		} else {
			for k, v := range st.NotStored {
				if v != 0 {
					t.Errorf("fresh cache: not_stored %s=%d; want 0", k, v)
				}
			}
			if st.NotStored = nil; !reflect.DeepEqual(st, cache.Stats{MaxBytes: st.MaxBytes}) {
				t.Errorf("fresh cache: %+v; want zeros", st)
			}
		}

		hitOrMiss(t, g, false, "/r")
		st := g.stats(t, "")
		if st.Misses != 1 || st.Stores != 1 || st.Entries != 1 || st.BytesUsed <= 0 || st.HitRatio != 0 {
			t.Errorf("after a miss: %+v; want misses 1, stores 1, entries 1, bytes_used > 0, hit_ratio 0", st)
		}

		hitOrMiss(t, g, true, "/r")
		st = g.stats(t, "")
		if st.Hits != 1 || st.Misses != 1 || st.HitRatio != 0.5 {
			t.Errorf("after a hit: %+v; want hits 1, misses 1, hit_ratio 0.5", st)
		}

		g.clk.Advance(61 * time.Second)
		hitOrMiss(t, g, false, "/r") // revalidated: 304
		st = g.stats(t, "")
		if st.Revalidations != 1 || st.Stores != 2 || st.Entries != 1 || st.BytesUsed <= 0 {
			t.Errorf("after a revalidation: %+v; want revalidations 1, stores 2, entries 1, bytes_used > 0", st)
		}

		g.clk.Advance(61 * time.Second)
		hitOrMiss(t, g, true, "/r", "Cache-Control", "max-stale")
		st = g.stats(t, "")
		if st.StaleHits != 1 || st.HitRatio != 0.5 {
			t.Errorf("after a stale hit: %+v; want stale_hits 1, hit_ratio 2/4", st)
		}

		// A coalesced follower.
		gt := newGate(t)
		g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "c", gate: gt}))
		var reqs fanOut
		entered := g.entered.Load()
		reqs.start(g, t, t.Context(), 1, "/c")
		g.origin.waitCount(t, "/c", 1)
		reqs.start(g, t, t.Context(), 1, "/c")
		g.waitEntered(t, int(entered)+2)
		gt.release()
		wantCoalesced, wantHits := uint64(0), st.Hits
		for _, r := range reqs.wait(t) {
			if _, ok := statusParam(r.header, "collapsed"); ok {
				wantCoalesced++
			} else if _, ok := statusParam(r.header, "hit"); ok {
				wantHits++
			}
		}
		st = g.stats(t, "")
		if st.Coalesced != wantCoalesced || st.Hits != wantHits || st.Misses != 2 || st.Entries != 2 {
			t.Errorf("after a coalesced fetch: %+v; want coalesced %d, hits %d, misses 2, entries 2", st, wantCoalesced, wantHits)
		}

		if n := g.purge(t, "all", "true"); n != 2 {
			t.Errorf("purged %d; want 2", n)
		}
		st = g.stats(t, "")
		if st.Purges != 2 || st.Entries != 0 || st.BytesUsed != 0 {
			t.Errorf("after purging everything: %+v; want purges 2, entries 0, bytes_used 0", st)
		}

		rs := g.stats(t, "?route=r")
		if rs.Hits != st.Hits || rs.Misses != st.Misses || rs.Stores != st.Stores || rs.Entries != 0 || rs.BytesUsed != 0 {
			t.Errorf("route stats %+v; want the route's counters (%+v) without the store's", rs, st)
		}
		if code, body := g.adminDo(t, http.MethodGet, "/cache/stats?route=nope"); code != http.StatusNotFound {
			t.Errorf("stats of an unknown route: %d %q; want 404", code, body)
		}
	})

	t.Run("admission drops", func(t *testing.T) {
		// An object that costs more than the whole cache is refused.
		g := newGateway(t, gwConfig{cache: cache.Options{MaxSize: 4096, MaxObjectSize: 4096}})
		g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60"}, body: strings.Repeat("x", 4000)}))
		// Cache-Status is sent before the store admits or refuses the
		// entry, so it is not checked for "stored" here.
		r := g.get(t, "/big")
		checkResult(t, g, "too big for the cache", "/big", r, step{count: 1, body: strings.Repeat("x", 4000), cs: "*"})
		r = g.get(t, "/big")
		checkResult(t, g, "again", "/big", r, step{count: 2, body: strings.Repeat("x", 4000), cs: "*"})
		if fwd, _ := statusParam(r.header, "fwd"); fwd != "uri-miss" {
			t.Errorf("again: Cache-Status %q; want fwd=uri-miss", r.header.Get("Cache-Status"))
		}
		st := g.stats(t, "")
		if st.AdmissionDrops == 0 || st.Stores != 0 || st.Entries != 0 || st.BytesUsed != 0 {
			t.Errorf("%+v; want admission_drops > 0 and nothing stored", st)
		}
	})

	t.Run("evictions", func(t *testing.T) {
		const maxSize = 64 << 10
		g := newGateway(t, gwConfig{cache: cache.Options{MaxSize: maxSize}})
		g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=600"}, body: strings.Repeat("x", 4000)}))
		const n = 100
		for i := range n {
			g.get(t, "/e/"+string(rune('a'+i%26))+strings.Repeat("z", i/26))
		}
		st := g.stats(t, "")
		if st.Evictions+st.AdmissionDrops == 0 || st.BytesUsed > maxSize || st.Entries >= n || st.Entries == 0 {
			t.Errorf("%+v; want evictions or admission drops, bytes_used <= %d, 0 < entries < %d", st, maxSize, n)
		}
		t.Logf("evictions %d, admission drops %d, entries %d, bytes %d", st.Evictions, st.AdmissionDrops, st.Entries, st.BytesUsed)
	})
}

// purgeAnswer posts a purge with the query parameters kv and returns the
// count and the reason given for a count of 0.
func (g *gateway) purgeAnswer(t testing.TB, kv ...string) (int, string) {
	t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	code, body := g.adminDo(t, http.MethodPost, "/cache/purge?"+q.Encode())
	if code != http.StatusOK {
		t.Fatalf("purge %v: status %d, body %q", q, code, body)
	}
	var out struct {
		Purged int     `json:"purged"`
		Reason *string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("purge %v: %v in %q", q, err, body)
	}
	if (out.Reason != nil) != (out.Purged == 0) {
		t.Errorf("purge %v: %s; want a reason exactly when nothing was purged", q, body)
	}
	if out.Reason == nil {
		return out.Purged, ""
	}
	return out.Purged, *out.Reason
}

// TestPurgeByPath: path= and a prefix= starting with "/" purge under
// every host, or under the hosts of route=; a purge of nothing says why.
func TestPurgeByPath(t *testing.T) {
	g := newGateway(t, gwConfig{route: cache.RouteOptions{Hosts: []string{"a.test"}}})
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=600"}, body: "{n}"}))
	paths := []string{"/x", "/x?a=1", "/css/1.css", "/css/2.css", "/cssx"}
	hosts := []string{"a.test", "b.test:8080"}
	for _, h := range hosts {
		for _, p := range paths {
			hitOrMiss(t, g, false, p, "Host", h)
		}
	}
	// check requests every path on every host: those in purged miss
	// (and are stored again), the others hit.
	check := func(purged ...string) {
		t.Helper()
		for _, h := range hosts {
			for _, p := range paths {
				hitOrMiss(t, g, !slices.Contains(purged, h+p), p, "Host", h)
			}
		}
	}

	if n, why := g.purgeAnswer(t, "path", "/x", "route", "r"); n != 1 {
		t.Errorf("path=/x&route=r: purged %d (%q); want 1 (a.test's /x)", n, why)
	}
	check("a.test/x")
	if n, why := g.purgeAnswer(t, "path", "/x"); n != 2 {
		t.Errorf("path=/x: purged %d (%q); want 2 (/x on both hosts, not /x?a=1)", n, why)
	}
	check("a.test/x", "b.test:8080/x")
	if n, why := g.purgeAnswer(t, "path", "/x?a=1", "soft", "true"); n != 2 {
		t.Errorf("path=/x?a=1&soft=true: purged %d (%q); want 2", n, why)
	}
	check("a.test/x?a=1", "b.test:8080/x?a=1") // stale, then fetched again
	if n, why := g.purgeAnswer(t, "prefix", "/css/", "route", "r"); n != 2 {
		t.Errorf("prefix=/css/&route=r: purged %d (%q); want 2 (a.test's /css/1.css, /css/2.css)", n, why)
	}
	check("a.test/css/1.css", "a.test/css/2.css")
	if n, why := g.purgeAnswer(t, "prefix", "/css/"); n != 4 {
		t.Errorf("prefix=/css/: purged %d (%q); want 4", n, why)
	}

	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"url", "http://c.test/x"}, "no entry for http://c.test/x; entries exist under hosts a.test, b.test:8080"},
		{[]string{"url", "https://a.test/x"}, "no entry for https://a.test/x; entries exist under hosts http://a.test, http://b.test:8080"},
		{[]string{"prefix", "http://c.test/x"}, "no entry for http://c.test/x; entries exist under hosts a.test, b.test:8080"},
		{[]string{"url", "http://c.test/nothing"}, "nothing stored under that path"},
		{[]string{"path", "/nothing"}, "nothing stored under that path"},
		{[]string{"prefix", "/nothing/"}, "nothing stored under that prefix"},
		{[]string{"tag", "none"}, "nothing stored is tagged none"},
	} {
		if n, why := g.purgeAnswer(t, tc.kv...); n != 0 || why != tc.want {
			t.Errorf("purge %v: %d, %q; want 0, %q", tc.kv, n, why, tc.want)
		}
	}
	// Only b.test holds /cssx: the route's hosts miss it.
	if n, why := g.purgeAnswer(t, "path", "/cssx", "route", "r"); n != 1 {
		t.Errorf("path=/cssx&route=r: %d, %q; want 1", n, why)
	}
	want := "nothing stored under that path for the hosts of route r; entries exist under host b.test:8080"
	if n, why := g.purgeAnswer(t, "path", "/cssx", "route", "r"); n != 0 || why != want {
		t.Errorf("path=/cssx&route=r again: %d, %q; want 0, %q", n, why, want)
	}
	if code, body := g.adminDo(t, http.MethodPost, "/cache/purge?path=/x&route=nope"); code != http.StatusBadRequest || !strings.Contains(body, "no cached route named nope") {
		t.Errorf("route=nope: %d %q; want 400 naming the route", code, body)
	}
}
