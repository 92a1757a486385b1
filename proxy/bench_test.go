package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchmarkProxy measures one proxied GET of a 1 KiB body, client to
// gateway to upstream over loopback, with keep-alive connections on both
// legs. The allocations reported include the test client's and the
// upstream server's, which are the same in every run, so changes in the
// gateway show in the difference.
func BenchmarkProxy(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1<<10)
	for _, bb := range []struct {
		name     string
		kind     serverKind // upstream server
		upstream string     // gateway to upstream
		client   func(testing.TB) *http.Client
	}{
		{"http1", plainHTTP1, ProtoHTTP1, newClient},
		{"h2c", cleartextH2C, ProtoH2C, newH2CClient},
	} {
		b.Run(bb.name, func(b *testing.B) {
			be := newBackend(b, bb.kind, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(payload)
			}))
			u := newUpstream(b, UpstreamOptions{Protocol: bb.upstream, Targets: []*url.URL{be.target(b)}})
			h := newHandler(b, Options{Routes: []RouteOptions{{Path: "/", Upstream: u}}})
			gw := httptest.NewUnstartedServer(h)
			var p http.Protocols
			p.SetHTTP1(true)
			p.SetUnencryptedHTTP2(true)
			gw.Config.Protocols = &p
			gw.Start()
			b.Cleanup(gw.Close)
			c := bb.client(b)
			req, err := http.NewRequest("GET", gw.URL+"/object", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || n != int64(len(payload)) {
					b.Fatalf("GET: got %d, %d bytes, %v; want 200, %d bytes", resp.StatusCode, n, err, len(payload))
				}
			}
		})
	}
}
