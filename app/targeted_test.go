package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestTargetedFieldFromConfig: a route's cache.targeted_field decides
// what is stored in place of Cache-Control, and strip_targeted keeps it
// and CDN-Cache-Control from the client.
func TestTargetedFieldFromConfig(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("CDN-Cache-Control", "no-store")
		w.Header().Set("Gateway-Cache-Control", "max-age=300")
		io.WriteString(w, "v")
	}))
	defer up.Close()
	a := startApp(t, `
listeners:
  - address: "127.0.0.1:0"
upstreams:
  app:
    targets: ["`+up.URL+`"]
routes:
  - name: cached
    path: /
    upstream: app
    cache:
      enabled: true
      targeted_field: gateway-cache-control
      strip_targeted: true
`)
	gw := "http://" + a.server.Addrs()[0].String()
	for i, want := range []string{"stored", "hit"} {
		resp, err := http.Get(gw + "/p")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if st := h.Get("Cache-Status"); !strings.Contains(st, want) {
			t.Errorf("request %d: Cache-Status %q; want %s", i+1, st, want)
		}
		if h.Get("Cache-Control") != "no-store" || h.Get("Gateway-Cache-Control") != "" || h.Get("CDN-Cache-Control") != "" {
			t.Errorf("request %d: header %v; want Cache-Control passed on and the targeted fields stripped", i+1, h)
		}
	}
	if got := n.Load(); got != 1 {
		t.Errorf("origin requests: %d; want 1", got)
	}
}
