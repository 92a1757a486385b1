package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gateway/admin"
	"gateway/config"
	"gateway/dashboard"
	"gateway/entrypoint"
	"gateway/gcfloor"
	"gateway/proxy"
)

// App is one running gateway: its entrypoints, its admin listeners, the
// resources that outlive a configuration (Shared) and the current
// generation of what the config builds below the entrypoints, which a
// reload replaces (reload.go, generation.go).
type App struct {
	cfg     *config.Config // the config the listeners were built from
	log     *slog.Logger
	server  *entrypoint.Group
	admin   *http.Server
	adminLn net.Listener
	// dash is the admin listener's live page; nil without the listener.
	dash *dashboard.Dashboard
	// health serves only /healthz and /readyz (admin.health_address).
	health   *http.Server
	healthLn net.Listener
	// shared is what outlives generations: the cache store and the
	// metrics registry (shared.go).
	shared *Shared
	// acme are the listeners whose certificates come from ACME (acme.go).
	acme []*acmeListener
	// epFields name the config field of the address of each entrypoint
	// past the listeners (the ACME challenge listeners), for ListenError.
	epFields []string

	stdout, stderr io.Writer // where access_log.output stdout and stderr go
	gen            atomic.Pointer[generation]
	draining       atomic.Bool // the shutdown has begun (Ready says so)
	started        time.Time   // when New ran, for the admin status
	version        string      // Options.Version
	reload         reloader    // reload.go
	// lastReload is the last reload tried, by any path (Reload); nil
	// before any.
	lastReload atomic.Pointer[admin.ReloadAttempt]
	// inFlight counts the client requests in progress, across
	// generations, for gateway_requests_in_flight.
	inFlight atomic.Int64

	serving  atomic.Bool   // Serve has begun, or Shutdown came first
	stop     chan struct{} // closed by Shutdown: Serve drains and returns
	stopOnce sync.Once
	served   chan struct{} // closed when Serve has returned
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
	shared, err := OpenShared(cfg, log, o.Version)
	if err != nil {
		return nil, err
	}
	a.shared = shared
	if m := shared.Metrics(); m != nil {
		m.SetInFlight(a.inFlight.Load)
	}
	res, err := shared.prepare(cfg)
	if err != nil {
		a.close()
		return nil, err
	}
	g, err := a.build(cfg, res)
	if err != nil {
		shared.abort(res)
		a.close()
		return nil, err
	}
	shared.commit(res)
	g.activateObservability()
	g.stamp(nil, a.started)
	a.gen.Store(g)
	a.startJobs() // jobs.go

	var ls []entrypoint.Options
	for _, l := range cfg.Listeners {
		ls = append(ls, entrypoint.Options{
			Address:             l.Address,
			CertFile:            l.TLS.CertFile,
			KeyFile:             l.TLS.KeyFile,
			H2C:                 l.H2C,
			ReadHeaderTimeout:   l.ReadHeaderTimeout.D(),
			ReadTimeout:         l.ReadTimeout.D(),
			WriteTimeout:        l.WriteTimeout.D(),
			IdleTimeout:         l.IdleTimeout.D(),
			MaxHeaderBytes:      int(l.MaxHeaderBytes),
			HTTP3:               l.HTTP3,
			HTTP3MaxStreams:     l.HTTP3MaxStreams,
			HTTP3MaxConnections: l.HTTP3MaxConnections,
			EarlyData:           a.earlyData,
		})
	}
	if ls, a.epFields, err = a.openACME(cfg, ls); err != nil {
		a.close()
		return nil, err
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
		// The app is the admin endpoints' Backend (admin.go);
		// metrics are there whenever the admin listener is.
		// The live page samples the same registry /metrics serves.
		if a.dash, err = dashboard.New(dashboard.Options{
			Gatherer: shared.Metrics().Registry(),
			Backend:  a,
			Routes:   a.routeNames,
			Keys:     &keyTracker{s: shared},
		}); err != nil {
			a.close()
			return nil, err
		}
		ah, err := admin.New(admin.Options{
			Address:    cfg.Admin.Address,
			Token:      cfg.Admin.Token,
			Backend:    a,
			Metrics:    shared.Metrics().Handler(),
			Dashboard:  a.dash,
			PathPrefix: cfg.Admin.PathPrefix,
		})
		if err != nil {
			a.close()
			return nil, err
		}
		a.admin = adminServer(cfg.Admin.Address, ah, log)
		// Its event streams last until the client goes: end them when
		// the listener shuts down, or the drain would wait for them.
		a.admin.RegisterOnShutdown(a.dash.Close)
	}
	if cfg.Admin.HealthAddress != "" {
		a.health = adminServer(cfg.Admin.HealthAddress, admin.Health(func() (bool, any) { return a.Ready(context.Background()) }, func() map[string]string { return a.Health(context.Background()) }), log)
	}
	return a, nil
}

// earlyData reports whether a new HTTP/3 connection may carry requests
// in 0-RTT: while a route of the serving generation allows them (a
// reload changes it for the connections that begin after).
func (a *App) earlyData() bool { return a.gen.Load().early }

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

// listen binds every socket, so a port in use is reported before the
// gateway claims to be up.
func (a *App) listen() error {
	if err := a.server.Listen(); err != nil {
		var le *entrypoint.ListenError
		if errors.As(err, &le) && le.Index < len(a.cfg.Listeners) {
			return &ListenError{Field: config.IndexPath("listeners", le.Index) + ".address", Address: a.cfg.Listeners[le.Index].Address, Err: err}
		}
		if errors.As(err, &le) && le.Index-len(a.cfg.Listeners) < len(a.epFields) {
			i := le.Index - len(a.cfg.Listeners)
			return &ListenError{Field: a.epFields[i], Address: a.acmeHTTPAddress(i), Err: err}
		}
		return err
	}
	if a.admin != nil {
		ln, err := net.Listen("tcp", a.admin.Addr)
		if err != nil {
			_ = a.server.Shutdown(context.Background())
			return &ListenError{Field: "admin.address", Address: a.admin.Addr, Err: fmt.Errorf("admin: %w", err)}
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
			return &ListenError{Field: "admin.health_address", Address: a.health.Addr, Err: fmt.Errorf("admin health: %w", err)}
		}
		a.healthLn = ln
	}
	return nil
}

// Listen binds every socket, so that a port in use is reported before
// the gateway claims to be up. A socket that cannot be bound is a
// *ListenError naming the config field of its address.
func (a *App) Listen() error { return a.listen() }

// ListenError is a socket that could not be bound: the field of the
// config that gave its address ("listeners[0].address", "admin.address"
// or "admin.health_address"), the address, and why.
type ListenError struct {
	Field   string
	Address string
	Err     error
}

func (e *ListenError) Error() string { return e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// InUse reports whether the address is taken by another socket.
func (e *ListenError) InUse() bool { return errors.Is(e.Err, syscall.EADDRINUSE) }

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
func (a *App) Caches() bool { return a.shared.Cache() != nil }

// serve runs until ctx ends, then drains within the shutdown grace.
func (a *App) serve(ctx context.Context) error {
	if !a.serving.CompareAndSwap(false, true) {
		return errors.New("app: Serve after Shutdown or a second Serve")
	}
	defer close(a.served)
	a.startServing()
	a.startACME()
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
	// The queue stops claiming jobs and its running attempts get the
	// same grace as the listeners' requests, side by side; what is still
	// queued stays stored for the next start.
	jobsDone := make(chan error, 1)
	go func() { jobsDone <- a.shutdownJobs(sctx) }()
	err := a.server.Shutdown(sctx)
	if jerr := <-jobsDone; jerr != nil {
		a.log.Warn("shutdown grace ran out with job attempts running; they run again after a restart", "err", jerr)
	}
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

// close releases what New built: the current generation, then the
// shared resources (the cache after its background refreshes end). Generations retired by a
// reload close their own upstreams when their last request ends.
func (a *App) close() {
	if a.dash != nil {
		a.dash.Close()
	}
	// The queue first: its attempts run through the generation.
	if a.shared != nil {
		a.shared.closeJobs()
	}
	if g := a.gen.Load(); g != nil {
		g.close()
	}
	if a.shared != nil {
		a.shared.Close()
	}
	a.closeACME()
}
