package proxy

import (
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
)

// router picks the most specific route for a request: an exact host
// beats a wildcard host (the longer wildcard the better), which beats any
// host; then the longest path
// prefix wins; then a route that names the method beats one that takes
// every method. Each host pattern of a route is its own entry, so a route
// listing "a.example.com" and "*.example.com" ranks as exact only for the
// exact name. The order is fixed at construction, so a lookup is a walk
// over a short, sorted slice with no allocation.
type router struct {
	entries []routeEntry
	// byHost: some route names hosts. Without one, no request's host
	// is looked at, and none is taken apart and lower-cased.
	byHost bool
}

type routeEntry struct {
	host string // "" any host, "*.example.com" wildcard, else exact
	rank int    // 2 exact, 1 wildcard, 0 any
	ro   *route
}

func newRouter(routes []*route) *router {
	var es []routeEntry
	for _, ro := range routes {
		if len(ro.hosts) == 0 {
			es = append(es, routeEntry{ro: ro})
		}
		for _, h := range ro.hosts {
			rank := 2
			if h[0] == '*' {
				rank = 1
			}
			es = append(es, routeEntry{host: h, rank: rank, ro: ro})
		}
	}
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.rank != b.rank {
			return a.rank > b.rank
		}
		// Of two wildcards that both take a name, the longer is the more
		// specific ("*.b.example.com" over "*.example.com"), as nginx
		// picks the longest: the host is chosen before the path.
		if a.rank == 1 && len(a.host) != len(b.host) {
			return len(a.host) > len(b.host)
		}
		if len(a.ro.path) != len(b.ro.path) {
			return len(a.ro.path) > len(b.ro.path)
		}
		return len(a.ro.methods) > 0 && len(b.ro.methods) == 0
	})
	rt := &router{entries: es}
	for _, e := range es {
		rt.byHost = rt.byHost || e.host != ""
	}
	return rt
}

// match returns the route for r, or, when routes match the host and path
// but none takes the method, nil and the methods that would be allowed.
// Only the routes of the most specific host and path that match compete
// on the method: a route's methods restrict its path, as nginx's
// limit_except does, and a request in another method does not go on to a
// less specific route (a catch-all "/"), which would bypass that route's
// limits and cache rules.
func (rt *router) match(r *http.Request) (*route, []string) {
	var host string
	if rt.byHost {
		host = requestHost(r)
	}
	var allow []string
	var first *routeEntry
	for i := range rt.entries {
		e := &rt.entries[i]
		if !matchHost(e.host, host) || !matchPrefix(r.URL.Path, e.ro.path) {
			continue
		}
		if first == nil {
			first = e
		} else if e.host != first.host || e.ro.path != first.ro.path {
			break
		}
		if e.ro.matchMethod(r.Method) {
			return e.ro, nil
		}
		if len(e.ro.methods) == 0 {
			allow = append(allow, defaultMethods...)
		} else {
			allow = append(allow, e.ro.methods...)
		}
	}
	return nil, allow
}

// requestHost is the Host without port, lower-cased only when needed.
func requestHost(r *http.Request) string {
	h := r.Host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
	}
	// "example.com." is the same name, fully qualified (nginx drops the
	// dot too); a route for the name must take it.
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// matchPrefix matches whole path segments: "/api" takes "/api" and
// "/api/x" but not "/apis"; a prefix ending in "/" is a plain prefix.
func matchPrefix(p, prefix string) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || prefix[len(prefix)-1] == '/' || p[len(prefix)] == '/'
}

// matchHost matches one host pattern: "" takes every host, and
// "*.example.com" takes "a.example.com" and "a.b.example.com", not
// "example.com" itself.
func matchHost(pattern, host string) bool {
	switch {
	case pattern == "":
		return true
	case pattern[0] == '*':
		return len(host) > len(pattern)-1 && strings.HasSuffix(host, pattern[1:])
	}
	return pattern == host
}

// defaultMethods are what a 405's Allow names for a route without
// methods: the usual ones (it takes any other too, but TRACE and TRACK).
var defaultMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

func (ro *route) matchMethod(m string) bool {
	if len(ro.methods) == 0 {
		// TRACE echoes the request it got, Cookie and Authorization
		// included, so a page that can make a browser send one reads
		// what the browser hides from it (cross-site tracing); TRACK is
		// the same on IIS. A route takes them only when its methods say
		// so, and otherwise they get 405, as from nginx.
		return m != http.MethodTrace && m != "TRACK"
	}
	for _, x := range ro.methods {
		if x == m {
			return true
		}
	}
	return false
}

// stripPrefix removes the route's prefix, keeping the path absolute.
func stripPrefix(p, prefix string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	p = strings.TrimPrefix(p, prefix)
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return p
}

// needsClean reports whether u's path has "." or ".." segments, or an
// empty one ("//"), which must be resolved before routing so that
// "/public/../admin" or "//admin" cannot reach a route other than the one
// the upstream takes it for: most servers resolve both, and nginx merges
// slashes before it picks a location, too. Slashes are merged only in a
// path without escapes: cleaning the decoded path would turn an encoded
// slash next to a real one ("/a%2F/b") into a separator, changing what
// the upstream is asked for.
func needsClean(u *url.URL) bool {
	return hasDotSegment(u.Path) || (u.RawPath == "" && strings.Contains(u.Path, "//"))
}

// hasDotSegment reports whether p contains "." or ".." segments.
func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || (i > 0 && p[i-1] != '/') {
			continue
		}
		j := i + 1
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}

// cleanPath resolves dot segments, merges slashes and keeps a trailing
// slash.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// RouteOf reports which route would serve r, without serving it: the
// route's name, whether it is batchable, and ok false when no route
// takes r (by host, path and method). r is not changed; its path is
// judged with dot segments resolved, as ServeHTTP does.
func (h *Handler) RouteOf(r *http.Request) (name string, batchable, ok bool) {
	ro, _ := h.router.match(pathResolved(r))
	if ro == nil {
		return "", false, false
	}
	return ro.name, ro.batchable, true
}

// AllowedMethods reports, when no route takes r only because of its
// method, the methods that would be taken, sorted and each once: the
// Allow of the 405 that ServeHTTP answers. It is nil when a route takes
// r or none matches its host and path (ServeHTTP's 404). r is not
// changed. A batch item asks this so that it fails as the same request
// sent alone would.
func (h *Handler) AllowedMethods(r *http.Request) []string {
	ro, allow := h.router.match(pathResolved(r))
	if ro != nil {
		return nil
	}
	return allowList(allow)
}

// allowList is the methods of a 405's Allow, sorted and each once (nil
// for none).
func allowList(methods []string) []string {
	if len(methods) == 0 {
		return nil
	}
	slices.Sort(methods)
	return slices.Compact(methods)
}

// pathResolved is r, or a copy of it with dot segments resolved as
// ServeHTTP resolves them before routing.
func pathResolved(r *http.Request) *http.Request {
	if !needsClean(r.URL) {
		return r
	}
	u := *r.URL
	u.Path, u.RawPath = cleanPath(u.Path), ""
	rr := *r
	rr.URL = &u
	return &rr
}
