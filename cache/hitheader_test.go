package cache_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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

// TestHitContentLength: every hit carries its Content-Length, over
// HTTP/1.1 and HTTP/2, for GET and HEAD, identity and gzip, at sizes on
// both sides of the length the servers add themselves (a small GET hit
// leaves it to them, sparing its header a field), and none goes chunked.
func TestHitContentLength(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		g := newGateway(t, gwConfig{h2: h2, compress: newCompressor(t)})
		g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(n))
			_, _ = io.WriteString(w, strings.Repeat("a", n))
		})
		for _, n := range []int{1, 1024, 2047, 2048, 2049, 4096, 65536} {
			path := "/" + strconv.Itoa(n)
			g.get(t, path) // the miss stores it
			for _, c := range []struct{ method, ae string }{{"GET", ""}, {"HEAD", ""}, {"GET", "gzip"}} {
				var hdr []string
				if c.ae != "" {
					hdr = []string{"Accept-Encoding", c.ae}
				}
				r := g.do(t, c.method, path, hdr...)
				label := fmt.Sprintf("HTTP/%d %s %s Accept-Encoding %q", r.proto, c.method, path, c.ae)
				if !strings.Contains(r.header.Get("Cache-Status"), "hit") {
					t.Fatalf("%s: Cache-Status %q; want a hit", label, r.header.Get("Cache-Status"))
				}
				want := n
				if c.ae != "" && r.header.Get("Content-Encoding") == "gzip" {
					want = len(r.body)
				}
				if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(want) {
					t.Errorf("%s: Content-Length %q; want %d", label, cl, want)
				}
				if c.method == "GET" && c.ae == "" && len(r.body) != n {
					t.Errorf("%s: %d body bytes; want %d", label, len(r.body), n)
				}
			}
		}
	}
}
