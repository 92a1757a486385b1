package cache

import (
	"net/http"
	"strings"
)

// Explanation is what the cache would do with one response of a route
// and why, for a person asking "why wasn't this cached?" (gateway
// explain, the admin's /cache/explain). Durations are in seconds in
// JSON, as the rest of the admin API reports them.
type Explanation struct {
	Route string `json:"route"`
	// Key is the primary cache key, its parts (scheme, host, path,
	// query, keyed fields) separated by spaces for reading: the stored
	// key separates them with control bytes.
	Key string `json:"key"`
	// Vary are the request fields the response varies on, which the
	// stored variant would be keyed on besides Key.
	Vary   []string `json:"vary,omitempty"`
	Status int      `json:"status"`
	// DirectivesFrom is the field whose directives the cache obeyed: the
	// route's targeted field, CDN-Cache-Control or Cache-Control.
	DirectivesFrom string `json:"directives_from"`
	// Directives is that field's value as sent.
	Directives string `json:"directives"`
	Stored     bool   `json:"stored"`
	// Lifetime is the freshness lifetime; Heuristic says it was guessed
	// from Last-Modified rather than given by the origin.
	Lifetime             float64 `json:"lifetime_seconds"`
	Heuristic            bool    `json:"heuristic"`
	StaleWhileRevalidate float64 `json:"stale_while_revalidate_seconds"`
	StaleIfError         float64 `json:"stale_if_error_seconds"`
	Grace                float64 `json:"grace_seconds"`
	// Reason is the not-stored token (Cache-Status detail), "" when
	// stored; Because and Advice are its meaning and what to change.
	Reason  string `json:"reason,omitempty"`
	Because string `json:"because,omitempty"`
	Advice  string `json:"advice,omitempty"`
}

// Explain says whether route o would store resp as the answer to req,
// and for how long or why not, by the same pure rules the cache applies
// (Storable, FreshnessLifetime, VaryFields, the route's Keyer). size is
// the response body's length and maxObjectSize the cache's limit on one
// entry (0: none). It does no I/O and reads no clock, so what it says
// is what the rules say for exactly these messages.
func Explain(o RouteOptions, req *http.Request, resp *http.Response, size, maxObjectSize int64) (Explanation, error) {
	keyer, err := NewKeyer(o.Key)
	if err != nil {
		return Explanation{}, err
	}
	field := o.TargetedField
	if field != "" {
		field = http.CanonicalHeaderKey(field)
	}
	policy := o.Policy
	policy.TargetedField = field
	e := Explanation{Route: o.Name, Key: readableKey(keyer.Key(req)), Status: resp.StatusCode}
	e.Vary, _ = VaryFields(resp.Header)
	cc, targeted := cacheDirectives(resp.Header, field)
	e.DirectivesFrom = "Cache-Control"
	if targeted {
		e.DirectivesFrom = CDNCacheControl
		if field != "" {
			if _, ok := targetedDirectives(resp.Header[field]); ok {
				e.DirectivesFrom = field
			}
		}
	}
	e.Directives = strings.Join(resp.Header.Values(e.DirectivesFrom), ", ")

	ok, reason := Storable(req, resp, policy)
	var n NotStored
	switch {
	case !ok:
		n = notStoredFor(req, reason)
	case len(resp.Trailer) > 0:
		n = NotStoredTrailer
	case maxObjectSize > 0 && size > maxObjectSize:
		n = NotStoredTooLarge
	}
	if n != NotStoredNone {
		e.Reason, e.Because, e.Advice = n.String(), n.Because(), n.Advice()
		return e, nil
	}
	e.Stored = true
	life, heuristic := FreshnessLifetime(resp, policy)
	e.Lifetime, e.Heuristic = life.Seconds(), heuristic
	// The windows as the cache applies them to a stored response: its
	// own directive, else the route's default (a request may widen them
	// later, which is the client's and not the response's).
	swr, sie := o.StaleWhileRevalidate, o.StaleIfError
	if cc.StaleWhileRevalidate >= 0 {
		swr = seconds(cc.StaleWhileRevalidate)
	}
	if cc.StaleIfError >= 0 {
		sie = seconds(cc.StaleIfError)
	}
	strict := cc.MustRevalidate || cc.ProxyRevalidate || cc.NoCache || cc.SMaxAge >= 0
	if strict {
		// RFC 9111 4.2.4: such a response is never served stale.
		swr, sie = 0, 0
	}
	e.StaleWhileRevalidate, e.StaleIfError = swr.Seconds(), sie.Seconds()
	if !strict && cc.StaleIfError < 0 {
		e.Grace = o.Grace.Seconds()
	}
	return e, nil
}

// readableKey shows a key's control-byte separators as spaces.
func readableKey(k string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, k)
}
