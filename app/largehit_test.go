package app

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestLargeHits: cache hits of bodies larger than net/http's buffers,
// which the listener sends in one write (entrypoint's GatherWrites),
// reach real clients whole over one keep-alive connection: identity,
// the stored gzip form (through a real gzip decoder), HEAD, and sizes
// around the server's 4 KiB buffer.
func TestLargeHits(t *testing.T) {
	doc := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString(`{"items":[`)
		for i := 0; b.Len() < n-40; i++ {
			fmt.Fprintf(&b, `{"id":%d,"sku":"SKU-%06d","tags":["a","b"]},`, i, i*7919%1000003)
		}
		b.WriteString(`{}]}`)
		for b.Len() < n {
			b.WriteByte(' ')
		}
		return b.Bytes()[:n]
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/doc/"))
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"d`+strconv.Itoa(n)+`"`)
		w.Write(doc(n))
	}))
	defer up.Close()
	a := startApp(t, `
listeners:
  - address: "127.0.0.1:0"
admin:
  address: off
upstreams:
  app:
    targets: ["`+up.URL+`"]
routes:
  - path: /
    upstream: app
    cache: {enabled: true}
    compress: {enabled: true}
`)
	gw := "http://" + a.server.Addrs()[0].String()
	// One connection for every request: a response cut short or sent
	// with bytes left over would spoil the ones after it.
	tr := &http.Transport{DisableCompression: true, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	get := func(method, path, ae string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, gw+path, nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s (%s): %v", method, path, ae, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s (%s): body: %v", method, path, ae, err)
		}
		return resp, b
	}
	for _, n := range []int{2049, 4000, 4096, 5000, 8192, 12271, 65536, 1 << 20} {
		path := "/doc/" + strconv.Itoa(n)
		want := doc(n)
		get(http.MethodGet, path, "") // stored
		for _, ae := range []string{"", "gzip"} {
			for i := range 2 { // the first gzip hit encodes the form, the second serves it
				resp, b := get(http.MethodGet, path, ae)
				if st := resp.Header.Get("Cache-Status"); !strings.Contains(st, "hit") {
					t.Fatalf("%s (%q) hit %d: Cache-Status %q; want a hit", path, ae, i, st)
				}
				if got := resp.Header.Get("Content-Encoding"); got != ae {
					t.Fatalf("%s (%q): Content-Encoding %q; want %q", path, ae, got, ae)
				}
				if resp.ContentLength != int64(len(b)) {
					t.Errorf("%s (%q): Content-Length %d; got %d bytes", path, ae, resp.ContentLength, len(b))
				}
				if ae == "gzip" {
					zr, err := gzip.NewReader(bytes.NewReader(b))
					if err != nil {
						t.Fatalf("%s: gzip: %v", path, err)
					}
					if b, err = io.ReadAll(zr); err != nil {
						t.Fatalf("%s: gunzip: %v", path, err)
					}
				}
				if !bytes.Equal(b, want) {
					t.Fatalf("%s (%q): got %d bytes; want the %d of the document", path, ae, len(b), len(want))
				}
			}
			resp, b := get(http.MethodHead, path, ae)
			if len(b) != 0 || resp.Header.Get("Content-Encoding") != ae {
				t.Errorf("HEAD %s (%q): %d body bytes, Content-Encoding %q", path, ae, len(b), resp.Header.Get("Content-Encoding"))
			}
		}
	}
}
