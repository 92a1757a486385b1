package cache

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRouteReplacedByName: registering a route under a name already
// registered (a config reload) replaces it, keeping its counters, so
// Stats neither grows nor resets.
func TestRouteReplacedByName(t *testing.T) {
	c, err := New(Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("x"))
	})
	r1, err := c.Route(RouteOptions{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	h1 := r1.Wrap(origin)
	for range 2 {
		h1.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://example.com/x", nil))
	}
	r2, err := c.Route(RouteOptions{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r2.Wrap(origin).ServeHTTP(rec, httptest.NewRequest("GET", "http://example.com/x", nil))
	if cs := rec.Header().Get("Cache-Status"); cs == "" || rec.Body.String() != "x" {
		t.Fatalf("after replace: %q %q", cs, rec.Body.String())
	}
	_, routes := c.Stats()
	if len(routes) != 1 {
		t.Fatalf("routes %v", routes)
	}
	if s := routes["a"]; s.Hits != 2 || s.Misses != 1 {
		t.Fatalf("stats %+v, want 2 hits (one before, one after the replace) and 1 miss", s)
	}
	c.mu.Lock()
	n := len(c.routes)
	c.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d routes registered", n)
	}
}
