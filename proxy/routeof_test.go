package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestRouteOf: RouteOf answers what ServeHTTP would route to, without
// serving or changing the request.
func TestRouteOf(t *testing.T) {
	checkLeaks(t)
	up := newUpstream(t, UpstreamOptions{Name: "u", Targets: []*url.URL{mustURL(t, "http://"+deadAddr(t))}})
	h, err := New(Options{Logger: quiet(), Routes: []RouteOptions{
		{Name: "api", Path: "/api", Upstream: up, Batchable: true},
		{Name: "admin", Path: "/admin", Upstream: up},
		{Name: "posts", Path: "/posts", Methods: []string{"POST"}, Upstream: up, Batchable: true},
		{Name: "host", Hosts: []string{"a.example.com"}, Path: "/", Upstream: up, Batchable: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, host, target string
		name                 string
		batchable, ok        bool
	}{
		{"GET", "x", "/api/1", "api", true, true},
		{"GET", "x", "/admin", "admin", false, true},
		{"GET", "x", "/api/../admin/x", "admin", false, true},
		{"GET", "x", "/apis", "", false, false},
		{"GET", "x", "/posts", "", false, false},
		{"POST", "x", "/posts", "posts", true, true},
		{"GET", "A.example.com:8080", "/admin", "host", true, true},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		r.Host = tc.host
		path := r.URL.Path
		name, batchable, ok := h.RouteOf(r)
		if name != tc.name || batchable != tc.batchable || ok != tc.ok {
			t.Errorf("%s %s %s: got %q %v %v; want %q %v %v", tc.method, tc.host, tc.target, name, batchable, ok, tc.name, tc.batchable, tc.ok)
		}
		if r.URL.Path != path {
			t.Errorf("%s: RouteOf changed the path to %q", tc.target, r.URL.Path)
		}
	}
}

// TestHandlerRoute: a route with a Handler is served by it, wrapped in
// its middleware and limits, with no upstream.
func TestHandlerRoute(t *testing.T) {
	checkLeaks(t)
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Middleware", "1")
			next.ServeHTTP(w, r)
		})
	}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, hasDeadline := r.Context().Deadline()
		io.WriteString(w, r.URL.Path)
		if hasDeadline {
			io.WriteString(w, " with timeout")
		}
	})
	h, err := New(Options{Logger: quiet(), Routes: []RouteOptions{
		{Name: "own", Path: "/own", Handler: inner, Middleware: []Middleware{mw}, Timeout: time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/own/x", nil))
	if rec.Body.String() != "/own/x with timeout" || rec.Header().Get("X-Middleware") != "1" {
		t.Errorf("got %q, X-Middleware %q", rec.Body.String(), rec.Header().Get("X-Middleware"))
	}
	up := newUpstream(t, UpstreamOptions{Name: "u", Targets: []*url.URL{mustURL(t, "http://"+deadAddr(t))}})
	for _, ro := range []RouteOptions{
		{Name: "both", Handler: inner, Upstream: up},
		{Name: "strip", Handler: inner, StripPrefix: true, Path: "/x"},
		{Name: "neither"},
	} {
		if _, err := New(Options{Routes: []RouteOptions{ro}}); err == nil {
			t.Errorf("route %s: got no error", ro.Name)
		}
	}
}
