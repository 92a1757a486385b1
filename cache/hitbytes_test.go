package cache_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHitBytes: the body bytes served from stored responses are counted
// as they go out: whole bodies for hits, a range's length, nothing for
// HEAD or for the miss that stored the response.
func TestHitBytes(t *testing.T) {
	g := newGateway(t, gwConfig{})
	body := strings.Repeat("0123456789", 100)
	g.origin.handle(g.origin.static(resp{hdr: []string{"Cache-Control", "max-age=60", "ETag", `"v1"`}, body: body}))

	g.get(t, "/a") // the miss stores it
	if got := g.route.Stats().HitBytes; got != 0 {
		t.Fatalf("after the miss: hit_bytes %d; want 0", got)
	}
	const n = 5
	for range n {
		if r := g.get(t, "/a"); r.body != body {
			t.Fatalf("hit: %d bytes; want %d", len(r.body), len(body))
		}
	}
	want := uint64(n * len(body))
	if got := g.route.Stats().HitBytes; got != want {
		t.Fatalf("after %d hits: hit_bytes %d; want %d", n, got, want)
	}

	r := g.get(t, "/a", "Range", "bytes=10-19")
	if r.status != http.StatusPartialContent || len(r.body) != 10 {
		t.Fatalf("range: %d, %d bytes; want 206, 10", r.status, len(r.body))
	}
	want += 10
	g.do(t, http.MethodHead, "/a")
	if r := g.get(t, "/a", "If-None-Match", `"v1"`); r.status != http.StatusNotModified {
		t.Fatalf("conditional: %d; want 304", r.status)
	}
	if got := g.route.Stats().HitBytes; got != want {
		t.Fatalf("after a range, a HEAD and a 304: hit_bytes %d; want %d", got, want)
	}
	total, routes := g.cache.Stats()
	if total.HitBytes != want || routes["r"].HitBytes != want {
		t.Fatalf("Stats: total %d, route %d; want %d", total.HitBytes, routes["r"].HitBytes, want)
	}
}

// TestHitBytesEncoded: a hit served in a coding the gateway made counts
// the encoded bytes it sent, not the stored identity body's.
func TestHitBytesEncoded(t *testing.T) {
	g := newGateway(t, gwConfig{compress: newCompressor(t)})
	doc := strings.Repeat(`{"id":1,"name":"a repetitive JSON document"},`, 200)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		_, _ = io.WriteString(w, doc)
	})
	g.get(t, "/doc", "Accept-Encoding", "gzip") // the miss stores it
	r := g.get(t, "/doc", "Accept-Encoding", "gzip")
	if r.header.Get("Content-Encoding") != "gzip" || len(r.body) >= len(doc) {
		t.Fatalf("hit: Content-Encoding %q, %d bytes; want gzip, fewer than %d", r.header.Get("Content-Encoding"), len(r.body), len(doc))
	}
	if got := g.route.Stats().HitBytes; got != uint64(len(r.body)) {
		t.Fatalf("hit_bytes %d; want the %d encoded bytes sent", got, len(r.body))
	}
}
