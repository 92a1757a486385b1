package app

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"gateway/batch"
	"gateway/cache"
	"gateway/compress"
	"gateway/config"
	"gateway/internal/fielderr"
	"gateway/proxy"
	"gateway/proxy/balance"
	"gateway/redistier"
)

// The mapping from the config to each package's options, and the check
// that those options are good: package config knows the file, each
// package knows its own options (Options.Validate), and only this file
// knows both, so it is where a problem a package finds gets the file's
// line and field.

// Load reads and checks the config file at path: config.Load with
// Check, so that every problem is reported before anything is served.
func Load(path string) (*config.Config, error) { return config.Load(path, Check) }

// Parse is config.Parse with Check; see Load.
func Parse(file string, data []byte) (*config.Config, error) {
	return config.Parse(file, data, Check)
}

// Check maps c to each package's options, as build will, and reports
// what their Validate methods find at the field of the file the value
// came from, in the file's own words. It is a config.Check.
func Check(c *config.Config, r *config.Reporter) {
	checkACME(c, r)
	checkRoutes(c, r)
	checkCache(c, r)
	checkShared(c, r)
	checkBatch(c, r)
	checkUpstreams(c, r)
	for i, rt := range c.Routes {
		p := config.IndexPath("routes", i)
		checkCompress(r, p+".compress", rt.Compress)
		report(r, p+".concurrency", concurrencyOptions(rt.Concurrency).Validate(), map[string]string{
			"MaxInFlight": "max_in_flight", "Queue": "queue", "QueueTimeout": "queue_timeout",
		})
		if rt.RateLimit != nil {
			// The file's checks cover the rate given once and an
			// explicit max_keys of 0 (the package's default); the rate is
			// reported under the name the file gave it.
			rp := p + ".rate_limit"
			rate := "rate"
			if r.Given(rp + ".requests_per_second") {
				rate = "requests_per_second"
			}
			if r.Given(rp+".rate") && r.Given(rp+".requests_per_second") || r.Rejected(rp+"."+rate) {
				rate = "" // the file's problem already says what is wrong
			}
			report(r, rp, rateLimitOptions(rt.RateLimit).Validate(), map[string]string{
				"Key": "key", "Burst": "burst", "Rate": rate, "MaxKeys": "max_keys",
			})
		}
	}
}

// report puts each problem in err at base plus the field's name in the
// file, fields[e.Field]; a field mapped to "" is one the file's own
// checks cover. A problem of no known field is reported at base.
func report(r *config.Reporter, base string, err error, fields map[string]string) {
	fs, others := fielderr.Split(err)
	for _, e := range fs {
		name, ok := fields[e.Field]
		if ok && name == "" {
			continue
		}
		p := base
		if ok {
			p = listPath(base+"."+name, e.Index)
		}
		msg := e.Msg
		if e.Also >= 0 && ok {
			msg += " (also " + config.IndexPath(base+"."+name, e.Also) + ")"
		}
		r.Report(p, "%s", msg)
	}
	for _, e := range others {
		r.Report(base, "%v", e)
	}
}

// listPath is path, or its entry i when i is not -1.
func listPath(path string, i int) string {
	if i < 0 {
		return path
	}
	return config.IndexPath(path, i)
}

// checkRoutes checks each composite route's pattern and parts, and that
// no route is shadowed by an earlier one with the same hosts, path and
// methods.
func checkRoutes(c *config.Config, r *config.Reporter) {
	seen := map[string]int{}
	for i, rt := range c.Routes {
		p := config.IndexPath("routes", i)
		if co := compositeOptions(rt); co != nil {
			fs, _ := fielderr.Split(co.Validate())
			for _, e := range fs {
				cp := p + ".composite"
				switch e.Field {
				case "OnError":
					r.Report(cp+".on_error", "%s", e.Msg)
				case "Path":
					// The file's checks report a path that is no path.
					if strings.HasPrefix(rt.Path, "/") && !strings.ContainsAny(rt.Path, "?#") {
						r.Report(p+".path", "%s", e.Msg)
					}
				case "Parts":
					r.Report(cp+".parts", "%s", e.Msg)
				case "Parts.Key", "Parts.Path":
					pp := config.IndexPath(cp+".parts", e.Index)
					msg := e.Msg
					if e.Also >= 0 {
						msg += " (also " + config.IndexPath(cp+".parts", e.Also) + ")"
					}
					r.Report(pp+"."+strings.ToLower(strings.TrimPrefix(e.Field, "Parts.")), "%s", msg)
				}
			}
		}
		key := routeKey(rt)
		if k, dup := seen[key]; dup {
			other := config.IndexPath("routes", k)
			r.Report(p, "same hosts, path and methods as %s (line %d), so it can never match", other, r.Line(other))
		} else {
			seen[key] = i
		}
	}
}

// routeKey identifies what a route matches, independent of the order
// hosts and methods are listed in.
func routeKey(r config.Route) string {
	set := func(s []string) string {
		s = slices.Clone(s)
		slices.Sort(s)
		return strings.Join(slices.Compact(s), "\x00")
	}
	p := r.Path
	if r.Composite != nil {
		// A composite route is routed by the prefix before its first
		// {name}.
		if pat, err := batch.ParsePattern(p); err == nil {
			p = pat.Prefix()
		}
	}
	return set(r.Hosts) + "\x01" + p + "\x01" + set(r.Methods)
}

// checkCache checks every route's cache key, caching or not (a setting
// that is wrong now would only fail later, when caching is turned on),
// and the shared cache's sizes.
func checkCache(c *config.Config, r *config.Reporter) {
	enabled := ""
	for i, rt := range c.Routes {
		p := config.IndexPath("routes", i)
		report(r, p+".cache", cacheKeyOptions(rt.Cache).Validate(), map[string]string{
			"IgnoreParams": "ignore_params", "Headers": "key_headers", "Cookies": "key_cookies",
		})
		if rt.Cache.Enabled && enabled == "" {
			enabled = p + ".cache.enabled"
		}
	}
	const sp, op = "cache.max_size", "cache.max_object_size"
	size, object := c.Cache.MaxSize, c.Cache.MaxObjectSize
	fs, _ := fielderr.Split(cacheOptions(c.Cache).Validate())
	for _, e := range fs {
		switch {
		case e.Field == "MaxSize" && enabled != "":
			r.Report(sp, "must be positive when a route caches (%s at line %d)", enabled, r.Line(enabled))
		case e.Field == "MaxObjectSize" && object > 0 && !r.Rejected(sp):
			// 0 is the file's to report: it has no meaning there.
			where := "the default"
			if r.Given(sp) {
				where = "line " + strconv.Itoa(r.Line(sp))
			}
			r.Report(op, "%s is larger than cache.max_size %s (%s); want at most the whole cache", object, size, where)
		}
	}
}

// checkShared checks cache.shared, when present, with package
// redistier's rules; the file's checks cover the password source, the TLS
// files and explicit zeros.
func checkShared(c *config.Config, r *config.Reporter) {
	sh := c.Cache.Shared
	if sh == nil {
		return
	}
	report(r, "cache.shared", sharedOptions(sh).Validate(), map[string]string{
		"Addrs":            "addresses",
		"Mode":             "mode",
		"MasterName":       "master_name",
		"DB":               "db",
		"KeyPrefix":        "key_prefix",
		"Timeout":          "timeout",
		"WriteTimeout":     "write_timeout",
		"DialTimeout":      "dial_timeout",
		"MaxObjectSize":    "max_object_size",
		"WriteConcurrency": "write_concurrency",
		"WriteQueue":       "write_queue",
		"PurgeBound":       "purge_bound",
		"LeaseTTL":         "lease_ttl",
		"BreakerFailures":  "breaker.failures",
		"BreakerCoolDown":  "breaker.cool_down",
	})
}

// sharedOptions maps cache.shared to the tier's config, but for TLS,
// which needs its files read (sharedTLS).
func sharedOptions(sh *config.CacheShared) redistier.Config {
	return redistier.Config{
		Addrs:            slices.Clone(sh.Addresses),
		Mode:             sh.Mode,
		MasterName:       sh.MasterName,
		Username:         sh.Username,
		Password:         sh.Password.Reveal(),
		DB:               sh.DB,
		KeyPrefix:        sh.KeyPrefix,
		Timeout:          sh.Timeout.D(),
		WriteTimeout:     sh.WriteTimeout.D(),
		DialTimeout:      sh.DialTimeout.D(),
		MaxObjectSize:    int64(sh.MaxObjectSize),
		WriteConcurrency: sh.WriteConcurrency,
		WriteQueue:       sh.WriteQueue,
		PurgeBound:       sh.PurgeBound.D(),
		LeaseTTL:         sh.LeaseTTL.D(),
		BreakerFailures:  sh.Breaker.Failures,
		BreakerCoolDown:  sh.Breaker.CoolDown.D(),
	}
}

// checkBatch checks the batch section, enabled or not.
func checkBatch(c *config.Config, r *config.Reporter) {
	b := c.Batch
	const tp, rp = "batch.max_total_response_size", "batch.max_response_size"
	fs, _ := fielderr.Split(batchOptions(b).Validate())
	for _, e := range fs {
		switch e.Field {
		case "Path":
			r.Report("batch.path", "%s", e.Msg)
		case "MaxTotalResponseSize":
			// Zeros are the file's to report.
			if b.MaxResponseSize == 0 || b.MaxTotalResponseSize == 0 || r.Rejected(rp) {
				continue
			}
			// An item's body could be within its own limit and still
			// never fit the batch's.
			where := "the default"
			if r.Given(rp) {
				where = "line " + strconv.Itoa(r.Line(rp))
			}
			r.Report(tp, "%s is smaller than %s %s (%s); want at least one item's largest body", b.MaxTotalResponseSize, rp, b.MaxResponseSize, where)
		case "InheritHeaders":
			msg := e.Msg
			if e.Also >= 0 {
				msg += " (also " + config.IndexPath("batch.inherit_headers", e.Also) + ")"
			}
			r.Report(config.IndexPath("batch.inherit_headers", e.Index), "%s", msg)
		case "MaxItems":
			r.Report("batch.max_items", "%s", e.Msg)
		case "Concurrency":
			r.Report("batch.concurrency", "%s", e.Msg)
		}
	}
}

// checkUpstreams checks each upstream's options, those of its targets
// that parse among them (the file's checks report the others). The
// file's checks cover a hash_on that balance hash needs and the file
// leaves out, and the breaker's explicit zeros, which the package
// would take for its defaults.
func checkUpstreams(c *config.Config, r *config.Reporter) {
	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		u := c.Upstreams[name]
		p := config.KeyPath("upstreams", name)
		o, index, _ := mapUpstream(name, u)
		fs, others := fielderr.Split(o.Validate())
		var rest []error
		for _, e := range fs {
			if e.Field != "Targets" || e.Index < 0 {
				rest = append(rest, e)
				continue
			}
			// The package has the URL, not the text: the file's goes
			// in front, as the file's own target checks put it.
			i := index[e.Index]
			r.Report(config.IndexPath(p+".targets", i), "%q: %s", u.Targets[i], e.Msg)
		}
		hashOn := "hash_on"
		if u.HashOn == "" {
			hashOn = ""
		}
		report(r, p, errors.Join(append(rest, others...)...), map[string]string{
			"Protocol":             "protocol",
			"MaxConnsPerTarget":    "max_conns_per_target",
			"MaxIdlePerTarget":     "max_idle_per_target",
			"MaxFails":             "health_check.max_fails",
			"Balance":              "balance",
			"HashOn":               hashOn,
			"HealthPath":           "health_check.path",
			"Breaker.FailureRatio": "circuit_breaker.failure_ratio",
			"Breaker.Window":       "",
			"Breaker.OpenTimeout":  "",
		})
	}
}

// compressLevels are the level names the file may give.
var compressLevels = []string{compress.Fastest.String(), compress.Default.String(), compress.Best.String()}

// checkCompress checks a route's compress section, enabled or not.
func checkCompress(r *config.Reporter, p string, rc config.RouteCompress) {
	levels := r.OneOf(p+".stream_level", rc.StreamLevel, compressLevels...)
	levels = r.OneOf(p+".cached_level", rc.CachedLevel, compressLevels...) && levels
	if !levels {
		return
	}
	o, err := compressOptions(rc)
	if err == nil {
		err = o.Validate()
	}
	fields := map[string]string{
		"Codings":     "encodings",
		"StreamLevel": "stream_level",
		"CachedLevel": "cached_level",
		"MinSize":     "min_size",
		"Types":       "types",
	}
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var oe *compress.OptionError
		if !errors.As(e, &oe) {
			r.Report(p, "%v", e)
			continue
		}
		r.Report(listPath(p+"."+fields[oe.Field], oe.Index), "%s", oe.Msg)
	}
}

// compressOptions maps a route's compress section. min_size 0 ("any
// size") becomes MinSize 1, since MinSize 0 stands for the package's
// default; the two mean the same, as an empty body is never compressed.
func compressOptions(rc config.RouteCompress) (compress.Options, error) {
	stream, err := compress.ParseLevel(rc.StreamLevel)
	if err != nil {
		return compress.Options{}, err
	}
	cached, err := compress.ParseLevel(rc.CachedLevel)
	if err != nil {
		return compress.Options{}, err
	}
	return compress.Options{
		Codings:     slices.Clone(rc.Encodings),
		StreamLevel: stream,
		CachedLevel: cached,
		MinSize:     max(int64(rc.MinSize), 1),
		Types:       slices.Clone(rc.Types),
	}, nil
}

// batchOptions maps the batch section.
func batchOptions(b config.Batch) batch.Options {
	return batch.Options{
		Path:                 b.Path,
		MaxItems:             b.MaxItems,
		MaxBodySize:          int64(b.MaxBodySize),
		MaxResponseSize:      int64(b.MaxResponseSize),
		MaxTotalResponseSize: int64(b.MaxTotalResponseSize),
		Concurrency:          b.Concurrency,
		ItemTimeout:          b.ItemTimeout.D(),
		InheritHeaders:       slices.Clone(b.InheritHeaders),
	}
}

// compositeOptions maps a composite route; nil when the route is not
// composite.
func compositeOptions(r config.Route) *batch.CompositeOptions {
	if r.Composite == nil {
		return nil
	}
	o := &batch.CompositeOptions{Name: r.Name, Path: r.Path, OnError: r.Composite.OnError}
	for _, p := range r.Composite.Parts {
		o.Parts = append(o.Parts, batch.Part{Key: p.Key, Path: p.Path})
	}
	return o
}

// cacheOptions maps the shared cache section.
func cacheOptions(c config.Cache) cache.Options {
	return cache.Options{MaxSize: int64(c.MaxSize), MaxObjectSize: int64(c.MaxObjectSize)}
}

// cacheKeyOptions maps a route's cache key settings.
func cacheKeyOptions(rc config.RouteCache) cache.KeyOptions {
	return cache.KeyOptions{IgnoreParams: rc.IgnoreParams, Headers: rc.KeyHeaders, Cookies: rc.KeyCookies}
}

// rateLimitOptions maps a route's rate_limit section; nil when absent.
func rateLimitOptions(rl *config.RouteRateLimit) *proxy.RateLimitOptions {
	if rl == nil {
		return nil
	}
	return &proxy.RateLimitOptions{Rate: float64(rl.Rate), Burst: rl.Burst, Key: rl.Key, MaxKeys: rl.MaxKeys}
}

// concurrencyOptions maps a route's concurrency section.
func concurrencyOptions(c config.RouteConcurrency) proxy.ConcurrencyOptions {
	return proxy.ConcurrencyOptions{MaxInFlight: c.MaxInFlight, Queue: c.Queue, QueueTimeout: c.QueueTimeout.D()}
}

// upstreamOptions maps an upstream, but for its TLS settings and the
// logger, which build adds. The error is the first target's that does
// not parse.
func upstreamOptions(name string, c config.Upstream) (proxy.UpstreamOptions, error) {
	o, _, err := mapUpstream(name, c)
	if err != nil {
		return proxy.UpstreamOptions{}, err
	}
	return o, nil
}

// mapUpstream is upstreamOptions with the targets that parse, index[i]
// being the position in the file's list of Targets[i], and the first
// error of those that do not.
func mapUpstream(name string, c config.Upstream) (o proxy.UpstreamOptions, index []int, err error) {
	var targets []*url.URL
	for i, t := range c.Targets {
		u, perr := url.Parse(t)
		if perr != nil {
			if err == nil {
				err = perr
			}
			continue
		}
		targets = append(targets, u)
		index = append(index, i)
	}
	return proxy.UpstreamOptions{
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
		ReadIdleTimeout:       c.HTTP2.ReadIdleTimeout.D(),
		PingTimeout:           c.HTTP2.PingTimeout.D(),
		MaxFails:              c.HealthCheck.MaxFails,
		CoolDown:              c.HealthCheck.CoolDown.D(),
		HealthPath:            c.HealthCheck.Path,
		HealthInterval:        c.HealthCheck.Interval.D(),
		HealthTimeout:         c.HealthCheck.Timeout.D(),
		Retry:                 c.RetryEnabled(),
		Breaker:               breakerOptions(c.CircuitBreaker),
	}, index, err
}

// breakerOptions maps an upstream's circuit_breaker section; nil when
// absent. The file's checks keep the counts within 32 bits.
func breakerOptions(cb *config.CircuitBreaker) *balance.BreakerOptions {
	if cb == nil {
		return nil
	}
	return &balance.BreakerOptions{
		FailureRatio:     cb.FailureRatio,
		MinRequests:      uint32(cb.MinRequests),
		Window:           cb.Window.D(),
		OpenTimeout:      cb.OpenTimeout.D(),
		HalfOpenRequests: uint32(cb.HalfOpenRequests),
	}
}
