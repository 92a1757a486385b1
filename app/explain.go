package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"gateway/admin"
	"gateway/cache"
	"gateway/config"
	"gateway/proxy"
)

// Explanation is cache.Explanation, for the command, which goes through
// this package rather than into the cache's.
type Explanation = cache.Explanation

// ErrNoRoute is Explain's error for a request that no route of the
// config takes.
var ErrNoRoute = errors.New("no route takes this request")

// errNotCaching is Explain's error for a route that does not cache.
var errNotCaching = errors.New("the route does not cache")

// Explain sends req through cfg's route logic to the route's real
// upstream, once, and says what the cache would do with the answer and
// why (cache.Explain). Nothing is stored or purged: the request goes
// with a plain client straight to the route's first target, with the
// route's prefix stripped as the proxy strips it, which is what the
// cache would have seen from the upstream, without the gateway's
// balancing, retries or compression around it.
func Explain(ctx context.Context, cfg *config.Config, req *http.Request) (cache.Explanation, error) {
	r, err := explainRoute(cfg, req)
	if err != nil {
		return cache.Explanation{}, err
	}
	if !r.Cache.Enabled {
		return cache.Explanation{}, fmt.Errorf("%w: route %s (routes[].cache.enabled)", errNotCaching, r.Name)
	}
	up, ok := cfg.Upstreams[r.Upstream]
	if !ok || len(up.Targets) == 0 {
		return cache.Explanation{}, fmt.Errorf("route %s has no upstream to ask", r.Name)
	}
	target := strings.TrimSuffix(up.Targets[0], "/")
	p := req.URL.EscapedPath()
	if r.StripPrefix {
		p = strings.TrimPrefix(p, strings.TrimSuffix(r.Path, "/"))
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
	}
	u := target + p
	if req.URL.RawQuery != "" {
		u += "?" + req.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(ctx, req.Method, u, nil)
	if err != nil {
		return cache.Explanation{}, err
	}
	out.Header = req.Header.Clone()
	out.Host = req.Host
	client := &http.Client{
		Timeout: 30 * time.Second,
		// The cache sees a redirect as the upstream sent it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(out)
	if err != nil {
		return cache.Explanation{}, fmt.Errorf("route %s: upstream: %w", r.Name, err)
	}
	defer resp.Body.Close()
	max := int64(cfg.Cache.MaxObjectSize)
	// One byte over the limit is enough to know it is too large.
	size, err := io.Copy(io.Discard, io.LimitReader(resp.Body, max+1))
	if err != nil {
		return cache.Explanation{}, fmt.Errorf("route %s: upstream body: %w", r.Name, err)
	}
	if resp.Header.Get("Date") == "" {
		// As the cache does before storing (RFC 9110 6.6.1).
		resp.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	heuristicMax := r.Cache.HeuristicMax.D()
	if heuristicMax == 0 {
		heuristicMax = -1 // the config's 0 turns the heuristic off
	}
	return cache.Explain(cache.RouteOptions{
		Name:  r.Name,
		Hosts: r.Hosts,
		Key:   cacheKeyOptions(r.Cache),
		Policy: cache.StoreOptions{
			AllowSetCookie: r.Cache.AllowSetCookie,
			HeuristicMax:   heuristicMax,
		},
		StaleWhileRevalidate: r.Cache.StaleWhileRevalidate.D(),
		StaleIfError:         r.Cache.StaleIfError.D(),
		Grace:                r.Cache.Grace.D(),
		TargetedField:        r.Cache.TargetedField,
	}, req, resp, size, max)
}

// explainRoute is the config route the proxy's router would pick for
// req, found by that router itself so that the rules are the same.
func explainRoute(cfg *config.Config, req *http.Request) (config.Route, error) {
	opts := proxy.Options{}
	// Each route is given a stand-in handler: only the choice of route
	// is wanted, not an upstream.
	stub := http.NotFoundHandler()
	for _, r := range cfg.Routes {
		if r.Composite != nil {
			continue // a composite route is answered by the gateway, not cached from an upstream
		}
		opts.Routes = append(opts.Routes, proxy.RouteOptions{
			Name: r.Name, Hosts: r.Hosts, Path: r.Path, Methods: r.Methods, Handler: stub,
		})
	}
	h, err := proxy.New(opts)
	if err != nil {
		return config.Route{}, err
	}
	name, _, ok := h.RouteOf(req)
	if !ok {
		return config.Route{}, fmt.Errorf("%w: %s %s (host %s)", ErrNoRoute, req.Method, req.URL.Path, req.Host)
	}
	for _, r := range cfg.Routes {
		if r.Name == name {
			return r, nil
		}
	}
	return config.Route{}, fmt.Errorf("%w: %s", ErrNoRoute, name)
}

// ExplainCache implements admin.Backend: Explain for a GET of rawURL
// under the config now serving.
func (a *App) ExplainCache(ctx context.Context, rawURL string, header http.Header) (cache.Explanation, error) {
	if a.shared.Cache() == nil {
		return cache.Explanation{}, admin.ErrDisabled
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return cache.Explanation{}, fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	}
	req.Header = header.Clone()
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	ex, err := Explain(ctx, a.gen.Load().cfg, req)
	if errors.Is(err, ErrNoRoute) || errors.Is(err, errNotCaching) {
		return ex, fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	}
	return ex, err
}
