package compress

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that counts and drops the body, so
// the benchmarks measure the middleware and the encoder, not a socket.
type discardWriter struct {
	h http.Header
	n int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discardWriter) Flush()                      {}

// benchStream serves 64 KiB of JSON through Wrap in four 16 KiB writes,
// as ReverseProxy copies a body, with the client accepting ae. It
// reports the encoded size per response; allocs/op shows that encoders
// come from the pools (a fresh gzip, brotli or zstd encoder would be
// tens of allocations and hundreds of KiB).
func benchStream(b *testing.B, ae string, header http.Header, body []byte) {
	c := mustNew(b, Options{})
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		for p := body; len(p) > 0; p = p[min(len(p), 16<<10):] {
			w.Write(p[:min(len(p), 16<<10)])
		}
	}))
	r := httptest.NewRequest("GET", "/", nil)
	if ae != "" {
		r.Header.Set("Accept-Encoding", ae)
	}
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, r) // warm the pools
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		clear(w.h)
		w.n = 0
		h.ServeHTTP(w, r)
	}
	b.ReportMetric(float64(w.n), "out-bytes")
}

var benchJSON = http.Header{"Content-Type": {"application/json"}}

func BenchmarkStreamGzip64K(b *testing.B)     { benchStream(b, "gzip", benchJSON, json64k) }
func BenchmarkStreamBr64K(b *testing.B)       { benchStream(b, "br", benchJSON, json64k) }
func BenchmarkStreamZstd64K(b *testing.B)     { benchStream(b, "zstd", benchJSON, json64k) }
func BenchmarkStreamIdentity64K(b *testing.B) { benchStream(b, "", benchJSON, json64k) }

// BenchmarkDecodeGzip64K: an upstream's gzip body decoded for a client
// that does not accept gzip.
func BenchmarkDecodeGzip64K(b *testing.B) {
	enc, _ := NewEncoders().Encode(nil, Gzip, Default, json64k)
	benchStream(b, "", http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, enc)
}

// TestStreamAllocs pins what the benchmarks show: once the pools are
// warm, a compressed response allocates only a few header values, never
// an encoder.
func TestStreamAllocs(t *testing.T) {
	if !poolRetains() {
		t.Skip("sync.Pool drops items at random (race detector build); allocation counts are meaningless")
	}
	c := mustNew(t, Options{})
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = benchJSON["Content-Type"]
		w.Write(json64k[:20000])
		w.(http.Flusher).Flush()
		w.Write(json64k[20000:40000])
	}))
	w := &discardWriter{h: http.Header{}}
	for _, coding := range codings {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", coding)
		clear(w.h)
		h.ServeHTTP(w, r)
		if n := testing.AllocsPerRun(50, func() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}); n > 5 {
			t.Errorf("%s: %v allocs per response; want at most 5", coding, n)
		}
	}
}
