package cache_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"gateway/cache"
	"gateway/compress"
)

// newCompressor is a compressor with the default options.
func newCompressor(t *testing.T) *compress.Compressor {
	t.Helper()
	comp, err := compress.New(compress.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return comp
}

func decode(t *testing.T, coding, body string) string {
	t.Helper()
	var r io.Reader
	switch coding {
	case "":
		return body
	case "gzip":
		zr, err := gzip.NewReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(strings.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unknown coding %q", coding)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", coding, err)
	}
	return string(b)
}

// TestCompressedHits: a cached object is served in every coding a client
// asks for, each encoded once however many hits race for it, byte-exact
// after decoding, with Vary, per-coding ETags and validators that work.
func TestCompressedHits(t *testing.T) {
	comp := newCompressor(t)
	g := newGateway(t, gwConfig{compress: comp})
	doc := strings.Repeat(`{"id":1,"name":"a repetitive JSON document"},`, 200)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"doc1"`)
		io.WriteString(w, doc)
	})

	// The miss streams (compressed at the fast level) and stores identity.
	miss := g.get(t, "/doc", "Accept-Encoding", "gzip")
	if got := decode(t, miss.header.Get("Content-Encoding"), miss.body); got != doc {
		t.Fatalf("miss: body differs after decoding (%d bytes)", len(got))
	}
	before, _ := g.cache.Stats()

	for _, coding := range []string{"gzip", "br", "zstd"} {
		var wg sync.WaitGroup
		results := make([]result, 20)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = g.get(t, "/doc", "Accept-Encoding", coding)
			}()
		}
		wg.Wait()
		for _, r := range results {
			if ce := r.header.Get("Content-Encoding"); ce != coding {
				t.Fatalf("%s hit: Content-Encoding %q", coding, ce)
			}
			if !strings.Contains(r.header.Get("Cache-Status"), "hit") {
				t.Errorf("%s: Cache-Status %q; want a hit", coding, r.header.Get("Cache-Status"))
			}
			if r.header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s: Vary %q; want Accept-Encoding", coding, r.header.Get("Vary"))
			}
			if et := r.header.Get("Etag"); et != `"doc1-`+coding+`"` {
				t.Errorf("%s: ETag %q; want one per coding", coding, et)
			}
			if got := decode(t, coding, r.body); got != doc {
				t.Fatalf("%s: body differs after decoding", coding)
			}
			if cl := r.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.body)) {
				t.Errorf("%s: Content-Length %s for %d bytes", coding, cl, len(r.body))
			}
		}
		// One encoding for twenty hits: the cached form's bytes in.
		if st := comp.Stats()[coding]; st.BytesIn > uint64(2*len(doc)) {
			t.Errorf("%s: %d bytes fed to the encoder for 20 hits; want the document encoded once (plus the streamed miss)", coding, st.BytesIn)
		}
	}
	if g.origin.count("/doc") != 1 {
		t.Errorf("origin requests %d; want 1", g.origin.count("/doc"))
	}
	after, _ := g.cache.Stats()
	if after.BytesUsed <= before.BytesUsed {
		t.Errorf("bytes used %d after encoding, %d before: the encoded forms must count", after.BytesUsed, before.BytesUsed)
	}

	// Identity for a client that accepts nothing else, still with Vary.
	id := g.get(t, "/doc")
	if id.header.Get("Content-Encoding") != "" || id.body != doc || id.header.Get("Etag") != `"doc1"` || id.header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("identity hit: CE %q ETag %q Vary %q, body ok %v", id.header.Get("Content-Encoding"), id.header.Get("Etag"), id.header.Get("Vary"), id.body == doc)
	}
	// The per-coding validator revalidates from the cache.
	nm := g.get(t, "/doc", "Accept-Encoding", "br", "If-None-Match", `"doc1-br"`)
	if nm.status != http.StatusNotModified {
		t.Errorf("If-None-Match with the br ETag: %d; want 304", nm.status)
	}
	// HEAD: the encoded form's headers, no body.
	head := g.do(t, http.MethodHead, "/doc", "Accept-Encoding", "gzip")
	if head.header.Get("Content-Encoding") != "gzip" || head.body != "" {
		t.Errorf("HEAD: CE %q, body %d bytes", head.header.Get("Content-Encoding"), len(head.body))
	}
}

// unwrapWriter is a middleware's ResponseWriter that wraps the next
// one and offers it through Unwrap, as well-behaved wrappers do.
type unwrapWriter struct{ http.ResponseWriter }

func (u unwrapWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestCompressedHitThroughWrapper: with another middleware's writer
// between the compressor and the cache, an encoded hit is still sent as
// stored, gzip once. (The cache reaches the compressor's writer through
// Unwrap, TestFindSkipper; were it not found, the compressor would pass
// the encoded body on by its own rule, so this checks the outcome.)
func TestCompressedHitThroughWrapper(t *testing.T) {
	comp := newCompressor(t)
	between := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(unwrapWriter{w}, r)
		})
	}
	g := newGateway(t, gwConfig{compress: comp, between: between})
	doc := strings.Repeat(`{"id":2,"name":"another repetitive document"},`, 200)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, doc)
	})
	g.get(t, "/doc", "Accept-Encoding", "gzip") // the miss
	for i := range 2 {                          // the first hit encodes, the second serves the stored form
		hit := g.get(t, "/doc", "Accept-Encoding", "gzip")
		if ce := hit.header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("hit %d: Content-Encoding %q; want gzip (once)", i, ce)
		}
		if !strings.Contains(hit.header.Get("Cache-Status"), "hit") {
			t.Errorf("hit %d: Cache-Status %q; want a hit", i, hit.header.Get("Cache-Status"))
		}
		if got := decode(t, "gzip", hit.body); got != doc {
			t.Fatalf("hit %d: one gzip decoding gives %d bytes, not the document: compressed twice?", i, len(got))
		}
	}
}

// TestCompressedHitKeepsKey: the object re-stored when a hit adds an
// encoded form keeps its own key, not a view of the request's pooled key
// buffer, which later requests overwrite: it is still found by URL.
func TestCompressedHitKeepsKey(t *testing.T) {
	comp := newCompressor(t)
	g := newGateway(t, gwConfig{compress: comp})
	doc := strings.Repeat(`{"id":1,"name":"a repetitive JSON document"},`, 50)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, doc)
	})
	g.get(t, "/doc")
	if r := g.get(t, "/doc", "Accept-Encoding", "gzip"); r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("hit: Content-Encoding %q; want gzip", r.header.Get("Content-Encoding"))
	}
	for i := range 8 {
		g.get(t, "/zzz"+strconv.Itoa(i))
	}
	if n := g.purge(t, "url", g.url("/doc")); n != 1 {
		t.Errorf("purge of /doc after an encoded hit: %d purged; want 1", n)
	}
}

// TestCompressedNotEligible: a cached type outside the allowlist is served
// as stored, without Vary: Accept-Encoding.
func TestCompressedNotEligible(t *testing.T) {
	comp := newCompressor(t)
	g := newGateway(t, gwConfig{compress: comp})
	img := string(bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1000))
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, img)
	})
	g.get(t, "/i.png", "Accept-Encoding", "gzip")
	r := g.get(t, "/i.png", "Accept-Encoding", "gzip")
	if !strings.Contains(r.header.Get("Cache-Status"), "hit") || r.header.Get("Content-Encoding") != "" || r.body != img || r.header.Get("Vary") != "" {
		t.Errorf("png hit: Cache-Status %q CE %q Vary %q, body ok %v", r.header.Get("Cache-Status"), r.header.Get("Content-Encoding"), r.header.Get("Vary"), r.body == img)
	}
}

// TestCompressedHitDropsDigests: the digests of the stored body go out
// with it, and not with an encoded form, whose bytes they do not match.
func TestCompressedHitDropsDigests(t *testing.T) {
	comp := newCompressor(t)
	g := newGateway(t, gwConfig{compress: comp})
	doc := strings.Repeat(`{"id":1,"name":"a repetitive JSON document"},`, 50)
	const digest = "sha-256=:AAAA:"
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Repr-Digest", digest)
		io.WriteString(w, doc)
	})
	g.get(t, "/doc")
	if r := g.get(t, "/doc", "Accept-Encoding", "gzip"); r.header.Get("Content-Encoding") != "gzip" || r.header.Get("Repr-Digest") != "" {
		t.Errorf("gzip hit: Content-Encoding %q, Repr-Digest %q; want gzip, none", r.header.Get("Content-Encoding"), r.header.Get("Repr-Digest"))
	}
	if r := g.get(t, "/doc"); r.header.Get("Content-Encoding") != "" || r.header.Get("Repr-Digest") != digest {
		t.Errorf("identity hit: Content-Encoding %q, Repr-Digest %q; want none, %q", r.header.Get("Content-Encoding"), r.header.Get("Repr-Digest"), digest)
	}
}

// TestRangeOnEncodedHit: a body the origin sent gzip-encoded is stored as
// it came. A range of it goes only to a client that accepts gzip, with
// the Vary the whole response carries; any other client gets the whole
// body, decoded by the compressor, as it would without Range.
func TestRangeOnEncodedHit(t *testing.T) {
	comp := newCompressor(t)
	g := newGateway(t, gwConfig{compress: comp})
	doc := strings.Repeat(`{"id":3,"name":"a document the origin compressed"},`, 100)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := io.WriteString(zw, doc); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"z1"`)
		_, _ = w.Write(gz.Bytes())
	})
	if r := g.get(t, "/z", "Accept-Encoding", "gzip"); decode(t, r.header.Get("Content-Encoding"), r.body) != doc {
		t.Fatalf("miss: body differs after decoding")
	}
	for _, ae := range []string{"identity", "gzip;q=0", ""} {
		hdr := []string{"Range", "bytes=0-9"}
		if ae != "" {
			hdr = append(hdr, "Accept-Encoding", ae)
		}
		r := g.get(t, "/z", hdr...)
		if !strings.Contains(r.header.Get("Cache-Status"), "hit") {
			t.Errorf("Accept-Encoding %q: Cache-Status %q; want a hit", ae, r.header.Get("Cache-Status"))
		}
		if r.status != http.StatusOK || r.header.Get("Content-Encoding") != "" || r.body != doc {
			t.Errorf("Accept-Encoding %q, Range: %d, Content-Encoding %q, %d bytes; want 200 with the whole decoded body",
				ae, r.status, r.header.Get("Content-Encoding"), len(r.body))
		}
		if v := r.header.Get("Vary"); v != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q, Range: Vary %q; want Accept-Encoding", ae, v)
		}
	}
	r := g.get(t, "/z", "Range", "bytes=0-9", "Accept-Encoding", "gzip")
	if r.status != http.StatusPartialContent || r.header.Get("Content-Encoding") != "gzip" || r.body != gz.String()[:10] {
		t.Errorf("gzip client, Range: %d, Content-Encoding %q, body %q; want 206 with the first 10 stored bytes",
			r.status, r.header.Get("Content-Encoding"), r.body)
	}
	if v := r.header.Get("Vary"); v != "Accept-Encoding" {
		t.Errorf("gzip client, Range: Vary %q; want Accept-Encoding, as on the 200", v)
	}
	if g.origin.count("/z") != 1 {
		t.Errorf("origin requests %d; want 1", g.origin.count("/z"))
	}
}

// TestCompressedEntryAfterCompressionOff: an entry stored while the route
// compressed is still served, as stored, once a reload re-registered the
// route without compression (the entry, keyed by URL, outlives it).
func TestCompressedEntryAfterCompressionOff(t *testing.T) {
	comp := newCompressor(t)
	g := newGateway(t, gwConfig{compress: comp})
	doc := strings.Repeat(`{"id":1,"name":"a repetitive JSON document"},`, 50)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, doc)
	})
	g.get(t, "/doc")
	rt, err := g.cache.Route(cache.RouteOptions{Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, g.url("/doc"), nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rt.Wrap(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.String() != doc || rec.Header().Get("Content-Encoding") != "" || rec.Header().Get("Vary") != "" {
		t.Errorf("hit after compression was turned off: %d, Content-Encoding %q, Vary %q, body ok %v; want the stored identity body",
			rec.Code, rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"), rec.Body.String() == doc)
	}
}
