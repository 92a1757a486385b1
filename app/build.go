package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sort"

	"gateway/batch"
	"gateway/cache"
	"gateway/compress"
	"gateway/config"
	"gateway/internal/httpmethod"
	"gateway/proxy"
)

// build makes a generation from cfg: upstreams, routes with their
// limits, async, compression and cache middleware, the batch endpoint,
// the job queue's paths and the observability wrapper, with the shared
// resources res (Shared.prepare).
func (a *App) build(cfg *config.Config, res *resources) (*generation, error) {
	log := a.log
	g := &generation{cfg: cfg, upstreams: map[string]*proxy.Upstream{}}
	names := make([]string, 0, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		u, err := newUpstream(name, cfg.Upstreams[name], log)
		if err != nil {
			g.closeUpstreams()
			return nil, err
		}
		g.upstreams[name] = u
	}

	var trusted []netip.Prefix
	for _, s := range cfg.TrustedProxies {
		p, err := config.ParsePrefix(s)
		if err != nil {
			g.closeUpstreams()
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		trusted = append(trusted, p)
	}
	opts := proxy.Options{TrustedProxies: trusted, Logger: log}
	var composites []*batch.Composite
	var asyncs []*asyncSlot
	for _, r := range cfg.Routes {
		ro := proxy.RouteOptions{
			Name:        r.Name,
			Hosts:       r.Hosts,
			Path:        r.Path,
			Methods:     r.Methods,
			Upstream:    g.upstreams[r.Upstream],
			StripPrefix: r.StripPrefix,
			Timeout:     r.Timeout.D(),
			MaxBodySize: int64(r.MaxBodySize),
			Batchable:   r.Batchable,
			// Early data arrives over HTTP/3 only; see proxy/early.go.
			AllowEarlyData: r.Allow0RTT,
			WebSocket:      proxy.WebSocketOptions{MaxConnections: r.WebSocket.MaxConnections, IdleTimeout: r.WebSocket.IdleTimeout.D()},
			RateLimit:      rateLimitOptions(r.RateLimit),     // options.go
			Concurrency:    concurrencyOptions(r.Concurrency), // options.go
		}
		// A composite route is served by its handler instead of a proxy,
		// under the literal prefix of its {name} path.
		if co := compositeOptions(r); co != nil {
			co.Logger = log
			c, err := batch.NewComposite(*co)
			if err != nil {
				g.close()
				return nil, fmt.Errorf("route %s: %w", r.Name, err)
			}
			ro.Path, ro.Handler = c.Prefix(), c
			composites = append(composites, c)
		}
		// An async route queues outside everything else: its 202 is
		// neither compressed nor stored, and an attempt, which passes
		// through it, reaches the cache and the upstream as a client
		// request would.
		if r.Async != nil {
			slot := &asyncSlot{route: r} // jobs.go
			asyncs = append(asyncs, slot)
			ro.Middleware = append(ro.Middleware, slot.wrap)
		}
		// Compression wraps the cache: the cache serves hits already
		// encoded (each coding made once per entry), and what it
		// forwards is compressed as it streams.
		var comp *compress.Compressor
		if r.Compress.Enabled {
			co, err := compressOptions(r.Compress)
			if err == nil {
				comp, err = compress.New(co)
			}
			if err != nil {
				g.close()
				return nil, fmt.Errorf("route %s: compress: %w", r.Name, err)
			}
			if g.compressors == nil {
				g.compressors = map[string]*compress.Compressor{}
			}
			g.compressors[r.Name] = comp
			ro.Middleware = append(ro.Middleware, comp.Wrap)
		}
		if r.Cache.Enabled {
			mw, err := cacheRoute(res.cache, r, trusted, comp)
			if err != nil {
				g.close()
				return nil, fmt.Errorf("route %s: %w", r.Name, err)
			}
			ro.Middleware = append(ro.Middleware, mw)
		} else if res.cache != nil && ro.Handler == nil && mayWrite(r.Methods) {
			// A successful unsafe request must invalidate what the cache
			// stored for its URL (RFC 9111 4.4), also when it goes
			// through a route that does not cache, e.g. writes routed
			// apart from cached reads. OnUnsafe rather than Middleware:
			// safe requests skip it for a method check, and the route's
			// deadline stays armed as on any route without middleware.
			ro.OnUnsafe = res.cache.Invalidator
		}
		opts.Routes = append(opts.Routes, ro)
		g.early = g.early || r.Allow0RTT
	}
	h, err := proxy.New(opts)
	if err != nil {
		g.close()
		return nil, err
	}
	// Composite parts and batch items go through the same handler.
	for _, c := range composites {
		c.Bind(h)
	}
	var root http.Handler = h
	if cfg.Batch.Enabled {
		bo := batchOptions(cfg.Batch)
		bo.Logger = log
		if root, err = batch.New(bo, h); err != nil {
			g.close()
			return nil, err
		}
	}
	// The queue's paths (status, result, cancel) are taken before
	// routing, as batches are; kept while the queue is open, so that a
	// reload that drops the last async route leaves its jobs readable.
	if res.jobs != nil {
		root = res.jobs.Wrap(root)
	}
	// Early data in front of the routes (a batch, a job's cancel) is
	// refused by method, inside the observer so that it is logged. Only
	// HTTP/3 carries early data: without it, no request pays the check.
	if slices.ContainsFunc(cfg.Listeners, func(l config.Listener) bool { return l.HTTP3 }) {
		root = proxy.RefuseEarly(root)
	}
	if root, err = a.observeRoot(g, res, root, h, trusted); err != nil {
		g.close()
		return nil, err
	}
	// Last, as registering a route with the queue updates it at once:
	// a build that failed before leaves the queue as the serving
	// generation has it.
	for _, s := range asyncs {
		if err := s.register(res.jobs); err != nil {
			g.close()
			return nil, err
		}
	}
	g.handler, g.root = h, root
	return g, nil
}

func newUpstream(name string, c config.Upstream, log *slog.Logger) (*proxy.Upstream, error) {
	o, err := upstreamOptions(name, c) // options.go
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", name, err)
	}
	if o.TLSConfig, err = upstreamTLS(c.TLS); err != nil {
		return nil, fmt.Errorf("upstream %s: %w", name, err)
	}
	o.Logger = log
	return proxy.NewUpstream(o)
}

func upstreamTLS(c config.UpstreamTLS) (*tls.Config, error) {
	t := &tls.Config{
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // an operator's explicit choice
		MinVersion:         tls.VersionTLS12,
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificates", c.CAFile)
		}
	}
	return t, nil
}

// mayWrite reports whether a route with these methods (none: every
// method) takes an unsafe one.
func mayWrite(methods []string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, m := range methods {
		if !httpmethod.Safe(m) {
			return true
		}
	}
	return false
}

// cacheRoute builds the cache middleware of route r on the shared store c.
func cacheRoute(c *cache.Cache, r config.Route, trusted []netip.Prefix, comp *compress.Compressor) (proxy.Middleware, error) {
	rc := r.Cache
	heuristicMax := rc.HeuristicMax.D()
	if heuristicMax == 0 {
		heuristicMax = -1 // the config's 0 turns the heuristic off
	}
	rt, err := c.Route(cache.RouteOptions{
		Name:  r.Name,
		Hosts: r.Hosts,
		Key:   cacheKeyOptions(rc),
		Policy: cache.StoreOptions{
			AllowSetCookie: rc.AllowSetCookie,
			HeuristicMax:   heuristicMax,
		},
		StaleWhileRevalidate: rc.StaleWhileRevalidate.D(),
		StaleIfError:         rc.StaleIfError.D(),
		Grace:                rc.Grace.D(),
		HitForPass:           rc.HitForPass.D(),
		LockTimeout:          rc.LockTimeout.D(),
		TrustedPeer:          func(req *http.Request) bool { return proxy.TrustsPeer(trusted, req.RemoteAddr) },
		Compress:             cacheEncoder(comp),
		TargetedField:        rc.TargetedField,
		StripTargeted:        rc.StripTargeted,
		Slice:                int64(rc.Slice),
	})
	if err != nil {
		return nil, err
	}
	return rt.Wrap, nil
}

// cacheEncoder adapts a route's compressor to what the cache asks of it;
// nil when the route does not compress.
func cacheEncoder(c *compress.Compressor) cache.Encoder {
	if c == nil {
		return nil
	}
	return encoderAdapter{c}
}

type encoderAdapter struct{ *compress.Compressor }

func (encoderAdapter) ETag(etag, coding string) string { return compress.ETag(etag, coding) }
