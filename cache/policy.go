package cache

import (
	"math"
	"net/http"
	"time"
)

// This file is the RFC 9111 policy of a shared cache as pure functions: no
// clock reads (every time is an argument; ParseHTTPDate's only use of the
// current date is the century of an rfc850 two-digit year), no I/O, no
// stored state. The
// stale extensions of RFC 5861 (stale-while-revalidate, stale-if-error) are
// decided by the caller from the Verdict and staleness Usable reports.

// StoreOptions carry the route's choices that RFC 9111 leaves to the cache.
type StoreOptions struct {
	// AllowSetCookie stores responses that carry Set-Cookie. Off by default:
	// such responses are usually per-user, and a shared cache replaying one
	// user's cookie to others is a session leak. RFC 9111 itself does not
	// forbid it (section 7.3 leaves it to the cache).
	AllowSetCookie bool
	// HeuristicFraction is the share of (Date - Last-Modified) used as
	// heuristic freshness (RFC 9111 section 4.2.2 suggests 10%). Zero, a
	// negative value or NaN mean 0.1.
	HeuristicFraction float64
	// HeuristicMax caps heuristic freshness; zero means 24h and a
	// negative value turns heuristic freshness off (such responses are
	// then stored only to be revalidated).
	HeuristicMax time.Duration
	// TargetedField is the canonical name of a targeted cache-control
	// field (RFC 9213) that comes before CDN-Cache-Control for this
	// cache; "" for none. Route sets it from RouteOptions.TargetedField.
	TargetedField string
}

const (
	defaultHeuristicFraction = 0.1
	defaultHeuristicMax      = 24 * time.Hour
)

func (o StoreOptions) fraction() float64 {
	if !(o.HeuristicFraction > 0) { // also catches NaN
		return defaultHeuristicFraction
	}
	return o.HeuristicFraction
}

func (o StoreOptions) heuristicMax() time.Duration {
	if o.HeuristicMax == 0 {
		return defaultHeuristicMax
	}
	if o.HeuristicMax < 0 {
		return 0
	}
	return o.HeuristicMax
}

// heuristicStatus reports whether code is heuristically cacheable
// (RFC 9110 section 15.1): such a response may be stored and given a
// heuristic freshness lifetime without explicit freshness information.
func heuristicStatus(code int) bool {
	switch code {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understoodStatus reports whether this cache understands and implements
// the caching requirements of code, which is what must-understand
// (RFC 9111 section 5.2.2.3) asks about. It is the heuristically cacheable
// set minus 206: partial content needs range support (combining and
// serving ranges, RFC 9111 section 3.3) that the cache does not have yet.
// 304 is excluded because it is not stored at all: it updates a stored
// response (RFC 9111 section 4.3.4), it never becomes one.
func understoodStatus(code int) bool {
	return code != 206 && heuristicStatus(code)
}

// Storable reports whether a shared cache may store resp as the answer to
// req (RFC 9111 section 3), and if not a short reason for logs and the
// Cache-Status header: "invalid" (nil argument), "method", "status",
// "must-understand", "no-store", "private", "authorization", "set-cookie",
// "vary-star" or "no-validator-or-freshness". reason is "" when ok.
//
// The response directives are those of a valid targeted field
// (CDN-Cache-Control, or the route's own, RFC 9213) when there is one,
// else Cache-Control's. The checks, in the order their reasons are
// reported:
//
//   - method: only GET. HEAD responses carry no body, so RFC 9111 section
//     4.3.5 only lets them refresh a stored GET response; that is not
//     implemented yet, so HEAD is not storable.
//   - status: final (200-599) and not 206 or 304. 206 needs range support
//     (section 3.3) the cache lacks; 304 updates a stored response
//     (section 4.3.4) and is never stored itself. Statuses outside the
//     understood set (see understoodStatus) need explicit freshness
//     (s-maxage, max-age, Expires) or public (section 3, last condition).
//   - must-understand (section 5.2.2.3): with a status the cache does not
//     understand, not storable; with an understood one, the response's
//     no-store is ignored, as that section says a cache implementing
//     must-understand should do.
//   - no-store in the request or the response (sections 5.2.1.5, 5.2.2.5).
//   - private (section 5.2.2.7): a shared cache must not store it. A field
//     list would allow storing the response without those fields, but
//     the cache does not strip fields, so any private means no.
//   - authorization (section 3.5): a request with Authorization only if
//     the response has public, s-maxage or must-revalidate.
//   - set-cookie: unless StoreOptions.AllowSetCookie (see there).
//   - vary-star: Vary: * never matches a later request (section 4.1), so
//     storing it only wastes space. A Vary member naming a field the
//     gateway sets on the forwarded request (X-Forwarded-For and the like,
//     see gatewayFields) counts as "*": the value the origin varied on is
//     not the one the cache sees in the client's request.
//   - no-validator-or-freshness: the response must be reusable somehow:
//     explicit freshness, a validator (ETag or Last-Modified; Last-Modified
//     also enables heuristic freshness for heuristically cacheable
//     statuses) or no-cache (stored to be revalidated). Otherwise the entry
//     could never be served or revalidated.
func Storable(req *http.Request, resp *http.Response, o StoreOptions) (ok bool, reason string) {
	if req == nil || resp == nil {
		return false, "invalid"
	}
	if req.Method != http.MethodGet {
		return false, "method"
	}
	code := resp.StatusCode
	if code < 200 || code > 599 || code == http.StatusPartialContent || code == http.StatusNotModified {
		return false, "status"
	}
	cc, targeted := cacheDirectives(resp.Header, o.TargetedField)
	understood := understoodStatus(code)
	if cc.MustUnderstand && !understood {
		return false, "must-understand"
	}
	if ParseCacheControl(req.Header).NoStore {
		return false, "no-store"
	}
	if cc.NoStore && !(cc.MustUnderstand && understood) {
		return false, "no-store"
	}
	if cc.Private {
		return false, "private"
	}
	if hasField(req.Header, "Authorization") && !cc.Public && cc.SMaxAge < 0 && !cc.MustRevalidate {
		return false, "authorization"
	}
	if !o.AllowSetCookie && hasField(resp.Header, "Set-Cookie") {
		return false, "set-cookie"
	}
	if varyStar(resp.Header) {
		return false, "vary-star"
	}
	explicit := hasExplicitFreshness(cc, targeted, resp.Header)
	if !understood && !explicit && !cc.Public {
		return false, "status"
	}
	if !explicit && !cc.NoCache && !hasField(resp.Header, "Etag") && !hasField(resp.Header, "Last-Modified") {
		return false, "no-validator-or-freshness"
	}
	return true, ""
}

// hasField reports whether h has at least one name field line, even an
// empty one: an empty Authorization still marks an authenticated request.
func hasField(h http.Header, name string) bool {
	return len(h.Values(name)) > 0
}

// hasExplicitFreshness reports the explicit expiration information of
// RFC 9111 section 4.2.1. An Expires header counts even when invalid: it
// then means "already expired", which is still explicit. It does not
// count when cc came from a targeted field, which replaces Expires too
// (RFC 9213 section 2.1).
func hasExplicitFreshness(cc Directives, targeted bool, h http.Header) bool {
	return cc.SMaxAge >= 0 || cc.MaxAge >= 0 || (!targeted && hasField(h, "Expires"))
}

// varyStar reports whether any Vary list member is "*" or a field the
// gateway sets on the forwarded request.
func varyStar(h http.Header) bool {
	for _, line := range h.Values("Vary") {
		for len(line) > 0 {
			var f string
			f, line = cutByte(line, ',')
			if f = trimOWS(f); f == "*" || setByGateway(f) {
				return true
			}
		}
	}
	return false
}

// FreshnessLifetime is RFC 9111 section 4.2.1 for a shared cache: the first
// of s-maxage, max-age, Expires - Date, and otherwise a heuristic
// (section 4.2.2). A valid targeted field (see cacheDirectives) gives the
// directives in place of Cache-Control, and Expires is then not used. heuristic reports that the heuristic rule applied (no
// explicit freshness, a heuristically cacheable status and a Last-Modified
// field), even if it yielded 0.
//
// Doubtful input gives a shorter lifetime, never a longer one:
//   - Expires that does not parse (e.g. "0") means already expired
//     (section 5.3), so 0; so does Expires at or before Date.
//   - Expires with a missing or invalid Date gives 0. RFC 9110 section
//     6.6.1 makes the cache add a Date (the receipt time) before storing a
//     response without one; callers must do that first.
//   - Several Expires, Date or Last-Modified lines that differ are treated
//     as invalid (section 4.2 lets a cache consider such responses stale).
//   - The heuristic is HeuristicFraction of (Date - Last-Modified), capped
//     at HeuristicMax, and 0 when Last-Modified is invalid or after Date.
//     It is only used for heuristically cacheable statuses (RFC 9110
//     section 15.1), even when public is present: public makes a response
//     storable, not fresh.
//
// The result is never negative.
func FreshnessLifetime(resp *http.Response, o StoreOptions) (lifetime time.Duration, heuristic bool) {
	if resp == nil {
		return 0, false
	}
	cc, targeted := cacheDirectives(resp.Header, o.TargetedField)
	// s-maxage is for shared caches and overrides max-age (section 5.2.2.10).
	if cc.SMaxAge >= 0 {
		return seconds(cc.SMaxAge), false
	}
	if cc.MaxAge >= 0 {
		return seconds(cc.MaxAge), false
	}
	if !targeted && hasField(resp.Header, "Expires") {
		exp, ok1 := headerTime(resp.Header, "Expires")
		date, ok2 := headerTime(resp.Header, "Date")
		if !ok1 || !ok2 {
			return 0, false
		}
		return nonNegative(exp.Sub(date)), false
	}
	if !heuristicStatus(resp.StatusCode) || !hasField(resp.Header, "Last-Modified") {
		return 0, false
	}
	lm, ok1 := headerTime(resp.Header, "Last-Modified")
	date, ok2 := headerTime(resp.Header, "Date")
	if !ok1 || !ok2 {
		return 0, true
	}
	age := date.Sub(lm) // saturates rather than overflowing
	if age <= 0 {
		return 0, true
	}
	limit := o.heuristicMax()
	// Multiply in float64 and compare before converting back: a huge
	// fraction or interval must cap, not overflow int64.
	f := float64(age) * o.fraction()
	if f >= float64(limit) {
		return limit, true
	}
	return time.Duration(f), true
}

// seconds converts clamped delta-seconds (at most 2^31, see
// ParseCacheControl) to a Duration; it cannot overflow.
func seconds(n int64) time.Duration {
	return time.Duration(n) * time.Second
}

func nonNegative(d time.Duration) time.Duration {
	return max(d, 0)
}

// headerTime parses the HTTP-date in h's name field exactly (see
// ParseHTTPDate). It is false when the field is absent, does not
// parse, or appears on several lines with different values.
func headerTime(h http.Header, name string) (time.Time, bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return time.Time{}, false
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return time.Time{}, false
		}
	}
	return ParseHTTPDate(trimOWS(vs[0]))
}

// CurrentAge is RFC 9111 section 4.2.3, the age of a stored response at
// now, given when the request that fetched it was sent (requestTime) and
// when the response arrived (responseTime):
//
//	apparent_age          = max(0, response_time - date_value)
//	response_delay        = response_time - request_time
//	corrected_age_value   = age_value + response_delay
//	corrected_initial_age = max(apparent_age, corrected_age_value)
//	resident_time         = now - response_time
//	current_age           = corrected_initial_age + resident_time
//
// A missing or invalid Date counts as response_time (apparent age 0); an
// invalid Age (not delta-seconds, section 5.1) counts as 0; Age over 2^31
// is clamped (section 1.2.2). Times out of order (a response before its
// request, now before the response) give a zero delay or resident time
// rather than a negative one, so the result is never negative; sums
// saturate instead of overflowing.
func CurrentAge(resp *http.Response, requestTime, responseTime, now time.Time) time.Duration {
	var h http.Header
	if resp != nil {
		h = resp.Header
	}
	date, ok := headerTime(h, "Date")
	if !ok {
		date = responseTime
	}
	apparent := nonNegative(responseTime.Sub(date))
	delay := nonNegative(responseTime.Sub(requestTime))
	corrected := addSat(ageValue(h), delay)
	resident := nonNegative(now.Sub(responseTime))
	return addSat(max(apparent, corrected), resident)
}

// ageValue is the Age field (section 5.1) as a Duration. Age is a
// singleton, but when it arrives as a list (on one line or several) the
// section says to use the first member and discard the rest; that member
// must be delta-seconds (no quotes, no sign), else the field is ignored,
// i.e. 0 as if absent. Values over 2^31 are capped (section 1.2.2).
func ageValue(h http.Header) time.Duration {
	for _, line := range h.Values("Age") {
		for len(line) > 0 {
			var m string
			m, line = cutByte(line, ',')
			if m = trimOWS(m); m == "" {
				continue // empty list elements are not members (RFC 9110 5.6.1)
			}
			n, ok := parseDelta(m, false)
			if !ok {
				return 0
			}
			return seconds(n)
		}
	}
	return 0
}

// addSat adds two non-negative durations, saturating at the maximum.
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Verdict is what Usable decides about serving a stored response. The zero
// value is Revalidate, the safe default.
type Verdict int

const (
	// Revalidate: the response must not be served before the origin has
	// validated it, and the stale extensions of RFC 5861 must not be used
	// either. Reasons: no-cache in the request (RFC 9111 section 5.2.1.4)
	// or the response (section 5.2.2.4; a field list is treated as bare,
	// since the cache does not strip fields); the request's max-age or
	// min-fresh rejects it (sections 5.2.1.1, 5.2.1.3: the client asked
	// for a fresher response, so serving an older one anyway would ignore
	// it); or it is stale and has must-revalidate, proxy-revalidate or
	// s-maxage (sections 5.2.2.2, 5.2.2.8, 5.2.2.10; section 4.2.4 forbids
	// serving it stale).
	Revalidate Verdict = iota
	// Stale: past its freshness lifetime. It must be revalidated, or may be
	// served under stale-while-revalidate or stale-if-error if the caller
	// decides they apply (RFC 5861), using the staleness Usable returns.
	Stale
	// StaleAcceptable: stale, but within what the request's max-stale
	// (section 5.2.1.2) accepts, so it may be served without validation.
	StaleAcceptable
	// Fresh: may be served without contacting the origin (section 4.2).
	Fresh
)

func (v Verdict) String() string {
	switch v {
	case Revalidate:
		return "Revalidate"
	case Stale:
		return "Stale"
	case StaleAcceptable:
		return "StaleAcceptable"
	case Fresh:
		return "Fresh"
	}
	return "Verdict(invalid)"
}

// Usable decides whether a stored response with current age age and
// freshness lifetime lifetime may be served for a request, from the
// request's and the response's Cache-Control (RFC 9111 sections 4.2, 4.2.4,
// 5.2.1 and 5.2.2). staleness is how far age is past lifetime (0 while
// fresh; a response whose age equals its lifetime is stale by 0): the measure RFC 5861's stale-while-revalidate and stale-if-error
// windows are compared with. See Verdict for the outcomes. Negative age or
// lifetime count as 0.
//
// Request directives: max-age requires age <= max-age; min-fresh requires
// lifetime - age >= min-fresh; max-stale accepts a stale response up to
// that staleness (any staleness when bare), but never one with
// must-revalidate, proxy-revalidate or s-maxage, which a shared cache must
// not serve stale (sections 4.2.4, 5.2.2.2, 5.2.2.8, 5.2.2.10). max-stale
// relaxes only the response's own lifetime; the client's max-age and
// min-fresh stay hard limits. only-if-cached is the caller's business (it
// changes what to do on a miss, not whether a hit is usable), and
// immutable (RFC 8246) is not used.
func Usable(reqCC, respCC Directives, age, lifetime time.Duration) (v Verdict, staleness time.Duration) {
	age = nonNegative(age)
	lifetime = nonNegative(lifetime)
	staleness = nonNegative(age - lifetime) // both >= 0: cannot overflow
	if reqCC.NoCache || respCC.NoCache {
		return Revalidate, staleness
	}
	if reqCC.MaxAge >= 0 && age > seconds(reqCC.MaxAge) {
		return Revalidate, staleness
	}
	if reqCC.MinFresh >= 0 && lifetime-age < seconds(reqCC.MinFresh) {
		return Revalidate, staleness
	}
	// Fresh means lifetime > age, strictly (section 4.2): max-age=0 is
	// stale at once.
	if lifetime > age {
		return Fresh, 0
	}
	strict := respCC.MustRevalidate || respCC.ProxyRevalidate || respCC.SMaxAge >= 0
	if strict {
		return Revalidate, staleness
	}
	if reqCC.MaxStaleAny || (reqCC.MaxStale >= 0 && staleness <= seconds(reqCC.MaxStale)) {
		return StaleAcceptable, staleness
	}
	return Stale, staleness
}
