package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gateway/admin"
	"gateway/batch"
	"gateway/cache"
	"gateway/compress"
	"gateway/config"
	"gateway/entrypoint"
	"gateway/gcfloor"
	"gateway/internal/httpmethod"
	"gateway/metrics"
	"gateway/proxy"
)

// app is one running gateway: the client listeners, the admin listener
// and the current generation of what the config builds below them
// (upstreams, routes, limits, compression, metrics, access log), which a
// reload replaces (app_reload.go). The cache store is shared by every
// generation, so a reload keeps its entries. The root package (app*.go)
// and config's option methods are where the config is mapped into each
// package's options.
type App struct {
	cfg     *config.Config // the config the listeners were built from
	log     *slog.Logger
	server  *entrypoint.Group
	admin   *http.Server
	adminLn net.Listener
	// health serves only /healthz and /readyz (admin.health_address).
	health   *http.Server
	healthLn net.Listener
	cache    *cache.Cache // nil until a route caches
	// metrics outlive generations, so counters survive reloads
	// (app_observe.go); nil when the admin listener is off.
	metrics *metrics.Metrics

	stdout, stderr io.Writer // where access_log.output stdout and stderr go
	gen            atomic.Pointer[generation]
	draining       atomic.Bool // the shutdown has begun (Ready says so)
	started        time.Time   // when New ran, for the admin status
	version        string      // Options.Version
	reload         reloader    // reload.go

	serving  atomic.Bool   // Serve has begun, or Shutdown came first
	stop     chan struct{} // closed by Shutdown: Serve drains and returns
	stopOnce sync.Once
	served   chan struct{} // closed when Serve has returned
}

// generation is what one config builds below the listeners.
type generation struct {
	cfg       *config.Config
	upstreams map[string]*proxy.Upstream
	// compressors by route name, for /compress/stats.
	compressors map[string]*compress.Compressor
	obs         observability // access log and metrics (app_observe.go)
	handler     *proxy.Handler
	root        http.Handler
	life        genLife // in-flight count and retirement (app_reload.go)
	// seq numbers the generations from 1; loaded is when g began to
	// serve (the admin status).
	seq    uint64
	loaded time.Time
}

// Options are what New takes besides the config.
type Options struct {
	// Logger is the gateway's own log; nil means slog.Default().
	Logger *slog.Logger
	// Stdout and Stderr are where access_log.output's "stdout" and
	// "stderr" go; nil means os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// ConfigPath is the file Reload reads the config from again; empty
	// for a config that came from no file, which Reload then refuses.
	ConfigPath string
	// Version is what /api/v1/status and gateway_build_info report.
	Version string
}

// New builds the gateway cfg describes, without binding any socket:
// its first generation, its entrypoints and its admin listeners.
func New(cfg *config.Config, o Options) (*App, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	return newAppIO(cfg, o)
}

// newApp is New for the tests, with the process's stdout and stderr.
func newApp(cfg *config.Config, log *slog.Logger) (*App, error) {
	return New(cfg, Options{Logger: log})
}

func newAppIO(cfg *config.Config, o Options) (*App, error) {
	log := o.Logger
	a := &App{cfg: cfg, log: log, stdout: o.Stdout, stderr: o.Stderr, started: time.Now(), version: o.Version,
		stop: make(chan struct{}), served: make(chan struct{})}
	a.reload.path = o.ConfigPath
	applyGCFloor(cfg, log)
	a.newMetrics(cfg)
	g, err := a.build(cfg)
	if err != nil {
		a.close()
		return nil, err
	}
	g.activateObservability()
	g.stamp(nil, a.started)
	a.gen.Store(g)

	var ls []entrypoint.Options
	for _, l := range cfg.Listeners {
		ls = append(ls, entrypoint.Options{
			Address:           l.Address,
			CertFile:          l.TLS.CertFile,
			KeyFile:           l.TLS.KeyFile,
			H2C:               l.H2C,
			ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
			ReadTimeout:       l.ReadTimeout.D(),
			WriteTimeout:      l.WriteTimeout.D(),
			IdleTimeout:       l.IdleTimeout.D(),
			MaxHeaderBytes:    int(l.MaxHeaderBytes),
		})
	}
	// Upgraded connections (WebSocket) outlive http.Server's tracking;
	// the entrypoints' requests carry this set, and the shutdown drains
	// it after the entrypoints.
	tunnels := proxy.NewTunnels()
	if a.server, err = entrypoint.NewGroup(http.HandlerFunc(a.serveHTTP), ls, entrypoint.GroupOptions{
		BaseContext: tunnels.Context(context.Background()),
		Drain:       tunnels.Shutdown,
		Logger:      log,
	}); err != nil {
		a.close()
		return nil, err
	}
	if cfg.Admin.Enabled() {
		// The app is the admin endpoints' Backend (app_admin.go);
		// metrics are there whenever the admin listener is.
		ah, err := admin.New(admin.Options{
			Address: cfg.Admin.Address,
			Token:   cfg.Admin.Token,
			Backend: a,
			Metrics: a.metrics.Handler(),
		})
		if err != nil {
			a.close()
			return nil, err
		}
		a.admin = adminServer(cfg.Admin.Address, ah, log)
	}
	if cfg.Admin.HealthAddress != "" {
		a.health = adminServer(cfg.Admin.HealthAddress, admin.Health(func() (bool, any) { return a.Ready(context.Background()) }), log)
	}
	return a, nil
}

// applyGCFloor sets the process's GC floor from cfg (at start and on
// every reload; the runtime's setting is process-wide).
func applyGCFloor(cfg *config.Config, log *slog.Logger) {
	if !gcfloor.Set(int64(cfg.GCHeapFloor)) && cfg.GCHeapFloor > 0 {
		log.Info("gc_heap_floor not applied: GOGC is set in the environment", "GOGC", os.Getenv("GOGC"))
	}
}

// adminServer is the server of the admin listener and of the health
// one: operators' and probes' requests, short and few.
func adminServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// build makes a generation from cfg: upstreams, routes with their
// limits, compression and cache middleware, the batch endpoint and the
// observability wrapper. The cache store is a's, made on first use.
func (a *App) build(cfg *config.Config) (_ *generation, err error) {
	log := a.log
	g := &generation{cfg: cfg, upstreams: map[string]*proxy.Upstream{}}
	// A store this build creates (the first config with a cached route)
	// goes again when the build fails: a rejected reload must not leave a
	// cache sized by its config behind for the next one.
	if a.cache == nil {
		defer func() {
			if err != nil && a.cache != nil {
				a.cache.Close()
				a.cache = nil
				if a.metrics != nil {
					a.metrics.SetCache(nil)
				}
			}
		}()
	}
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
	// The store exists before any route is built, so that routes without
	// a cache, built before the first one that caches, invalidate it too.
	for _, r := range cfg.Routes {
		if r.Cache.Enabled {
			if err := a.openCache(cfg); err != nil {
				g.close()
				return nil, fmt.Errorf("route %s: %w", r.Name, err)
			}
			break
		}
	}
	var composites []*batch.Composite
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
			WebSocket:   proxy.WebSocketOptions{MaxConnections: r.WebSocket.MaxConnections, IdleTimeout: r.WebSocket.IdleTimeout.D()},
			RateLimit:   rateLimitOptions(r.RateLimit),     // app_limits.go
			Concurrency: concurrencyOptions(r.Concurrency), // app_limits.go
		}
		// A composite route is served by its handler instead of a proxy,
		// under the literal prefix of its {name} path.
		if co := r.CompositeOptions(); co != nil {
			co.Logger = log
			c, err := batch.NewComposite(*co)
			if err != nil {
				g.close()
				return nil, fmt.Errorf("route %s: %w", r.Name, err)
			}
			ro.Path, ro.Handler = c.Prefix(), c
			composites = append(composites, c)
		}
		// Compression wraps the cache: the cache serves hits already
		// encoded (each coding made once per entry), and what it
		// forwards is compressed as it streams.
		var comp *compress.Compressor
		if r.Compress.Enabled {
			co, err := r.Compress.Options()
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
			mw, err := a.cacheRoute(r, trusted, comp)
			if err != nil {
				g.close()
				return nil, fmt.Errorf("route %s: %w", r.Name, err)
			}
			ro.Middleware = append(ro.Middleware, mw)
		} else if a.cache != nil && ro.Handler == nil && mayWrite(r.Methods) {
			// A successful unsafe request must invalidate what the cache
			// stored for its URL (RFC 9111 4.4), also when it goes
			// through a route that does not cache, e.g. writes routed
			// apart from cached reads. OnUnsafe rather than Middleware:
			// safe requests skip it for a method check, and the route's
			// deadline stays armed as on any route without middleware.
			ro.OnUnsafe = a.cache.Invalidator
		}
		opts.Routes = append(opts.Routes, ro)
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
		bo := cfg.Batch.Options()
		bo.Logger = log
		if root, err = batch.New(bo, h); err != nil {
			g.close()
			return nil, err
		}
	}
	if root, err = a.observeRoot(g, root, h, trusted); err != nil {
		g.close()
		return nil, err
	}
	g.handler, g.root = h, root
	return g, nil
}

func newUpstream(name string, c config.Upstream, log *slog.Logger) (*proxy.Upstream, error) {
	var targets []*url.URL
	for _, t := range c.Targets {
		u, err := url.Parse(t)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", name, err)
		}
		targets = append(targets, u)
	}
	tlsConf, err := upstreamTLS(c.TLS)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", name, err)
	}
	return proxy.NewUpstream(proxy.UpstreamOptions{
		Name:                  name,
		Targets:               targets,
		Protocol:              c.Protocol,
		Balance:               c.Balance,
		HashOn:                c.HashOn,
		MaxConnsPerTarget:     c.MaxConnsPerTarget,
		MaxIdlePerTarget:      c.MaxIdlePerTarget,
		IdleConnTimeout:       c.IdleConnTimeout.D(),
		DialTimeout:           c.DialTimeout.D(),
		ResponseHeaderTimeout: c.ResponseHeaderTimeout.D(),
		TLSConfig:             tlsConf,
		ReadIdleTimeout:       c.HTTP2.ReadIdleTimeout.D(),
		PingTimeout:           c.HTTP2.PingTimeout.D(),
		MaxFails:              c.HealthCheck.MaxFails,
		CoolDown:              c.HealthCheck.CoolDown.D(),
		HealthPath:            c.HealthCheck.Path,
		HealthInterval:        c.HealthCheck.Interval.D(),
		HealthTimeout:         c.HealthCheck.Timeout.D(),
		Retry:                 c.RetryEnabled(),
		Breaker:               breakerOptions(c.CircuitBreaker), // app_limits.go
		Logger:                log,
	})
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

// listen binds every socket, so a port in use is reported before the
// gateway claims to be up.
func (a *App) listen() error {
	if err := a.server.Listen(); err != nil {
		return err
	}
	if a.admin != nil {
		ln, err := net.Listen("tcp", a.admin.Addr)
		if err != nil {
			_ = a.server.Shutdown(context.Background())
			return fmt.Errorf("admin: %w", err)
		}
		a.adminLn = ln
	}
	if a.health != nil {
		ln, err := net.Listen("tcp", a.health.Addr)
		if err != nil {
			_ = a.server.Shutdown(context.Background())
			if a.adminLn != nil {
				_ = a.adminLn.Close()
			}
			return fmt.Errorf("admin health: %w", err)
		}
		a.healthLn = ln
	}
	return nil
}

// Listen binds every socket, so that a port in use is reported before
// the gateway claims to be up.
func (a *App) Listen() error { return a.listen() }

// Serve serves until ctx ends or Shutdown is called, then drains within
// the config's shutdown_grace and releases everything the App holds.
// Call it once, after Listen.
func (a *App) Serve(ctx context.Context) error { return a.serve(ctx) }

// Shutdown makes Serve drain and return, and waits for it until ctx
// ends. Serve's drain is bounded by shutdown_grace, not by ctx.
//
// Before Serve, it releases what New and Listen took instead.
func (a *App) Shutdown(ctx context.Context) error {
	if a.serving.CompareAndSwap(false, true) {
		a.close()
		close(a.served)
		return nil
	}
	a.stopOnce.Do(func() { close(a.stop) })
	select {
	case <-a.served:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Addrs are the entrypoints' bound addresses, in config order.
func (a *App) Addrs() []net.Addr { return a.server.Addrs() }

// AdminAddr is the admin listener's bound address; nil when it is off.
func (a *App) AdminAddr() net.Addr {
	if a.adminLn == nil {
		return nil
	}
	return a.adminLn.Addr()
}

// Caches reports whether a route caches, and so whether the process
// holds a cache of max_size.
func (a *App) Caches() bool { return a.sharedCache() != nil }

// serve runs until ctx ends, then drains within the shutdown grace.
func (a *App) serve(ctx context.Context) error {
	if !a.serving.CompareAndSwap(false, true) {
		return errors.New("app: Serve after Shutdown or a second Serve")
	}
	defer close(a.served)
	a.startServing()
	errc := make(chan error, 3)
	go func() { errc <- a.server.Serve() }()
	if a.admin != nil {
		a.log.Info("admin listening", "address", a.adminLn.Addr().String())
		go func() {
			err := a.admin.Serve(a.adminLn)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	if a.health != nil {
		a.log.Info("health listening", "address", a.healthLn.Addr().String())
		go func() {
			err := a.health.Serve(a.healthLn)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case <-a.stop:
	case serveErr = <-errc:
	}
	a.stopReloads()
	a.draining.Store(true)
	grace := a.gen.Load().cfg.ShutdownGrace.D()
	a.log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := a.server.Shutdown(sctx)
	if a.admin != nil {
		_ = a.admin.Shutdown(sctx)
	}
	if a.health != nil {
		_ = a.health.Shutdown(sctx)
	}
	a.closeRetired()
	a.close()
	if err != nil {
		a.log.Warn("shutdown grace ran out; remaining connections closed", "err", err)
	}
	return serveErr
}

// openCache creates the shared store on first use.
func (a *App) openCache(cfg *config.Config) error {
	if a.cache != nil {
		return nil
	}
	c, err := cache.New(cache.Options{
		MaxSize:       int64(cfg.Cache.MaxSize),
		MaxObjectSize: int64(cfg.Cache.MaxObjectSize),
		Logger:        a.log,
	})
	if err != nil {
		return err
	}
	a.cache = c
	return nil
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

// cacheRoute builds the cache middleware of route r on the shared store,
// which openCache made.
func (a *App) cacheRoute(r config.Route, trusted []netip.Prefix, comp *compress.Compressor) (proxy.Middleware, error) {
	rc := r.Cache
	heuristicMax := rc.HeuristicMax.D()
	if heuristicMax == 0 {
		heuristicMax = -1 // the config's 0 turns the heuristic off
	}
	rt, err := a.cache.Route(cache.RouteOptions{
		Name: r.Name,
		Key:  cache.KeyOptions{IgnoreParams: rc.IgnoreParams, Headers: rc.KeyHeaders, Cookies: rc.KeyCookies},
		Policy: cache.StoreOptions{
			AllowSetCookie: rc.AllowSetCookie,
			HeuristicMax:   heuristicMax,
		},
		StaleWhileRevalidate: rc.StaleWhileRevalidate.D(),
		StaleIfError:         rc.StaleIfError.D(),
		HitForPass:           rc.HitForPass.D(),
		LockTimeout:          rc.LockTimeout.D(),
		Timeout:              r.Timeout.D(),
		TrustedPeer:          func(req *http.Request) bool { return proxy.TrustsPeer(trusted, req.RemoteAddr) },
		Compress:             cacheEncoder(comp),
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

// close releases what newApp built: the current generation, then the
// cache (after its background refreshes end). Generations retired by a
// reload close their own upstreams when their last request ends.
func (a *App) close() {
	if g := a.gen.Load(); g != nil {
		g.close()
	}
	if a.cache != nil {
		a.cache.Close()
	}
}

// close releases a generation's upstream transports and access log.
func (g *generation) close() {
	g.closeUpstreams()
	g.closeObservability()
}

func (g *generation) closeUpstreams() {
	for _, u := range g.upstreams {
		u.Close()
	}
}
