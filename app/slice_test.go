package app

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestSliceFromConfig: a route's cache.slice reaches the cache route: the
// origin is asked for the aligned slice that covers the client's range,
// and the same range again is answered from the cache.
func TestSliceFromConfig(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256KiB
	var mu sync.Mutex
	var ranges []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	defer up.Close()
	a := startApp(t, `
listeners:
  - address: "127.0.0.1:0"
upstreams:
  app:
    targets: ["`+up.URL+`"]
routes:
  - name: files
    path: /
    upstream: app
    cache:
      enabled: true
      slice: 64KiB
`)
	gw := "http://" + a.server.Addrs()[0].String()
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodGet, gw+"/f", nil)
		req.Header.Set("Range", "bytes=70000-70009")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, body[70000:70010]) {
			t.Errorf("request %d: status %d, body %q", i+1, resp.StatusCode, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 1 || ranges[0] != "bytes=65536-131071" {
		t.Errorf("origin ranges %q; want one request for bytes=65536-131071", ranges)
	}
}
