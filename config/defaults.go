package config

import (
	"slices"
	"strconv"
	"time"
)

// Defaults. gateway.yaml shows each of them; a test keeps the two in
// step.
const (
	defaultAdminAddress = "127.0.0.1:9090"
	// AdminOff as admin.address disables the admin listener.
	AdminOff = "off"
)

// Defaults that are also the packages' own (batch.Default*,
// entrypoint.DefaultHTTP3*, defaultCompressMinSize, defaultEncodings, the level
// names). This package imports none of them, so they are written out
// here; a test in package app, which imports both, keeps them equal.
const (
	defaultBatchPath                 = "/_batch"
	defaultBatchMaxItems             = 50
	defaultBatchMaxBodySize          = 1 * mib
	defaultBatchMaxResponseSize      = 4 * mib
	defaultBatchMaxTotalResponseSize = 16 * mib
	defaultBatchConcurrency          = 8
	defaultCompositeOnError          = "fail"
	defaultStreamLevel               = "fastest"
	defaultCachedLevel               = "default"
	defaultCompressMinSize           = 1024
	defaultHTTP3MaxStreams           = 250
	defaultHTTP3MaxConnections       = 10000
)

var (
	defaultInheritHeaders = []string{"Authorization", "Cookie", "Accept-Language"}
	defaultEncodings      = []string{"br", "zstd", "gzip"}
)

// applyDefaults fills in what the file left out. Numbers and durations
// get their default only when absent, so an explicit 0 keeps its
// meaning (no timeout, no cap, checks disabled); empty strings are never
// meaningful and always get the default.
func applyDefaults(c *Config, d *decoder) {
	dur := func(v *Duration, path string, def time.Duration) {
		if !d.set[path] {
			*v = Duration(def)
		}
	}
	size := func(v *Size, path string, def Size) {
		if !d.set[path] {
			*v = def
		}
	}
	str := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	// list makes an absent list empty rather than nil, so the effective
	// config shows [] and not null.
	list := func(v *[]string) {
		if *v == nil {
			*v = []string{}
		}
	}

	dur(&c.ShutdownGrace, "shutdown_grace", 30*time.Second)
	list(&c.TrustedProxies)
	str(&c.MemoryProfile, MemoryEdge)
	size(&c.GCHeapFloor, "gc_heap_floor", HeapFloor(c.MemoryProfile))

	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := indexPath("listeners", i)
		dur(&l.ReadHeaderTimeout, p+".read_header_timeout", 10*time.Second)
		dur(&l.ReadTimeout, p+".read_timeout", 60*time.Second)
		dur(&l.WriteTimeout, p+".write_timeout", 60*time.Second)
		dur(&l.IdleTimeout, p+".idle_timeout", 120*time.Second)
		size(&l.MaxHeaderBytes, p+".max_header_bytes", 1*mib)
		if !d.set[p+".http3_max_streams"] {
			l.HTTP3MaxStreams = defaultHTTP3MaxStreams
		}
		if !d.set[p+".http3_max_connections"] {
			l.HTTP3MaxConnections = defaultHTTP3MaxConnections
		}
		if a := l.TLS.ACME; a != nil {
			ap := p + ".tls.acme"
			list(&a.Domains)
			switch a.CA {
			case "":
				a.CA = LetsEncryptDirectory
			case LetsEncryptStaging:
				a.CA = LetsEncryptStagingDirectory
			}
			if !d.set[ap+".challenges"] {
				a.Challenges = []string{ChallengeTLSALPN01}
				if a.HTTPAddress != "" {
					a.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
				}
			}
			list(&a.Challenges)
			if od := a.OnDemand; od != nil {
				dur(&od.AskTimeout, ap+".on_demand.ask_timeout", 10*time.Second)
				if !d.set[ap+".on_demand.rate"] {
					od.Rate = 10.0 / 60
				}
				if !d.set[ap+".on_demand.burst"] {
					od.Burst = 10
				}
			}
		}
	}

	str(&c.Admin.Address, defaultAdminAddress)
	str(&c.Log.Level, "info")
	str(&c.Log.Format, "text")
	if !d.set["access_log.enabled"] {
		c.AccessLog.Enabled = true
	}
	str(&c.AccessLog.Format, "text")
	str(&c.AccessLog.Output, "stdout")

	for name, u := range c.Upstreams {
		p := keyPath("upstreams", name)
		str(&u.Protocol, "auto")
		str(&u.Balance, "round_robin")
		if !d.set[p+".max_idle_per_target"] {
			u.MaxIdlePerTarget = 64
		}
		dur(&u.IdleConnTimeout, p+".idle_conn_timeout", 90*time.Second)
		dur(&u.DialTimeout, p+".dial_timeout", 5*time.Second)
		dur(&u.HTTP2.ReadIdleTimeout, p+".http2.read_idle_timeout", 30*time.Second)
		dur(&u.HTTP2.PingTimeout, p+".http2.ping_timeout", 15*time.Second)
		hc := p + ".health_check"
		if !d.set[hc+".max_fails"] {
			u.HealthCheck.MaxFails = 3
		}
		dur(&u.HealthCheck.CoolDown, hc+".cool_down", 10*time.Second)
		// Interval and timeout only matter once path enables active
		// checks, but are filled in regardless so the effective config
		// shows what setting path would do.
		dur(&u.HealthCheck.Interval, hc+".interval", 5*time.Second)
		dur(&u.HealthCheck.Timeout, hc+".timeout", 2*time.Second)
		if u.Retry == nil {
			t := true
			u.Retry = &t
		}
		c.Upstreams[name] = u
	}

	size(&c.Cache.MaxSize, "cache.max_size", 256*mib)
	// A small cache gets a proportionally small object limit, so that
	// setting max_size alone never makes the default object limit an
	// error: an eighth of the cache, at most 8 MiB.
	objDefault := Size(8 * mib)
	if c.Cache.MaxSize > 0 && c.Cache.MaxSize/8 < objDefault {
		objDefault = max(c.Cache.MaxSize/8, 1)
	}
	size(&c.Cache.MaxObjectSize, "cache.max_object_size", objDefault)

	// The batch settings are filled in whether or not it is enabled.
	str(&c.Batch.Path, defaultBatchPath)
	if !d.set["batch.max_items"] {
		c.Batch.MaxItems = defaultBatchMaxItems
	}
	size(&c.Batch.MaxBodySize, "batch.max_body_size", defaultBatchMaxBodySize)
	size(&c.Batch.MaxResponseSize, "batch.max_response_size", defaultBatchMaxResponseSize)
	// Never below one item's largest body, so that raising
	// max_response_size alone never makes the default total an error.
	size(&c.Batch.MaxTotalResponseSize, "batch.max_total_response_size", max(defaultBatchMaxTotalResponseSize, c.Batch.MaxResponseSize))
	if !d.set["batch.concurrency"] {
		c.Batch.Concurrency = defaultBatchConcurrency
	}
	dur(&c.Batch.ItemTimeout, "batch.item_timeout", 10*time.Second)
	if c.Batch.InheritHeaders == nil {
		c.Batch.InheritHeaders = slices.Clone(defaultInheritHeaders)
	}

	for i := range c.Routes {
		r := &c.Routes[i]
		p := indexPath("routes", i)
		str(&r.Name, "route"+strconv.Itoa(i))
		str(&r.Path, "/")
		dur(&r.Timeout, p+".timeout", 60*time.Second)
		if r.Composite != nil {
			str(&r.Composite.OnError, defaultCompositeOnError)
		}

		// The cache settings are filled in on every route, caching or
		// not, so the effective config shows what enabling would do.
		cp := p + ".cache"
		list(&r.Cache.IgnoreParams)
		list(&r.Cache.KeyHeaders)
		list(&r.Cache.KeyCookies)
		dur(&r.Cache.HeuristicMax, cp+".heuristic_max", 24*time.Hour)
		// Ten minutes rides out a restart, a deploy or a short outage of
		// the origin while keeping stored entries past their freshness
		// (memory, the shared tier) and what clients may be shown
		// stale to a bound an operator would notice.
		dur(&r.Cache.Grace, cp+".grace", 10*time.Minute)
		dur(&r.Cache.HitForPass, cp+".hit_for_pass", 60*time.Second)
		dur(&r.Cache.LockTimeout, cp+".lock_timeout", 5*time.Second)

		// Likewise compression.
		zp := p + ".compress"
		if r.Compress.Encodings == nil {
			r.Compress.Encodings = slices.Clone(defaultEncodings)
		}
		str(&r.Compress.StreamLevel, defaultStreamLevel)
		str(&r.Compress.CachedLevel, defaultCachedLevel)
		size(&r.Compress.MinSize, zp+".min_size", defaultCompressMinSize)
		dur(&r.WebSocket.IdleTimeout, p+".websocket.idle_timeout", 5*time.Minute)
		list(&r.Compress.Types)
	}
	limitDefaults(c, d)  // limits.go
	sharedDefaults(c, d) // shared.go
	jobsDefaults(c, d)   // jobs.go
}
