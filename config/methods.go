package config

import (
	"maps"
	"slices"
)

// RetryEnabled reports whether failed idempotent requests may be retried;
// retry defaults to on.
func (u Upstream) RetryEnabled() bool { return u.Retry == nil || *u.Retry }

// Enabled reports whether the admin listener should run.
func (a Admin) Enabled() bool { return a.Address != AdminOff }

// Redacted returns a copy of c that is safe to show, as the admin
// /config endpoint does: the admin token and an ACME EAB MAC key are
// replaced. The copy shares
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
	for i, l := range r.Listeners {
		if a := l.TLS.ACME; a != nil {
			ac := *a
			ac.Domains = slices.Clone(a.Domains)
			ac.Challenges = slices.Clone(a.Challenges)
			if a.EAB != nil {
				e := *a.EAB
				if e.MACKey != "" {
					e.MACKey = "REDACTED"
				}
				ac.EAB = &e
			}
			if a.OnDemand != nil {
				od := *a.OnDemand
				ac.OnDemand = &od
			}
			r.Listeners[i].TLS.ACME = &ac
		}
	}
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
	if c.Cache.Shared != nil {
		// The password never travels (its field has no name in JSON or
		// YAML); it is dropped here too, so that nothing made from the
		// redacted config can carry it.
		sh := *c.Cache.Shared
		sh.Addresses = slices.Clone(sh.Addresses)
		sh.Password = ""
		r.Cache.Shared = &sh
	}
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
		if rt.Async != nil {
			// The callback secret has no name in JSON or YAML; it is
			// dropped here too, as the shared tier's password is.
			as := *rt.Async
			as.Callback.AllowedHosts = slices.Clone(as.Callback.AllowedHosts)
			as.Callback.Secret = ""
			rt.Async = &as
		}
		if rt.Composite != nil {
			cc := *rt.Composite
			cc.Parts = slices.Clone(cc.Parts)
			rt.Composite = &cc
		}
	}
	return &r
}
