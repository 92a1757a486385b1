package app

import (
	"fmt"
	"log/slog"
	"sync"

	"gateway/cache"
	"gateway/config"
	"gateway/metrics"
)

// Shared is what outlives a generation: opened once with the App and
// closed once when it ends, while every generation is built against it
// (from a resources that prepare hands the build). Today that is the
// process's metrics registry and the cache store; a shared cache tier,
// a job queue and certificate management join them here.
//
// The cache is opened with the first config that caches. When that is
// a reload's, the build gets a cache of its own (prepare) that Shared
// keeps only if the whole reload succeeds (commit); a rejected config
// leaves no cache sized by it behind (abort).
type Shared struct {
	log *slog.Logger
	// metrics is the one registry of the process, so that counters run
	// across reloads; nil when the admin listener is off.
	metrics *metrics.Metrics

	mu    sync.Mutex   // guards cache
	cache *cache.Cache // nil while no config has cached
}

// OpenShared opens what cfg needs from the start.
func OpenShared(cfg *config.Config, log *slog.Logger, version string) (*Shared, error) {
	s := &Shared{log: log}
	if cfg.Admin.Enabled() {
		s.metrics = metrics.New(version)
	}
	if caches(cfg) {
		c, err := openCache(cfg, log)
		if err != nil {
			return nil, err
		}
		s.cache = c
		if s.metrics != nil {
			s.metrics.SetCache(c)
		}
	}
	return s, nil
}

// caches reports whether a route of cfg caches.
func caches(cfg *config.Config) bool { return firstCaching(cfg) != "" }

// firstCaching is the name of cfg's first route that caches; "" if none.
func firstCaching(cfg *config.Config) string {
	for _, r := range cfg.Routes {
		if r.Cache.Enabled {
			return r.Name
		}
	}
	return ""
}

// openCache opens the store with cfg's sizes; an error names the first
// route that caches, whose setting it is.
func openCache(cfg *config.Config, log *slog.Logger) (*cache.Cache, error) {
	o := cacheOptions(cfg.Cache) // options.go
	o.Logger = log
	c, err := cache.New(o)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", firstCaching(cfg), err)
	}
	return c, nil
}

// resources is what one build is made with.
type resources struct {
	// cache is the store routes cache in and invalidate; nil when
	// none is open and the config caches nothing.
	cache   *cache.Cache
	metrics *metrics.Metrics
	opened  bool // cache was opened for this build: commit or abort it
}

// prepare gives a build of cfg its resources, opening the cache if cfg
// is the first config to cache.
func (s *Shared) prepare(cfg *config.Config) (*resources, error) {
	r := &resources{cache: s.Cache(), metrics: s.metrics}
	if r.cache == nil && caches(cfg) {
		c, err := openCache(cfg, s.log)
		if err != nil {
			return nil, err
		}
		r.cache, r.opened = c, true
	}
	return r, nil
}

// commit keeps what prepare opened for r, once its generation serves.
func (s *Shared) commit(r *resources) {
	if !r.opened {
		return
	}
	s.mu.Lock()
	s.cache = r.cache
	s.mu.Unlock()
	if s.metrics != nil {
		s.metrics.SetCache(r.cache)
	}
	r.opened = false
}

// abort closes what prepare opened for a build that failed.
func (s *Shared) abort(r *resources) {
	if r.opened {
		r.cache.Close()
		r.opened = false
	}
}

// Cache is the cache store; nil while no config has cached.
func (s *Shared) Cache() *cache.Cache {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache
}

// Metrics is the process's registry; nil when the admin listener is off.
func (s *Shared) Metrics() *metrics.Metrics { return s.metrics }

// Close closes the cache (after its background refreshes end).
func (s *Shared) Close() {
	if c := s.Cache(); c != nil {
		c.Close()
	}
}
