package app

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"gateway/admin"
)

// Hot reload: on SIGHUP or POST /reload at the admin listener (or POST /api/v1/reload) the config
// file is read and validated again and, when valid, a new generation
// (upstreams, routes, limits, compression, metrics, access log) is built
// and swapped in with one atomic store. The listeners' handler picks the
// current generation per request, so requests in flight finish on the
// generation they started on, and a retired generation's upstreams are
// closed when its last request ends. The cache store is shared: its
// entries and per-route counters survive, as do the Prometheus counters
// (package metrics). Listeners, the admin section, the cache's size
// bounds, the shared tier's connection (cache.shared but for its
// timeouts and limits, which the tier takes at once) and the job queue's
// jobs section are bound at start; a reload that changes them is refused and
// the old config keeps serving. The TLS listeners' certificate files are
// read again on every reload, so a renewed certificate is served from
// the next handshake on; an ACME listener's domains may be added or
// removed (its other settings are bound at start).

// reloader is the app's reload state.
type reloader struct {
	mu      sync.Mutex // serializes reloads; guards the fields below
	path    string     // the config file; "" when the config came from elsewhere
	serving bool       // upstreams of a new generation are started at once
	stopped bool       // shutting down: no more reloads
	retired map[*generation]struct{}
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
	cfg, err := Load(path)
	if err != nil {
		return admin.ReloadResult{}, err
	}
	old := a.gen.Load()
	// An ACME listener's domains may change (setACMEDomains); nothing
	// else of the listeners may.
	if !reflect.DeepEqual(withoutDomains(a.cfg.Listeners), withoutDomains(cfg.Listeners)) || !reflect.DeepEqual(a.cfg.Admin, cfg.Admin) {
		return admin.ReloadResult{}, fmt.Errorf("listeners/admin changed: %w", errRestart)
	}
	if a.shared.Cache() != nil && (old.cfg.Cache.MaxSize != cfg.Cache.MaxSize || old.cfg.Cache.MaxObjectSize != cfg.Cache.MaxObjectSize) {
		return admin.ReloadResult{}, fmt.Errorf("cache max_size/max_object_size changed: %w", errRestart)
	}
	// Against the config the process started with: what a reload cannot
	// change of the shared tier has not changed since.
	if what := sharedChange(a.cfg.Cache.Shared, cfg.Cache.Shared); what != "" {
		return admin.ReloadResult{}, fmt.Errorf("%s: %w", what, errRestart)
	}
	// Likewise where the job queue keeps its jobs and answers for them
	// (jobs.go); the async sections of routes may change.
	if what := jobsChange(a.cfg, cfg); what != "" {
		return admin.ReloadResult{}, fmt.Errorf("%s: %w", what, errRestart)
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
	if a.cfg.MemoryProfile != cfg.MemoryProfile {
		// The floor it implies is applied below; when idle memory goes
		// back to the OS was decided at start.
		a.log.Warn("config reload: memory_profile's return of idle memory applies after a restart (its gc_heap_floor applies now)")
	}
	res, err := a.shared.prepare(cfg)
	if err != nil {
		return admin.ReloadResult{}, err
	}
	g, err := a.build(cfg, res)
	if err != nil {
		a.shared.abort(res)
		return admin.ReloadResult{}, err
	}
	if a.reload.serving {
		for _, u := range g.upstreams {
			u.Start()
		}
	}
	a.shared.commit(res)
	a.shared.reconfigure(cfg.Cache.Shared)
	g.activateObservability()
	applyGCFloor(cfg, a.log)
	installCerts()
	a.setACMEDomains(cfg)
	g.stamp(old, time.Now())
	a.gen.Store(g)
	a.startJobs()
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
