package config

import (
	"maps"
	"slices"

	"gateway/batch"
	"gateway/compress"
)

// RetryEnabled reports whether failed idempotent requests may be retried;
// retry defaults to on.
func (u Upstream) RetryEnabled() bool { return u.Retry == nil || *u.Retry }

// Enabled reports whether the admin listener should run.
func (a Admin) Enabled() bool { return a.Address != AdminOff }

// Redacted returns a copy of c that is safe to show, as the admin
// /config endpoint does: the admin token is replaced. The copy shares
// nothing mutable with c, so callers may change either freely.
func (c *Config) Redacted() *Config {
	if c == nil {
		return nil
	}
	r := *c
	if r.Admin.Token != "" {
		r.Admin.Token = "REDACTED"
	}
	r.TrustedProxies = slices.Clone(c.TrustedProxies)
	r.Listeners = slices.Clone(c.Listeners)
	if c.Upstreams != nil {
		r.Upstreams = maps.Clone(c.Upstreams)
		for name, u := range r.Upstreams {
			u.Targets = slices.Clone(u.Targets)
			if u.Retry != nil {
				v := *u.Retry
				u.Retry = &v
			}
			if u.CircuitBreaker != nil {
				cb := *u.CircuitBreaker
				u.CircuitBreaker = &cb
			}
			r.Upstreams[name] = u
		}
	}
	r.Batch.InheritHeaders = slices.Clone(c.Batch.InheritHeaders)
	r.Routes = slices.Clone(c.Routes)
	for i := range r.Routes {
		rt := &r.Routes[i]
		rt.Hosts = slices.Clone(rt.Hosts)
		rt.Methods = slices.Clone(rt.Methods)
		rt.Cache.IgnoreParams = slices.Clone(rt.Cache.IgnoreParams)
		rt.Cache.KeyHeaders = slices.Clone(rt.Cache.KeyHeaders)
		rt.Cache.KeyCookies = slices.Clone(rt.Cache.KeyCookies)
		rt.Compress.Encodings = slices.Clone(rt.Compress.Encodings)
		rt.Compress.Types = slices.Clone(rt.Compress.Types)
		if rt.RateLimit != nil {
			rl := *rt.RateLimit
			rt.RateLimit = &rl
		}
		if rt.Composite != nil {
			cc := *rt.Composite
			cc.Parts = slices.Clone(cc.Parts)
			rt.Composite = &cc
		}
	}
	return &r
}

// Options converts a route's compress section, as Load returns it,
// into the options for compress.New. min_size 0 ("any size") becomes
// MinSize 1, since MinSize 0 stands for the package's default; the two
// mean the same, as an empty body is never compressed.
func (rc RouteCompress) Options() (compress.Options, error) {
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

// Options converts the batch section into the options for batch.New.
func (b Batch) Options() batch.Options {
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

// CompositeOptions converts a composite route into the options for
// batch.NewComposite; nil when the route is not composite.
func (r Route) CompositeOptions() *batch.CompositeOptions {
	if r.Composite == nil {
		return nil
	}
	o := &batch.CompositeOptions{Name: r.Name, Path: r.Path, OnError: r.Composite.OnError}
	for _, p := range r.Composite.Parts {
		o.Parts = append(o.Parts, batch.Part{Key: p.Key, Path: p.Path})
	}
	return o
}
