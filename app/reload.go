package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"gateway/admin"
	"gateway/config"
)

// Hot reload: on SIGHUP or POST /reload at the admin listener (or POST /api/v1/reload) the config
// file is read and validated again and, when valid, a new generation
// (upstreams, routes, limits, compression, metrics, access log) is built
// and swapped in with one atomic store. The listeners' handler picks the
// current generation per request, so requests in flight finish on the
// generation they started on, and a retired generation's upstreams are
// closed when its last request ends. The cache store is shared: its
// entries and per-route counters survive, as do the Prometheus counters
// (package metrics). Listeners, the admin section and the cache's size
// bounds are bound at start; a reload that changes them is refused and
// the old config keeps serving. The TLS listeners' certificate files are
// read again on every reload, so a renewed certificate is served from
// the next handshake on.

// reloader is the app's reload state.
type reloader struct {
	mu      sync.Mutex // serializes reloads; guards the fields and app.cache once serving
	path    string     // the config file; "" when the config came from elsewhere
	serving bool       // upstreams of a new generation are started at once
	stopped bool       // shutting down: no more reloads
	retired map[*generation]struct{}
}

// genLife counts a generation's requests in flight and retires it.
type genLife struct {
	refs    atomic.Int64
	retired atomic.Bool
	once    sync.Once
	done    chan struct{} // closed when a retired generation is closed
}

// serveHTTP is the listeners' handler: the current generation's root,
// counted in flight on that generation.
func (a *App) serveHTTP(w http.ResponseWriter, r *http.Request) {
	g := a.acquire()
	defer a.release(g)
	g.root.ServeHTTP(w, r)
}

// acquire counts a request on the current generation. A request that
// raced a swap counts itself off the retired one and tries again, so a
// retired generation whose count reached zero gets no new request.
func (a *App) acquire() *generation {
	for {
		g := a.gen.Load()
		g.life.refs.Add(1)
		if a.gen.Load() == g {
			return g
		}
		a.release(g)
	}
}

func (a *App) release(g *generation) {
	if g.life.refs.Add(-1) == 0 && g.life.retired.Load() {
		a.finish(g)
	}
}

// retire marks g, just swapped out, for closing once idle.
func (a *App) retire(g *generation) {
	g.life.done = make(chan struct{})
	if a.reload.retired == nil {
		a.reload.retired = map[*generation]struct{}{}
	}
	a.reload.retired[g] = struct{}{}
	g.life.retired.Store(true)
	if g.life.refs.Load() == 0 {
		a.finish(g)
	}
}

// finish closes a retired generation, once, off the request path.
func (a *App) finish(g *generation) {
	g.life.once.Do(func() {
		go func() {
			g.close()
			a.reload.mu.Lock()
			delete(a.reload.retired, g)
			a.reload.mu.Unlock()
			close(g.life.done)
		}()
	})
}

// startServing starts the current generation's upstreams (health
// checks, pool sweeps); from now on a reload starts the new ones.
func (a *App) startServing() {
	a.reload.mu.Lock()
	defer a.reload.mu.Unlock()
	a.reload.serving = true
	for _, u := range a.gen.Load().upstreams {
		u.Start()
	}
}

// stopReloads refuses reloads from now on (the shutdown has begun).
func (a *App) stopReloads() {
	a.reload.mu.Lock()
	a.reload.stopped = true
	a.reload.mu.Unlock()
}

// closeRetired closes the retired generations still draining, when the
// shutdown grace has ended.
func (a *App) closeRetired() {
	a.reload.mu.Lock()
	var gs []*generation
	for g := range a.reload.retired {
		gs = append(gs, g)
	}
	a.reload.mu.Unlock()
	for _, g := range gs {
		a.finish(g)
		<-g.life.done
	}
}

// errRestart is a reload refused because what changed is bound at start.
var errRestart = errors.New("restart to apply")

// reloadConfig reads the config file again and, if it is valid and only
// changes what a reload can, swaps a generation built from it in. It
// returns a short summary and the new generation's number, or the errors
// (the old config keeps serving).
func (a *App) reloadConfig() (admin.ReloadResult, error) {
	a.reload.mu.Lock()
	defer a.reload.mu.Unlock()
	path := a.reload.path
	switch {
	case path == "":
		return admin.ReloadResult{}, errors.New("reload: the gateway was not started from a config file")
	case a.reload.stopped:
		return admin.ReloadResult{}, errors.New("reload: the gateway is shutting down")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return admin.ReloadResult{}, err
	}
	old := a.gen.Load()
	if !reflect.DeepEqual(a.cfg.Listeners, cfg.Listeners) || !reflect.DeepEqual(a.cfg.Admin, cfg.Admin) {
		return admin.ReloadResult{}, fmt.Errorf("listeners/admin changed: %w", errRestart)
	}
	if a.cache != nil && !reflect.DeepEqual(old.cfg.Cache, cfg.Cache) {
		return admin.ReloadResult{}, fmt.Errorf("cache max_size/max_object_size changed: %w", errRestart)
	}
	// Certificates renewed in place (same cert_file and key_file, new
	// contents) are read now, before anything is built, and installed
	// only with the new generation: a pair that no longer loads fails
	// the reload instead of the next restart, and a reload that fails
	// for any reason leaves every listener on the certificate it had.
	installCerts, err := a.server.LoadCertificates()
	if err != nil {
		return admin.ReloadResult{}, fmt.Errorf("reload: %w", err)
	}
	if !reflect.DeepEqual(a.cfg.Log, cfg.Log) {
		a.log.Warn("config reload: log changes apply after a restart")
	}
	g, err := a.build(cfg)
	if err != nil {
		return admin.ReloadResult{}, err
	}
	if a.reload.serving {
		for _, u := range g.upstreams {
			u.Start()
		}
	}
	g.activateObservability()
	applyGCFloor(cfg, a.log)
	installCerts()
	g.stamp(old, time.Now())
	a.gen.Store(g)
	a.retire(old)
	summary := fmt.Sprintf("reloaded %s: %d routes, %d upstreams", path, len(cfg.Routes), len(cfg.Upstreams))
	a.log.Info("config reloaded", "config", path, "routes", len(cfg.Routes), "upstreams", len(cfg.Upstreams))
	return admin.ReloadResult{Summary: summary, Generation: g.seq}, nil
}

// reloadSignal is the SIGHUP path: reload and log the outcome.
func (a *App) reloadSignal() error {
	_, err := a.Reload(context.Background())
	return err
}
