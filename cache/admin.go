package cache

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// AdminHandler serves the cache's operator endpoints:
//
//	GET  /cache/stats                 totals and per-route counters (JSON)
//	GET  /cache/stats?route=NAME      one route's counters
//	POST /cache/purge?url=URL         every stored variant of URL
//	POST /cache/purge?path=/P?Q       every stored variant of /P?Q, on every host
//	POST /cache/purge?prefix=URL      everything under a URL prefix
//	POST /cache/purge?prefix=/P       everything under a path prefix, on every host
//	POST /cache/purge?tag=TAG         everything tagged TAG (exact match)
//	POST /cache/purge?all=true        everything
//
// Add soft=true to a purge to mark entries stale instead of removing them,
// so that stale-if-error can still serve them while the origin is down.
// URLs are absolute (http://host/path?query), as clients request them;
// route=NAME narrows a path or a path prefix to that route's hosts. A
// purge that touches nothing says why ("reason").
// The gateway's admin listener serves the same endpoints itself (package
// admin) from Stats, ParsePurge and Purge.
func (c *Cache) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cache/stats", c.serveStats)
	mux.HandleFunc("POST /cache/purge", c.servePurge)
	return mux
}

func (c *Cache) serveStats(w http.ResponseWriter, r *http.Request) {
	total, routes := c.Stats()
	if name := r.URL.Query().Get("route"); name != "" {
		s, ok := routes[name]
		if !ok {
			httpError(w, http.StatusNotFound, "no cached route named "+name)
			return
		}
		writeJSON(w, http.StatusOK, s)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Stats
		Routes map[string]RouteStats `json:"routes"`
	}{total, routes})
}

func (c *Cache) servePurge(w http.ResponseWriter, r *http.Request) {
	p, err := ParsePurge(r.URL.Query())
	var res PurgeResult
	if err == nil {
		res, err = c.PurgeExplained(r.Context(), p)
	}
	switch {
	case errors.Is(err, ErrStore):
		writeJSON(w, http.StatusInternalServerError, map[string]any{"purged": res.Purged, "soft": p.Soft, "error": err.Error()})
	case err != nil:
		httpError(w, http.StatusBadRequest, err.Error())
	case res.Reason != "":
		writeJSON(w, http.StatusOK, map[string]any{"purged": res.Purged, "soft": p.Soft, "reason": res.Reason})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"purged": res.Purged, "soft": p.Soft})
	}
}

// Purge names what to purge: exactly one of URL, Path, Prefix, Tag and
// All, and for Path or a path Prefix optionally the Route whose hosts
// narrow it.
type Purge struct {
	// URL purges every stored variant of an absolute http or https URL.
	URL string
	// Path purges every stored variant of a path and query ("/x",
	// "/x?a=1": the query as given, under each route's key rules, not
	// every query) under every host, or under Route's hosts.
	Path string
	// Prefix purges everything under an absolute URL prefix, or, when it
	// starts with "/", under a path prefix on every host (or Route's).
	// A prefix has no query.
	Prefix string
	// Route narrows Path or a path Prefix to the hosts of the cached
	// route of that name (every host when the route names none).
	Route string
	// Tag purges everything tagged Tag (Surrogate-Key, Cache-Tag), exact
	// match.
	Tag string
	// All purges everything.
	All bool
	// Soft marks entries stale instead of removing them, so that
	// stale-if-error can still serve them while the origin is down.
	Soft bool
}

// errTargets is the error of a purge that names not exactly one target.
const errTargets = purgeError("give exactly one of url, path, prefix, tag or all")

// ParsePurge reads a purge from the admin endpoint's query parameters
// (url, path, prefix, route, tag, all=true, soft=true) and checks it: a
// Purge it returns without error is one Cache.Purge accepts, but for a
// route name it does not know. Its errors are the client's to fix.
func ParsePurge(q url.Values) (Purge, error) {
	var p Purge
	switch v := q.Get("soft"); v {
	case "", "false", "0":
	case "true", "1":
		p.Soft = true
	default:
		return Purge{}, errors.New("soft: want true or false")
	}
	set := 0
	for _, k := range [...]string{"url", "path", "prefix", "tag", "all"} {
		if q.Has(k) {
			set++
		}
	}
	if set != 1 {
		return Purge{}, errTargets
	}
	if q.Has("route") {
		if p.Route = q.Get("route"); p.Route == "" {
			return Purge{}, errors.New("route: empty")
		}
	}
	switch {
	case q.Has("tag"):
		if p.Tag = q.Get("tag"); p.Tag == "" {
			return Purge{}, errors.New("tag: empty")
		}
	case q.Has("all"):
		if v := q.Get("all"); v != "true" && v != "1" {
			return Purge{}, errors.New("all: want true")
		}
		p.All = true
	case q.Has("prefix"):
		if p.Prefix = q.Get("prefix"); p.Prefix == "" {
			_, err := parsePurgeURL("", true)
			return Purge{}, err
		}
	case q.Has("path"):
		if p.Path = q.Get("path"); p.Path == "" {
			_, err := parsePurgePath("", false)
			return Purge{}, err
		}
	default:
		if p.URL = q.Get("url"); p.URL == "" {
			_, err := parsePurgeURL("", false)
			return Purge{}, err
		}
	}
	if err := p.check(); err != nil {
		return Purge{}, err
	}
	return p, nil
}

// check reports what is wrong with p: not exactly one target, a URL
// that is not absolute, a path that does not start with "/", a prefix
// with a query, a route with anything but a path or a path prefix.
func (p Purge) check() error {
	set := 0
	for _, b := range [...]bool{p.URL != "", p.Path != "", p.Prefix != "", p.Tag != "", p.All} {
		if b {
			set++
		}
	}
	if set != 1 {
		return errTargets
	}
	if p.Route != "" && !p.byPath() {
		return purgeError("route: narrows only a purge by path or by a prefix starting with /")
	}
	var err error
	switch {
	case p.URL != "":
		_, err = parsePurgeURL(p.URL, false)
	case p.Path != "":
		_, err = parsePurgePath(p.Path, false)
	case p.Prefix != "" && p.byPath():
		_, err = parsePurgePath(p.Prefix, true)
	case p.Prefix != "":
		_, err = parsePurgeURL(p.Prefix, true)
	}
	return err
}

// byPath reports whether p purges by path, under every host.
func (p Purge) byPath() bool { return p.Path != "" || strings.HasPrefix(p.Prefix, "/") }

// parsePurgePath parses the path (and query, but for a prefix) of a
// purge by path.
func parsePurgePath(raw string, prefix bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || u.Scheme != "" || u.Host != "" || u.Fragment != "" {
		return nil, purgeError("want a path starting with / (and, but for a prefix, its query)")
	}
	if prefix && (u.RawQuery != "" || u.ForceQuery) {
		return nil, purgeError("prefix: a prefix has no query")
	}
	return u, nil
}

// parsePurgeURL parses the absolute URL of a purge by url or prefix.
func parsePurgeURL(raw string, prefix bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, purgeError("want an absolute http or https URL")
	}
	if prefix && u.RawQuery != "" {
		return nil, purgeError("prefix: a prefix has no query")
	}
	return u, nil
}

// Purge removes what p names, or marks it stale when p.Soft, and
// returns how many entries it touched. An error wrapping ErrStore is the
// store's; any other (a URL that is not absolute, a prefix with a query,
// not exactly one target, a route no cached route is named) is the
// caller's to fix, and nothing was purged then.
func (c *Cache) Purge(ctx context.Context, p Purge) (int, error) {
	n, _, _, err := c.purge(ctx, p)
	return n, err
}

// Purge scopes (PurgeResult.Scope).
const (
	// ScopeCluster: the purge reached the shared tier, and through it
	// every process that shares it.
	ScopeCluster = "cluster"
	// ScopeLocal: the purge reached this process's memory only; the
	// shared tier could not be reached, so other processes were not told.
	ScopeLocal = "local"
)

// Why a purge stayed local (PurgeResult.ScopeReason).
const (
	reasonTierDown = "shared tier unreachable: purged in this process only, other replicas were not told"
	reasonNoPaths  = "purge by path: no URL of the path is in this replica's memory, so nothing was sent to the shared tier or the other replicas; purge by url, by a prefix with the host, or by tag"
)

// purge is Purge, and the scope of the purge when the store is shared
// ("" when it is not) with the reason of a local one.
func (c *Cache) purge(ctx context.Context, p Purge) (int, string, string, error) {
	if err := p.check(); err != nil {
		return 0, "", "", err
	}
	sent := true // something was sent to the store
	c.advancePurgeGen()
	var n int
	var err error
	switch {
	case p.Tag != "":
		n, err = c.store.PurgeTag(ctx, p.Tag, p.Soft)
	case p.All:
		n, err = c.store.PurgeAll(ctx, p.Soft)
	case p.byPath():
		urls, _, perr := c.pathURLs(ctx, p)
		if perr != nil {
			return 0, "", "", perr
		}
		// The URLs come from this process's memory (a shared store
		// lists none): with none, nothing reaches the others.
		sent = len(urls) > 0
		for _, u := range urls {
			k, e := c.store.PurgeURL(ctx, u, p.Soft)
			n += k
			err = errors.Join(err, e)
		}
	default:
		prefix := p.Prefix != ""
		raw := p.URL
		if prefix {
			raw = p.Prefix
		}
		parts, perr := c.urlParts(raw, prefix)
		if perr != nil {
			return 0, "", "", perr
		}
		for _, part := range parts {
			var k int
			var e error
			if prefix {
				k, e = c.store.PurgePrefix(ctx, part, p.Soft)
			} else {
				k, e = c.store.PurgeURL(ctx, part, p.Soft)
			}
			n += k
			err = errors.Join(err, e)
		}
	}
	scope, reason := "", ""
	if sh, ok := c.store.(interface{ SharesPurges() bool }); ok && sh.SharesPurges() {
		scope = ScopeCluster
		if !sent {
			scope, reason = ScopeLocal, reasonNoPaths
		}
	}
	var second error
	err, second = splitSecondTier(err)
	if second != nil {
		c.storeFailed("purge", second)
		scope, reason = ScopeLocal, reasonTierDown
	}
	if err != nil {
		// Some of it may be done: n says how much, the error that it is
		// not all.
		c.storeFailed("purge", err)
		return n, scope, reason, fmt.Errorf("%w: %w", ErrStore, err)
	}
	return n, scope, reason, nil
}

// splitSecondTier separates the SecondTierErrors in err (a join of
// several, or one) from the others.
func splitSecondTier(err error) (rest, second error) {
	if err == nil {
		return nil, nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var r, s []error
	for _, e := range errs {
		var st *SecondTierError
		if errors.As(e, &st) {
			s = append(s, st.Err)
		} else {
			r = append(r, e)
		}
	}
	return errors.Join(r...), errors.Join(s...)
}

// advancePurgeGen starts a purge: fills under way will not store what
// they fetched (see handler.store).
func (c *Cache) advancePurgeGen() {
	c.purgeMu.Lock()
	c.purgeGen.Add(1)
	c.purgeMu.Unlock()
}

// urlGenShards is how many counters urlGen spreads URLs over: a purge
// of one URL keeps the fills of 1/urlGenShards of the others from
// storing, not all of them.
const urlGenShards = 256

var urlGenSeed = maphash.MakeSeed()

func urlGenShard(urlPart string) int { return int(maphash.String(urlGenSeed, urlPart) % urlGenShards) }

// advanceURLGen starts a purge of the URL part u alone: the fills under
// way of u (and of the URLs sharing its counter) will not store.
func (c *Cache) advanceURLGen(u string) {
	c.purgeMu.Lock()
	c.urlGen[urlGenShard(u)].Add(1)
	c.purgeMu.Unlock()
}

// purgeMark is where the purges stood when a fill of a key began.
type purgeMark struct{ all, url uint64 }

// purgeMarkOf is the purge mark of primary now.
func (c *Cache) purgeMarkOf(primary string) purgeMark {
	return purgeMark{c.purgeGen.Load(), c.urlGen[urlGenShard(URLPart(primary))].Load()}
}

// ApplyPurge applies a purge another process made in the shared tier to
// this process's own tier (TieredStore.PurgeFirst), or to the whole
// store when it is not tiered. Fills under way do not store after it.
func (c *Cache) ApplyPurge(ctx context.Context, kind PurgeKind, value string, soft bool) (int, error) {
	if kind == PurgeKindURL {
		c.advanceURLGen(value)
	} else {
		c.advancePurgeGen()
	}
	if t, ok := c.store.(interface {
		PurgeFirst(context.Context, PurgeKind, string, bool) (int, error)
	}); ok {
		return t.PurgeFirst(ctx, kind, value, soft)
	}
	return PurgeStore(ctx, c.store, kind, value, soft)
}

// PurgeResult is what a purge did: the entries it touched and, when it
// touched none, why (see Cache.Explain). Scope is ScopeCluster or
// ScopeLocal when the store is shared with other processes, and
// ScopeReason says why a purge stayed local.
type PurgeResult struct {
	Purged      int
	Reason      string
	Scope       string
	ScopeReason string
}

// PurgeExplained is Purge, with the reason of a purge that touched
// nothing and the purge's scope.
func (c *Cache) PurgeExplained(ctx context.Context, p Purge) (PurgeResult, error) {
	n, scope, reason, err := c.purge(ctx, p)
	res := PurgeResult{Purged: n, Scope: scope, ScopeReason: reason}
	if err == nil && n == 0 {
		res.Reason = c.Explain(ctx, p)
		if scope == ScopeCluster {
			res.Reason += " in this replica's memory; the purge went to the shared tier and every replica"
		}
	}
	return res, err
}

// Explain says why a purge of p touches nothing, for an operator: the
// hosts the same path is stored under when the URL (or the route's
// hosts) missed them, or that nothing is stored under the path, the tag
// or at all. It reads the store without changing it; a store that fails
// gets the plain answer.
func (c *Cache) Explain(ctx context.Context, p Purge) string {
	switch {
	case p.Tag != "":
		return "nothing stored is tagged " + p.Tag
	case p.All:
		return "nothing stored"
	}
	what := "that path"
	if p.Prefix != "" {
		what = "that prefix"
	}
	nothing := "nothing stored under " + what
	if p.byPath() {
		if p.Route == "" {
			return nothing
		}
		_, others, err := c.pathURLs(ctx, p)
		if err != nil || len(others) == 0 {
			return nothing
		}
		return fmt.Sprintf("nothing stored under %s for the hosts of route %s; entries exist under %s", what, p.Route, hostList(others, "http"))
	}
	raw := p.URL
	if raw == "" {
		raw = p.Prefix
	}
	u, err := parsePurgeURL(raw, p.Prefix != "")
	if err != nil {
		return nothing
	}
	q := Purge{Path: u.RequestURI()}
	if p.Prefix != "" {
		q = Purge{Prefix: u.EscapedPath()}
	}
	urls, _, err := c.pathURLs(ctx, q)
	if err != nil || len(urls) == 0 {
		return nothing
	}
	return fmt.Sprintf("no entry for %s; entries exist under %s", raw, hostList(urls, u.Scheme))
}

// hostList names the hosts of URL parts for an explanation: "host H" or
// "hosts H1, H2", each with its scheme when that is not scheme.
func hostList(urls []string, scheme string) string {
	var hosts []string
	for _, u := range urls {
		sch, rest, _ := strings.Cut(u, "\x00")
		h, _, _ := strings.Cut(rest, "\x00")
		if sch != scheme {
			h = sch + "://" + h
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	if len(hosts) == 1 {
		return "host " + hosts[0]
	}
	return "hosts " + strings.Join(hosts, ", ")
}

// pathURLs lists the stored URL parts a purge by path (p.Path or a path
// p.Prefix) touches: the path under each route's key rules (or the named
// route's), on every host the route serves. others are those of the
// path stored under hosts the route does not serve.
func (c *Cache) pathURLs(ctx context.Context, p Purge) (urls, others []string, err error) {
	c.mu.Lock()
	routes := append([]*Route(nil), c.routes...)
	c.mu.Unlock()
	if p.Route != "" {
		i := slices.IndexFunc(routes, func(rt *Route) bool { return rt.name == p.Route })
		if i < 0 {
			return nil, nil, purgeError("no cached route named " + p.Route)
		}
		routes = routes[i : i+1]
	}
	prefix := p.Path == ""
	raw := p.Path
	if prefix {
		raw = p.Prefix
	}
	u, err := parsePurgePath(raw, prefix)
	if err != nil {
		return nil, nil, err
	}
	var parts []string
	if prefix {
		parts = []string{string(appendEscaped(nil, u.EscapedPath()))}
	} else {
		req := &http.Request{Method: http.MethodGet, URL: u, Host: "h", Header: http.Header{}}
		for _, rt := range routes {
			if part := PathPart(URLPart(rt.keyer.Key(req))); !slices.Contains(parts, part) {
				parts = append(parts, part)
			}
		}
	}
	var found []string
	for _, part := range parts {
		us, err := c.store.PathURLs(ctx, part, prefix)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrStore, err)
		}
		for _, u := range us {
			if !slices.Contains(found, u) {
				found = append(found, u)
			}
		}
	}
	if p.Route == "" {
		return found, nil, nil
	}
	for _, u := range found {
		if servesHost(routes[0].o.Hosts, urlHost(u)) {
			urls = append(urls, u)
		} else {
			others = append(others, u)
		}
	}
	return urls, others, nil
}

// urlHost returns the host name of a URL part, lowercased as keys have
// it, without its port.
func urlHost(urlPart string) string {
	_, rest, _ := strings.Cut(urlPart, "\x00")
	h, _, _ := strings.Cut(rest, "\x00")
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

// servesHost reports whether a route with these hosts (exact, or
// "*.example.com" for any subdomain; none: every host) serves host, as
// the router matches them.
func servesHost(hosts []string, host string) bool {
	if len(hosts) == 0 {
		return true
	}
	for _, pat := range hosts {
		pat = strings.ToLower(pat)
		if suffix, ok := strings.CutPrefix(pat, "*"); ok {
			if len(host) > len(suffix) && strings.HasSuffix(host, suffix) {
				return true
			}
		} else if pat == host {
			return true
		}
	}
	return false
}

// ErrStore marks a purge the store failed, in part or in whole; the
// count returned with it is what was done. Any other error of Purge is
// the caller's to fix.
var ErrStore = errors.New("cache: the store failed")

type purgeError string

func (e purgeError) Error() string { return string(e) }

// urlParts turns an absolute URL into the URL parts of the keys each
// cached route would store it under (routes may ignore different query
// parameters). For a prefix the part stops after the path, so that it is
// a byte prefix of every key below it.
func (c *Cache) urlParts(raw string, prefix bool) ([]string, error) {
	u, err := parsePurgeURL(raw, prefix)
	if err != nil {
		return nil, err
	}
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
	if u.Scheme == "https" {
		req.TLS = &tls.ConnectionState{}
	}
	c.mu.Lock()
	routes := append([]*Route(nil), c.routes...)
	c.mu.Unlock()
	var parts []string
	for _, rt := range routes {
		p := URLPart(rt.keyer.Key(req))
		if prefix {
			// The key ends with an empty query component: drop its
			// separator so that "/api/" also matches "/api/x?y".
			p = strings.TrimSuffix(p, "\x00")
		}
		dup := false
		for _, q := range parts {
			dup = dup || q == p
		}
		if !dup {
			parts = append(parts, p)
		}
	}
	return parts, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
