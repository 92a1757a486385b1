package cache

import (
	"net/http"
	"strings"
)

// Targeted cache control (RFC 9213): a response field that carries
// Cache-Control directives for one class of caches only. This cache is a
// CDN-like shared cache, so it honours CDN-Cache-Control, and a route may
// name a field of its own (RouteOptions.TargetedField) that comes before
// it. The first of them present with a valid, non-empty value replaces
// Cache-Control and Expires for this cache's storage and freshness
// decisions (RFC 9213 section 2.1); Cache-Control is still passed on for
// the caches downstream. The request's Cache-Control is not affected.

// CDNCacheControl is the targeted field of RFC 9213 section 3.
const CDNCacheControl = "Cdn-Cache-Control"

// cacheDirectives are the response directives this cache obeys: those of
// the first valid targeted field (field, if set, then CDN-Cache-Control)
// with targeted true, else the Cache-Control field's.
func cacheDirectives(h http.Header, field string) (d Directives, targeted bool) {
	if field != "" {
		if d, ok := targetedDirectives(h[field]); ok {
			return d, true
		}
	}
	if d, ok := targetedDirectives(h[CDNCacheControl]); ok {
		return d, true
	}
	return ParseCacheControl(h), false
}

// targetedDirectives reads the lines of one targeted field. It reports
// false, and the field is then ignored as a whole (RFC 9213 section 2.2),
// when the field is absent or empty, when it is not a valid Structured
// Field Dictionary, or when a directive this cache understands has a
// value of another type than the directive's: delta-seconds directives
// take a non-negative Integer, the others a Boolean, and no-cache also a
// String (its field-name list, which counts as bare, as in
// Cache-Control). Rejecting the whole field rather than one directive
// keeps a mistyped max-age from silently leaving the response with a
// lifetime the origin did not mean. Unknown directives are ignored
// (RFC 9213 section 2.2, as RFC 9111 section 5.2.3). A Boolean false
// (no-store=?0) is the directive's absence.
func targetedDirectives(lines []string) (Directives, bool) {
	if len(lines) == 0 {
		return Directives{}, false
	}
	// RFC 8941 section 4.2: several field lines are one value, joined
	// with commas.
	ms, ok := parseSFDictionary(strings.Join(lines, ","))
	if !ok || len(ms) == 0 {
		return Directives{}, false
	}
	p := newParser()
	d := &p.d
	for _, m := range ms {
		v := m.val
		var delta *int64
		var flag *bool
		switch m.key {
		case "max-age":
			delta = &d.MaxAge
		case "s-maxage":
			delta = &d.SMaxAge
		case "stale-while-revalidate":
			delta = &d.StaleWhileRevalidate
		case "stale-if-error":
			delta = &d.StaleIfError
		case "no-cache":
			if v.kind == sfString {
				d.NoCache = true // a field-name list counts as bare
				continue
			}
			flag = &d.NoCache
		case "no-store":
			flag = &d.NoStore
		case "private":
			flag = &d.Private
		case "public":
			flag = &d.Public
		case "must-revalidate":
			flag = &d.MustRevalidate
		case "proxy-revalidate":
			flag = &d.ProxyRevalidate
		case "no-transform":
			flag = &d.NoTransform
		case "must-understand":
			flag = &d.MustUnderstand
		case "immutable":
			flag = &d.Immutable
		default:
			continue
		}
		switch {
		case delta != nil:
			if v.kind != sfInteger || v.i < 0 {
				return Directives{}, false
			}
			*delta = min(v.i, deltaSecondsMax)
		case v.kind != sfBoolean:
			return Directives{}, false
		default:
			*flag = v.b
		}
	}
	return *d, true
}

// stripTargeted removes the targeted fields of a route that does not pass
// them on (RouteOptions.StripTargeted). fields is nil when it does.
func stripTargeted(h http.Header, fields []string) {
	for _, f := range fields {
		delete(h, f)
	}
}
