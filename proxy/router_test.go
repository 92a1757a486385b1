package proxy

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// tagRoute is a middleware that names the route that took the request in
// a response header, so a test can see the router's choice end to end.
func tagRoute(name string) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Route", name)
			next.ServeHTTP(w, r)
		})
	}
}

// routingGateway serves the routes of the routing tests; the upstream
// echoes the request target it received in X-Upstream-URI.
func routingGateway(t *testing.T) (gw string, hits func() int64) {
	t.Helper()
	var n atomic.Int64
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("X-Upstream-URI", r.RequestURI)
		io.WriteString(w, "ok")
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	route := func(name string, o RouteOptions) RouteOptions {
		o.Name, o.Upstream, o.Middleware = name, u, []Middleware{tagRoute(name)}
		return o
	}
	h := newHandler(t, Options{Routes: []RouteOptions{
		// Listed least specific first: the order given must not matter.
		route("anyhost", RouteOptions{Path: "/hosts"}),
		route("wild", RouteOptions{Hosts: []string{"*.example.com"}, Path: "/"}),
		route("exact", RouteOptions{Hosts: []string{"api.example.com"}, Path: "/"}),
		route("api", RouteOptions{Path: "/api"}),
		route("apiv1", RouteOptions{Path: "/api/v1"}),
		route("files", RouteOptions{Path: "/files/"}),
		route("write", RouteOptions{Path: "/write", Methods: []string{"POST", "PUT"}}),
		route("apiread", RouteOptions{Path: "/api/read", Methods: []string{"GET", "HEAD"}}),
		route("rwget", RouteOptions{Path: "/rw", Methods: []string{"GET"}}),
		route("rwpost", RouteOptions{Path: "/rw", Methods: []string{"POST"}}),
		route("deepget", RouteOptions{Hosts: []string{"*.deep.test"}, Path: "/", Methods: []string{"GET"}}),
		route("deeperpost", RouteOptions{Hosts: []string{"*.x.deep.test"}, Path: "/", Methods: []string{"POST"}}),
		route("strip", RouteOptions{Hosts: []string{"strip.test"}, Path: "/api", StripPrefix: true}),
		route("admin", RouteOptions{Path: "/admin"}),
		route("public", RouteOptions{Path: "/public"}),
		route("mixed", RouteOptions{Hosts: []string{"www.shop.test", "*.shop.test"}, Path: "/"}),
		route("shopapi", RouteOptions{Hosts: []string{"*.shop.test"}, Path: "/api"}),
	}})
	return serveHandler(t, h).URL, n.Load
}

// TestRouting sends requests through the gateway and checks which route
// took each one, what the upstream received, and the statuses of requests
// no route takes.
func TestRouting(t *testing.T) {
	checkLeaks(t)
	gw, _ := routingGateway(t)
	c := newClient(t)
	tests := []struct {
		name      string
		method    string
		host      string // "" means gw.test, which no host-bound route names
		target    string
		wantCode  int
		wantRoute string
		wantURI   string // request target the upstream saw; "" means target
		wantAllow string
	}{
		{"exact host beats any host with a longer path", "GET", "api.example.com", "/hosts", 200, "exact", "", ""},
		{"wildcard beats any host", "GET", "a.example.com", "/hosts", 200, "wild", "", ""},
		{"wildcard takes deeper names", "GET", "a.b.example.com", "/hosts", 200, "wild", "", ""},
		{"wildcard does not take the bare domain", "GET", "example.com", "/hosts", 200, "anyhost", "", ""},
		{"bare domain has no other route", "GET", "example.com", "/nothing", 404, "", "", ""},
		{"suffix that is not a label boundary", "GET", "badexample.com", "/nothing", 404, "", "", ""},
		{"host with port and upper case", "GET", "API.Example.COM:8080", "/x", 200, "exact", "", ""},
		{"wildcard host with port and upper case", "GET", "A.B.EXAMPLE.COM:443", "/x", 200, "wild", "", ""},
		{"any host", "GET", "", "/hosts/x", 200, "anyhost", "", ""},
		// A route listing an exact and a wildcard host ranks by the one
		// that matched, not by its best.
		{"route's exact host", "GET", "www.shop.test", "/api/x", 200, "mixed", "", ""},
		{"route's wildcard host ranks as wildcard", "GET", "a.shop.test", "/api/x", 200, "shopapi", "", ""},

		{"prefix itself", "GET", "", "/api", 200, "api", "", ""},
		{"prefix with slash", "GET", "", "/api/", 200, "api", "", ""},
		{"below prefix", "GET", "", "/api/x", 200, "api", "", ""},
		{"prefix is segment-aware", "GET", "", "/apis", 404, "", "", ""},
		{"longest prefix wins", "GET", "", "/api/v1", 200, "apiv1", "", ""},
		{"longest prefix wins below it", "GET", "", "/api/v1/users", 200, "apiv1", "", ""},
		{"longer segment is not the longer prefix", "GET", "", "/api/v10", 200, "api", "", ""},
		{"prefix ending in slash is plain", "GET", "", "/files/a", 200, "files", "", ""},
		{"prefix ending in slash needs the slash", "GET", "", "/files", 404, "", "", ""},
		{"no route", "GET", "", "/nothing", 404, "", "", ""},
		{"query passes through", "GET", "", "/api/x?a=1&b=%2F", 200, "api", "", ""},

		{"allowed method", "POST", "", "/write", 200, "write", "", ""},
		{"other allowed method", "PUT", "", "/write/x", 200, "write", "", ""},
		{"other method", "GET", "", "/write", 405, "", "", "POST, PUT"},
		{"other method below prefix", "DELETE", "", "/write/x", 405, "", "", "POST, PUT"},
		// A route's methods restrict its path: another method does not go
		// on to the shorter prefix /api, which takes every method.
		{"methods are not bypassed by a shorter prefix", "POST", "", "/api/read/x", 405, "", "", "GET, HEAD"},
		{"shorter prefix still takes its own paths", "POST", "", "/api/x", 200, "api", "", ""},
		{"routes of one path share the methods: first", "GET", "", "/rw", 200, "rwget", "", ""},
		{"routes of one path share the methods: second", "POST", "", "/rw/x", 200, "rwpost", "", ""},
		{"routes of one path share the methods: neither", "DELETE", "", "/rw", 405, "", "", "GET, POST"},
		{"fully qualified host", "GET", "api.example.com.", "/x", 200, "exact", "", ""},
		// The longer wildcard is the more specific host, whatever the
		// order the routes are listed in; its methods then decide.
		{"longer wildcard wins", "POST", "a.x.deep.test", "/y", 200, "deeperpost", "", ""},
		{"longer wildcard's methods restrict it", "GET", "a.x.deep.test", "/y", 405, "", "", "POST"},
		{"shorter wildcard takes the rest", "GET", "a.deep.test", "/y", 200, "deepget", "", ""},
		{"fully qualified host under a wildcard", "GET", "a.example.com.:8080", "/x", 200, "wild", "", ""},

		{"strip prefix", "GET", "strip.test", "/api/users", 200, "strip", "/users", ""},
		{"strip prefix keeps query", "GET", "strip.test", "/api/users?q=1&r=a%20b", 200, "strip", "/users?q=1&r=a%20b", ""},
		{"strip whole path", "GET", "strip.test", "/api", 200, "strip", "/", ""},
		{"strip whole path with slash", "GET", "strip.test", "/api/", 200, "strip", "/", ""},
		{"strip whole path keeps query", "GET", "strip.test", "/api?x=1", 200, "strip", "/?x=1", ""},
		{"strip keeps escaping", "GET", "strip.test", "/api/a%2Fb", 200, "strip", "/a%2Fb", ""},
		{"strip route is segment-aware", "GET", "strip.test", "/apis", 404, "", "", ""},
		{"host-bound route beats a longer any-host prefix", "GET", "strip.test", "/api/v1/x", 200, "strip", "/v1/x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, gw+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			if req.Host == "" {
				req.Host = "gw.test"
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.target, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s (Host %s): got status %d %q; want %d", tt.method, tt.target, req.Host, resp.StatusCode, body, tt.wantCode)
			}
			if got := resp.Header.Get("X-Route"); got != tt.wantRoute {
				t.Errorf("route: got %q; want %q", got, tt.wantRoute)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow: got %q; want %q", got, tt.wantAllow)
			}
			if tt.wantCode != http.StatusOK {
				if got := resp.Header.Get("X-Upstream-URI"); got != "" {
					t.Errorf("upstream saw %q; want no request", got)
				}
				return
			}
			want := tt.wantURI
			if want == "" {
				want = tt.target
			}
			if got := resp.Header.Get("X-Upstream-URI"); got != want {
				t.Errorf("upstream request target: got %q; want %q", got, want)
			}
		})
	}
}

// TestRoutingDotSegments sends request lines Go's client would clean: dot
// segments must be resolved and slashes merged before routing, so
// "/public/../admin" is the admin route's and reaches the upstream as
// "/admin".
func TestRoutingDotSegments(t *testing.T) {
	checkLeaks(t)
	gw, hits := routingGateway(t)
	addr := strings.TrimPrefix(gw, "http://")
	tests := []struct {
		target    string
		wantCode  int
		wantRoute string
		wantURI   string
	}{
		{"/public/../admin", 200, "admin", "/admin"},
		{"/public/../admin/", 200, "admin", "/admin/"},
		{"/public/./../admin/x?y=1", 200, "admin", "/admin/x?y=1"},
		{"/public/%2e%2e/admin", 200, "admin", "/admin"},
		{"/public/x/../../admin", 200, "admin", "/admin"},
		{"/public/..", 404, "", ""},
		{"/../../admin", 200, "admin", "/admin"},
		{"/public/..hidden", 200, "public", "/public/..hidden"},
		{"/public/./x", 200, "public", "/public/x"},
		// Empty segments are merged: "//admin" is the admin route's.
		{"//admin/x", 200, "admin", "/admin/x"},
		{"/public//../admin", 200, "admin", "/admin"},
		{"/admin//x//", 200, "admin", "/admin/x/"},
		// With an escape in the path, slashes are left as sent: merging
		// the decoded path would make "%2F" a separator.
		{"/public/a%2F/b", 200, "public", "/public/a%2F/b"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			before := hits()
			resp, _ := rawRequest(t, addr, "GET "+tt.target+" HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("GET %s: got status %d; want %d", tt.target, resp.StatusCode, tt.wantCode)
			}
			if got := resp.Header.Get("X-Route"); got != tt.wantRoute {
				t.Errorf("GET %s: route got %q; want %q", tt.target, got, tt.wantRoute)
			}
			if got := resp.Header.Get("X-Upstream-URI"); got != tt.wantURI {
				t.Errorf("GET %s: upstream request target got %q; want %q", tt.target, got, tt.wantURI)
			}
			if tt.wantCode != http.StatusOK && hits() != before {
				t.Errorf("GET %s: upstream got %d requests; want 0", tt.target, hits()-before)
			}
		})
	}
}

// TestNewRejectsBadRoutes covers the validation New does on routes.
func TestNewRejectsBadRoutes(t *testing.T) {
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{mustURL(t, "http://127.0.0.1:1")}})
	for _, tt := range []struct {
		name string
		o    Options
	}{
		{"no routes", Options{}},
		{"no upstream", Options{Routes: []RouteOptions{{Path: "/"}}}},
		{"relative path", Options{Routes: []RouteOptions{{Path: "api", Upstream: u}}}},
		{"negative timeout", Options{Routes: []RouteOptions{{Upstream: u, Timeout: -1}}}},
		{"negative body size", Options{Routes: []RouteOptions{{Upstream: u, MaxBodySize: -1}}}},
		{"wildcard inside a name", Options{Routes: []RouteOptions{{Upstream: u, Hosts: []string{"a.*.com"}}}}},
		{"two wildcards", Options{Routes: []RouteOptions{{Upstream: u, Hosts: []string{"*.*.com"}}}}},
		{"empty host", Options{Routes: []RouteOptions{{Upstream: u, Hosts: []string{""}}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Logger = quiet()
			if h, err := New(tt.o); err == nil || h != nil {
				t.Errorf("New: got (%v, %v); want (nil, error)", h, err)
			}
		})
	}
}

// TestRequestHostPort: a Host with a port is taken apart as
// net.SplitHostPort takes it, whichever way requestHost goes.
func TestRequestHostPort(t *testing.T) {
	for _, host := range []string{
		"example.com", "example.com:8080", "Example.COM:80", "example.com.:443",
		"127.0.0.1:28601", "example.com:", ":80", "a:b:c", "[::1]:80", "[::1]",
		"x[y:80", "x]y:80", "::1", "[fe80::1%25eth0]:8443",
	} {
		want := host
		if strings.LastIndexByte(host, ':') >= 0 && !strings.HasSuffix(host, "]") {
			if h, _, err := net.SplitHostPort(host); err == nil {
				want = h
			}
		}
		want = strings.ToLower(strings.TrimSuffix(want, "."))
		if got := requestHost(&http.Request{Host: host}); got != want {
			t.Errorf("requestHost(%q) = %q; want %q", host, got, want)
		}
	}
}

// BenchmarkRouterMatch is the routing of one request: with routes for
// any host (the host is not looked at), and with routes by host.
func BenchmarkRouterMatch(b *testing.B) {
	up := &Upstream{}
	for _, c := range []struct {
		name  string
		hosts []string
	}{{"anyhost", nil}, {"byhost", []string{"*.example.com"}}} {
		b.Run(c.name, func(b *testing.B) {
			rt := newRouter([]*route{
				{path: "/api", upstream: up},
				{path: "/", hosts: c.hosts, upstream: up},
			})
			r, _ := http.NewRequest(http.MethodGet, "http://www.example.com:8080/cacheable", nil)
			b.ReportAllocs()
			for b.Loop() {
				if ro, _ := rt.match(r); ro == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}
