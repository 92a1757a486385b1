package cache_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// stored, gzip once. (The cache marks it final with the compressor it was
// given, Encoder.PassThrough, which needs no writer of the compressor's;
// had the mark not reached it, the compressor would pass the encoded body
// on by its own rule, so TestIdentityHitThroughWrapper checks the mark.)
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

// serveJSONDoc has g's origin answer every request with a compressible
// JSON document, cacheable for ten minutes, with the extra header pairs,
// and returns the document.
func serveJSONDoc(g *gateway, hdr ...string) string {
	doc := strings.Repeat(`{"id":1,"name":"a repetitive JSON document"},`, 50)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		io.WriteString(w, doc)
	})
	return doc
}

// TestCompressedHitKeepsKey: the object re-stored when a hit adds an
// encoded form keeps its own key, not a view of the request's pooled key
// buffer, which later requests overwrite: it is still found by URL.
func TestCompressedHitKeepsKey(t *testing.T) {
	comp := newCompressor(t)
	g := newGateway(t, gwConfig{compress: comp})
	serveJSONDoc(g)
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
	const digest = "sha-256=:AAAA:"
	serveJSONDoc(g, "Repr-Digest", digest)
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
	doc := serveJSONDoc(g)
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

// TestErrorsFromCacheHaveNoRepresentation: a precondition that fails on a
// hit (If-Match, If-Unmodified-Since: 412) or an unsatisfiable range
// (416) is answered from the cache without the stored 200's
// Content-Length, Content-Encoding or Content-Range, and with a body
// that matches its own headers, over HTTP/1.1 and HTTP/2: the stored
// length on an empty 412 broke the connection (a "partial file").
func TestErrorsFromCacheHaveNoRepresentation(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "h1", true: "h2"}[h2], func(t *testing.T) {
			comp := newCompressor(t)
			g := newGateway(t, gwConfig{compress: comp, h2: h2})
			doc := strings.Repeat(`{"id":4,"name":"a document"},`, 200)[:5000]
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			_, _ = io.WriteString(zw, doc)
			_ = zw.Close()
			lm := httpDate(-time.Hour)
			g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
				h := w.Header()
				h.Set("Content-Type", "application/json")
				h.Set("Cache-Control", "max-age=60")
				h.Set("Last-Modified", lm)
				h.Set("Accept-Ranges", "bytes")
				if r.URL.Path == "/z" {
					// Encoded by the origin, stored as it came.
					h.Set("ETag", `"z1"`)
					h.Set("Content-Encoding", "gzip")
					_, _ = w.Write(gz.Bytes())
					return
				}
				h.Set("ETag", `"r1"`)
				io.WriteString(w, doc)
			})
			for _, path := range []string{"/r", "/z"} {
				g.get(t, path, "Accept-Encoding", "gzip") // the miss that stores it
			}
			for _, tc := range []struct {
				label, method, path string
				hdr                 []string
				status              int
			}{
				{"If-Match, gzip form", "GET", "/r", []string{"Accept-Encoding", "gzip", "If-Match", `"nope"`}, 412},
				{"If-Match, identity", "GET", "/r", []string{"If-Match", `"nope"`}, 412},
				{"If-Unmodified-Since, br form", "GET", "/r", []string{"Accept-Encoding", "br", "If-Unmodified-Since", httpDate(-2 * time.Hour)}, 412},
				{"If-Match, HEAD", "HEAD", "/r", []string{"Accept-Encoding", "gzip", "If-Match", `"nope"`}, 412},
				{"If-Match, origin's gzip", "GET", "/z", []string{"Accept-Encoding", "gzip", "If-Match", `"nope"`}, 412},
				{"If-Match, origin's gzip decoded", "GET", "/z", []string{"If-Match", `"nope"`}, 412},
				{"unsatisfiable range, identity", "GET", "/r", []string{"Range", "bytes=9999-"}, 416},
				{"unsatisfiable range, origin's gzip", "GET", "/z", []string{"Accept-Encoding", "gzip", "Range", "bytes=9999-"}, 416},
			} {
				r, err := g.send(g.newRequest(context.Background(), t, tc.method, tc.path, tc.hdr...))
				if err != nil {
					t.Errorf("%s: %v", tc.label, err)
					continue
				}
				if r.status != tc.status || !strings.Contains(r.header.Get("Cache-Status"), "hit") {
					t.Errorf("%s: %d, Cache-Status %q; want %d from the cache", tc.label, r.status, r.header.Get("Cache-Status"), tc.status)
				}
				if ce := r.header.Get("Content-Encoding"); ce != "" {
					t.Errorf("%s: Content-Encoding %q on a %d", tc.label, ce, r.status)
				}
				if cr := r.header.Get("Content-Range"); r.status == 412 && cr != "" {
					t.Errorf("%s: Content-Range %q on a 412", tc.label, cr)
				} else if r.status == 416 && !strings.HasPrefix(cr, "bytes */") {
					t.Errorf("%s: Content-Range %q on a 416; want bytes */length", tc.label, cr)
				}
				if cl := r.header.Get("Content-Length"); cl != "" && tc.method != "HEAD" && cl != strconv.Itoa(len(r.body)) {
					t.Errorf("%s: Content-Length %s for %d bytes", tc.label, cl, len(r.body))
				}
				if tc.method == "GET" && (r.body == "" || strings.Contains(r.body, "{")) {
					t.Errorf("%s: body of %d bytes; want a short error message, not the document", tc.label, len(r.body))
				}
				if tc.method == "HEAD" && r.body != "" {
					t.Errorf("%s: HEAD with a body of %d bytes", tc.label, len(r.body))
				}
				if cc := r.header.Get("Cache-Control"); cc != "" {
					t.Errorf("%s: Cache-Control %q on a %d: a cache downstream could store the error", tc.label, cc, r.status)
				}
			}
			// The connection is still good for the next request.
			if r := g.get(t, "/r", "Accept-Encoding", "gzip"); r.status != 200 || decode(t, "gzip", r.body) != doc {
				t.Errorf("after the errors: %d, %d bytes", r.status, len(r.body))
			}
			if n := g.origin.count("/r"); n != 1 {
				t.Errorf("origin requests %d; want 1", n)
			}
		})
	}
}

// TestNoRangesOfGatewayEncodedForm: the miss is encoded as it streams and
// the stored object at another level, so the two bodies differ under the
// same ETag. A hit serving the stored encoded form therefore never offers
// or serves ranges of it: a client resuming the download it began on the
// miss (Range with If-Range) gets the whole form again, not bytes of one
// gzip stream spliced onto another. Ranges of the identity body, the
// origin's own bytes, are still served.
func TestNoRangesOfGatewayEncodedForm(t *testing.T) {
	comp, err := compress.New(compress.Options{StreamLevel: compress.Fastest, CachedLevel: compress.Best})
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, gwConfig{compress: comp})
	doc := strings.Repeat(`{"id":5,"name":"a document downloaded in parts","n":12345},`, 300)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "max-age=60")
		h.Set("ETag", `"r1"`)
		h.Set("Accept-Ranges", "bytes")
		io.WriteString(w, doc)
	})
	miss := g.get(t, "/doc", "Accept-Encoding", "gzip")
	if miss.header.Get("Content-Encoding") != "gzip" || miss.header.Get("Etag") != `"r1-gzip"` || miss.header.Get("Accept-Ranges") != "" {
		t.Fatalf("miss: Content-Encoding %q, ETag %q, Accept-Ranges %q; want gzip, \"r1-gzip\", none",
			miss.header.Get("Content-Encoding"), miss.header.Get("Etag"), miss.header.Get("Accept-Ranges"))
	}
	half := len(miss.body) / 2
	for _, tc := range []struct {
		label string
		hdr   []string
	}{
		{"plain hit", nil},
		{"resume with If-Range", []string{"Range", "bytes=" + strconv.Itoa(half) + "-", "If-Range", `"r1-gzip"`}},
		{"range alone", []string{"Range", "bytes=0-99"}},
		{"range with If-None-Match", []string{"Range", "bytes=0-99", "If-None-Match", `"other"`}},
	} {
		r := g.get(t, "/doc", append([]string{"Accept-Encoding", "gzip"}, tc.hdr...)...)
		if !strings.Contains(r.header.Get("Cache-Status"), "hit") {
			t.Errorf("%s: Cache-Status %q; want a hit", tc.label, r.header.Get("Cache-Status"))
		}
		if r.status != http.StatusOK || r.header.Get("Content-Range") != "" || r.header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: %d, Content-Range %q, Content-Encoding %q; want the whole gzip form, 200",
				tc.label, r.status, r.header.Get("Content-Range"), r.header.Get("Content-Encoding"))
			continue
		}
		if ar := r.header.Get("Accept-Ranges"); ar != "" {
			t.Errorf("%s: Accept-Ranges %q on a form the gateway encoded", tc.label, ar)
		}
		if got := decode(t, "gzip", r.body); got != doc {
			t.Errorf("%s: body differs after decoding", tc.label)
		}
	}
	if head := g.do(t, http.MethodHead, "/doc", "Accept-Encoding", "gzip"); head.header.Get("Accept-Ranges") != "" {
		t.Errorf("HEAD: Accept-Ranges %q on a form the gateway encoded", head.header.Get("Accept-Ranges"))
	}
	// The identity body is the origin's: its ranges are served.
	r := g.get(t, "/doc", "Range", "bytes=0-9")
	if r.status != http.StatusPartialContent || r.body != doc[:10] || r.header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("identity range: %d, body %q, Accept-Ranges %q; want 206, %q, bytes", r.status, r.body, r.header.Get("Accept-Ranges"), doc[:10])
	}
	if n := g.origin.count("/doc"); n != 1 {
		t.Errorf("origin requests %d; want 1", n)
	}
}

// TestIfNoneMatchCodingOnHit: a validator of an encoded form matches on a
// hit only when the client would be sent that form again; the bare
// validator only when it would be sent identity. A 304 otherwise would
// confirm bytes in a coding the client no longer gets.
func TestIfNoneMatchCodingOnHit(t *testing.T) {
	comp := newCompressor(t)
	g := newGateway(t, gwConfig{compress: comp})
	doc := strings.Repeat(`{"id":6,"name":"a document revalidated"},`, 100)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"abc"`)
		io.WriteString(w, doc)
	})
	g.get(t, "/doc", "Accept-Encoding", "gzip")
	for _, tc := range []struct {
		ae, inm string
		status  int
		etag    string
	}{
		{"", `"abc-gzip"`, 200, `"abc"`},
		{"br", `"abc-gzip"`, 200, `"abc-br"`},
		{"gzip;q=0", `"abc-gzip"`, 200, `"abc"`},
		{"gzip", `"abc"`, 200, `"abc-gzip"`},
		{"gzip", `"abc-gzip"`, 304, `"abc-gzip"`},
		{"br, gzip;q=0.5", `"abc-gzip", "abc-br"`, 304, `"abc-br"`},
		{"", `"abc"`, 304, `"abc"`},
	} {
		hdr := []string{"If-None-Match", tc.inm}
		if tc.ae != "" {
			hdr = append(hdr, "Accept-Encoding", tc.ae)
		}
		r := g.get(t, "/doc", hdr...)
		if r.status != tc.status || r.header.Get("Etag") != tc.etag || !strings.Contains(r.header.Get("Cache-Status"), "hit") {
			t.Errorf("Accept-Encoding %q, If-None-Match %s: %d, ETag %s, Cache-Status %q; want %d, %s from the cache",
				tc.ae, tc.inm, r.status, r.header.Get("Etag"), r.header.Get("Cache-Status"), tc.status, tc.etag)
		}
		if tc.status == 200 {
			if got := decode(t, r.header.Get("Content-Encoding"), r.body); got != doc {
				t.Errorf("Accept-Encoding %q, If-None-Match %s: body differs after decoding", tc.ae, tc.inm)
			}
		}
	}
	if n := g.origin.count("/doc"); n != 1 {
		t.Errorf("origin requests %d; want 1", n)
	}
}

// markWriter is a middleware's writer between the compressor and the
// cache that notes whether the response it passes on is marked to pass
// the compressor untouched (compress.Compressor.PassThrough).
type markWriter struct {
	http.ResponseWriter
	marked *atomic.Bool
}

func (m markWriter) WriteHeader(code int) {
	for k := range m.Header() {
		if strings.Contains(k, "pass-through") {
			m.marked.Store(true)
		}
	}
	m.ResponseWriter.WriteHeader(code)
}

func (m markWriter) Write(p []byte) (int, error) { return m.ResponseWriter.Write(p) }

// TestIdentityHitThroughWrapper: the cache tells the route's compressor
// that a hit's bytes are final through the compressor it was given
// (RouteOptions.Compress), not through the compressor's writer, so a
// middleware's writer in between cannot hide it: the mark crosses that
// writer, and the compressor takes it off before the client sees it.
func TestIdentityHitThroughWrapper(t *testing.T) {
	comp := newCompressor(t)
	var marked atomic.Bool
	between := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(markWriter{w, &marked}, r)
		})
	}
	g := newGateway(t, gwConfig{compress: comp, between: between})
	doc := serveJSONDoc(g)
	g.get(t, "/doc") // the miss
	if marked.Load() {
		t.Error("miss: marked final; the compressor must handle what streams from the origin")
	}
	for _, ae := range []string{"", "gzip"} {
		marked.Store(false)
		hit := g.get(t, "/doc", "Accept-Encoding", ae)
		if !marked.Load() {
			t.Errorf("hit (Accept-Encoding %q): not marked final on its way to the compressor", ae)
		}
		for k := range hit.header {
			if strings.Contains(k, "pass-through") {
				t.Errorf("hit (Accept-Encoding %q): the mark reached the client: %q", ae, k)
			}
		}
		if ae == "" && (hit.body != doc || hit.header.Get("Content-Encoding") != "") {
			t.Errorf("identity hit: CE %q, body ok %v", hit.header.Get("Content-Encoding"), hit.body == doc)
		}
	}
}
