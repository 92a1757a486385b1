package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"sync/atomic"

	"gateway/cache"
	"gateway/config"
	"gateway/jobs"
	"gateway/metrics"
	"gateway/redistier"
)

// Shared is what outlives a generation: opened once with the App and
// closed once when it ends, while every generation is built against it
// (from a resources that prepare hands the build). Today that is the
// process's metrics registry, the cache store and, with cache.shared,
// the shared tier on Redis under it, and the async routes' job queue
// (jobs.go); certificate management joins them here.
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

	mu    sync.Mutex  // guards store and jobs
	store *cacheStore // nil while no config has cached
	// jobs is the async routes' queue (jobs.go); nil while no config
	// has had an async route.
	jobs *jobsStore
}

// cacheStore is the cache and, with a shared tier, the stores under it,
// which the cache does not own: they are closed after it.
type cacheStore struct {
	cache  *cache.Cache
	tiered *cache.TieredStore // nil without a shared tier
	tier   *redistier.Tier    // nil without a shared tier
	// tierCfg is what the tier runs with, for Reconfigure.
	tierCfg redistier.Config
}

// close closes the cache, then the stores under it.
func (cs *cacheStore) close() {
	cs.cache.Close()
	if cs.tiered != nil {
		// Closes the memory store and the tier.
		cs.tiered.Close()
	}
}

// OpenShared opens what cfg needs from the start.
func OpenShared(cfg *config.Config, log *slog.Logger, version string) (*Shared, error) {
	s := &Shared{log: log}
	if cfg.Admin.Enabled() {
		s.metrics = metrics.New(version)
	}
	if caches(cfg) {
		cs, err := openCache(cfg, log)
		if err != nil {
			return nil, err
		}
		s.store = cs
		s.setMetrics(cs)
	}
	if cfg.Async() {
		js, err := openJobs(cfg, log)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.jobs = js
		s.setJobsMetrics(js)
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

// openCache opens the store with cfg's sizes, over the shared tier when
// cfg has one; an error names the first route that caches, whose setting
// it is, or the shared tier's field. The tier connects in the
// background: Redis being down is no error.
func openCache(cfg *config.Config, log *slog.Logger) (*cacheStore, error) {
	o := cacheOptions(cfg.Cache) // options.go
	o.Logger = log
	sh := cfg.Cache.Shared
	if sh == nil {
		c, err := cache.New(o)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", firstCaching(cfg), err)
		}
		return &cacheStore{cache: c}, nil
	}
	tc := sharedOptions(sh)
	var err error
	if tc.TLS, err = sharedTLS(sh); err != nil {
		return nil, err
	}
	mem, err := cache.NewMemoryStore(cache.MemoryConfig{MaxSize: o.MaxSize})
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", firstCaching(cfg), err)
	}
	// Purges other processes make reach this one's memory through the
	// cache, which the tier's goroutines may call before New returns.
	var applyTo atomic.Pointer[cache.Cache]
	tlog := log.With("component", "cache.shared")
	tier, err := redistier.Open(tc, redistier.Options{
		Logger: tlog,
		OnPurge: func(kind cache.PurgeKind, value string, soft bool) {
			if c := applyTo.Load(); c != nil {
				_, _ = c.ApplyPurge(context.Background(), kind, value, soft)
			}
		},
	})
	if err != nil {
		mem.Close()
		return nil, fmt.Errorf("cache.shared: %w", err)
	}
	// The tier's errors are expected while Redis is down, and each
	// request may meet one: the tier's state and counters say it once,
	// so these are debug only.
	tiered := cache.NewTieredStore(mem, tier, func(op string, err error) {
		tlog.Debug("shared cache tier", "op", op, "err", err)
	})
	o.Store, o.Coordinator = tiered, tier
	c, err := cache.New(o)
	if err != nil {
		tiered.Close()
		return nil, fmt.Errorf("route %s: %w", firstCaching(cfg), err)
	}
	applyTo.Store(c)
	return &cacheStore{cache: c, tiered: tiered, tier: tier, tierCfg: tc}, nil
}

// sharedTLS is the shared tier's TLS config; nil when it talks plain TCP.
func sharedTLS(sh *config.CacheShared) (*tls.Config, error) {
	if !sh.TLSOn() {
		return nil, nil
	}
	t := sh.TLS
	c := &tls.Config{
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // an operator's explicit choice
		MinVersion:         tls.VersionTLS12,
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cache.shared.tls.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cache.shared.tls.ca_file %s: no PEM certificates", t.CAFile)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cache.shared.tls.cert_file: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// sharedChange says what of cache.shared changed from old to cur that
// only a restart applies; "" when a reload can apply the change (the
// timeouts and limits, see Shared.reconfigure). A new password read from
// the same source is not such a change: it is kept for the restart.
func sharedChange(old, cur *config.CacheShared) string {
	switch {
	case old == nil && cur == nil:
		return ""
	case old == nil:
		return "cache.shared added"
	case cur == nil:
		return "cache.shared removed"
	}
	bound := func(s config.CacheShared) config.CacheShared {
		s.Timeout, s.WriteTimeout, s.DialTimeout = 0, 0, 0
		s.MaxObjectSize, s.WriteConcurrency, s.WriteQueue = 0, 0, 0
		s.PurgeBound, s.LeaseTTL, s.Breaker = 0, 0, config.SharedBreaker{}
		s.Password = ""
		return s
	}
	if !reflect.DeepEqual(bound(*old), bound(*cur)) {
		return "cache.shared addresses, mode, master_name, username, password source, db, tls or key_prefix changed"
	}
	return ""
}

// resources is what one build is made with.
type resources struct {
	// cache is the store routes cache in and invalidate; nil when
	// none is open and the config caches nothing.
	cache   *cache.Cache
	metrics *metrics.Metrics
	opened  *cacheStore // opened for this build: commit or abort it
	// jobs is the queue async routes register with; nil when none is
	// open and the config has no async route.
	jobs       *jobs.Queue
	openedJobs *jobsStore // opened for this build: commit or abort it
}

// prepare gives a build of cfg its resources, opening the cache if cfg
// is the first config to cache.
func (s *Shared) prepare(cfg *config.Config) (*resources, error) {
	r := &resources{cache: s.Cache(), metrics: s.metrics, jobs: s.Jobs()}
	if r.cache == nil && caches(cfg) {
		cs, err := openCache(cfg, s.log)
		if err != nil {
			return nil, err
		}
		r.cache, r.opened = cs.cache, cs
	}
	if r.jobs == nil && cfg.Async() {
		js, err := openJobs(cfg, s.log)
		if err != nil {
			s.abort(r)
			return nil, err
		}
		r.jobs, r.openedJobs = js.queue, js
	}
	return r, nil
}

// commit keeps what prepare opened for r, once its generation serves.
func (s *Shared) commit(r *resources) {
	if js := r.openedJobs; js != nil {
		s.mu.Lock()
		s.jobs = js
		s.mu.Unlock()
		s.setJobsMetrics(js)
		r.openedJobs = nil
	}
	if r.opened == nil {
		return
	}
	s.mu.Lock()
	s.store = r.opened
	s.mu.Unlock()
	s.setMetrics(r.opened)
	r.opened = nil
}

// setJobsMetrics has scrapes read js's counters.
func (s *Shared) setJobsMetrics(js *jobsStore) {
	if s.metrics != nil {
		s.metrics.SetJobs(js.queue)
	}
}

// setMetrics has scrapes read cs's figures.
func (s *Shared) setMetrics(cs *cacheStore) {
	if s.metrics == nil {
		return
	}
	s.metrics.SetCache(cs.cache)
	if cs.tier != nil {
		s.metrics.SetShared(cs.tier)
	}
}

// abort closes what prepare opened for a build that failed.
func (s *Shared) abort(r *resources) {
	if r.openedJobs != nil {
		_ = r.openedJobs.queue.Close()
		r.openedJobs = nil
	}
	if r.opened != nil {
		r.opened.close()
		r.opened = nil
	}
}

// reconfigure applies sh's timeouts and limits to the running tier, once
// a reload that passed sharedChange serves. The password the tier runs
// with is kept: a new one applies after a restart.
func (s *Shared) reconfigure(sh *config.CacheShared) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.store
	if cs == nil || cs.tier == nil || sh == nil {
		return
	}
	tc := sharedOptions(sh)
	if tc.Password != cs.tierCfg.Password {
		s.log.Warn("config reload: cache.shared's password changed; it applies after a restart")
		tc.Password = cs.tierCfg.Password
	}
	tc.TLS = cs.tierCfg.TLS
	if err := cs.tier.Reconfigure(tc); err != nil {
		s.log.Warn("config reload: cache.shared not reconfigured", "err", err)
		return
	}
	cs.tierCfg = tc
}

// Cache is the cache store; nil while no config has cached.
func (s *Shared) Cache() *cache.Cache {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil
	}
	return s.store.cache
}

// Tier is the shared cache tier; nil without one (or while no config has
// cached).
func (s *Shared) Tier() *redistier.Tier {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil
	}
	return s.store.tier
}

// Metrics is the process's registry; nil when the admin listener is off.
func (s *Shared) Metrics() *metrics.Metrics { return s.metrics }

// Close closes the job queue (whose attempts use the cache), then the
// cache (after its background refreshes end), then the stores under it.
func (s *Shared) Close() {
	s.closeJobs()
	s.mu.Lock()
	cs := s.store
	s.mu.Unlock()
	if cs != nil {
		cs.close()
	}
}
