package cache_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gateway/cache"
)

func TestLimits(t *testing.T) {
	const maxObj = 1024
	cfg := gwConfig{cache: cache.Options{MaxObjectSize: maxObj}}
	big := strings.Repeat("0123456789", 1000) // 10000 bytes
	chunked := func(o *origin) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			for i := 0; i < len(big); i += 1000 {
				_, _ = w.Write([]byte(big[i : i+1000]))
				w.(http.Flusher).Flush() // no Content-Length: chunked
			}
		}
	}
	runRows(t, []row{
		{
			name: "a response over MaxObjectSize streams through and is not stored", cfg: cfg,
			origin: resp{hdr: []string{"Cache-Control", "max-age=60", "Content-Length", "10000"}, body: big},
			steps: []step{
				{count: 1, body: big, cs: "fwd=uri-miss; fwd-status=200", check: hdrIs("Content-Length", "10000")},
				{count: 2, body: big, cs: "fwd=uri-miss; fwd-status=200"},
			},
		},
		{
			name: "a response of unknown length over MaxObjectSize streams through and is not stored", cfg: cfg,
			handler: chunked,
			steps: []step{
				// Its size is only known once it outgrew the limit, after
				// the status line: Cache-Status cannot be checked.
				{count: 1, body: big, cs: "*"},
				{count: 2, body: big, cs: "*"},
			},
		},
		{
			name: "a response of exactly MaxObjectSize is stored", cfg: cfg,
			origin: resp{hdr: []string{"Cache-Control", "max-age=60"}, body: big[:maxObj]},
			steps: []step{
				{count: 1, body: big[:maxObj], cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"},
				{count: 1, body: big[:maxObj], cs: "hit; ttl=60", age: "0"},
			},
		},
	})
}

// TestTruncatedBody: a body the origin cuts short (the connection closes
// before Content-Length bytes, or before the last chunk) fails the
// client's response and is not stored.
func TestTruncatedBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string // what the origin sends before closing the connection
	}{
		{"Content-Length larger than the body",
			"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\nDate: %s\r\n\r\n" + strings.Repeat("x", 50)},
		{"chunked without the last chunk",
			"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\nDate: %s\r\n\r\n32\r\n" + strings.Repeat("x", 50) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, gwConfig{})
			g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
				conn, bw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				fmt.Fprintf(bw, tc.raw, g.clk.Now().Format(http.TimeFormat))
				_ = bw.Flush()
			})
			r, err := g.send(g.newRequest(t.Context(), t, http.MethodGet, "/r"))
			if err == nil && r.body == strings.Repeat("x", 100) {
				t.Fatalf("truncated response delivered as complete: %d %q", r.status, r.body)
			}
			if err == nil {
				t.Errorf("truncated response: %d, %d bytes, no error; want the client's response to fail", r.status, len(r.body))
			}
			g.origin.handle(g.origin.static(cc("max-age=60")))
			r = g.get(t, "/r")
			checkResult(t, g, "after the truncated response", "/r", r, step{count: 2, body: "v2", cs: "fwd=uri-miss; fwd-status=200; ttl=60; stored"})
		})
	}
}
