package cache

import "net/http"

// NotStored is why a response of a caching route was not stored, from a
// fixed list: each has a stable token, shown in Cache-Status as
// detail=TOKEN, in /cache/stats under not_stored and as the reason label
// of gateway_cache_not_stored_total. The list is fixed so that per-route
// counters are a plain array and dashboards can rely on the labels.
type NotStored int

const (
	NotStoredNone           NotStored = iota // stored, or nothing to say
	NotStoredNoStore                         // the response's no-store
	NotStoredRequestNoStore                  // the request's no-store
	NotStoredPrivate                         // private
	NotStoredSetCookie                       // Set-Cookie, without allow_set_cookie
	NotStoredAuthorization                   // an Authorization request without public, s-maxage or must-revalidate
	NotStoredVaryStar                        // Vary: * (or a field the gateway sets)
	NotStoredStatus                          // a status the cache does not store
	NotStoredMethod                          // a method other than GET and HEAD
	NotStoredTooLarge                        // larger than max_object_size (or the whole cache)
	NotStoredTTLZero                         // no freshness and no validator: could never be reused
	NotStoredTrailer                         // trailers, which the cache does not keep
	NotStoredHitForPass                      // the key is remembered as uncacheable
	NotStoredPartial                         // a 206 that cannot be kept as a part
	NumNotStored
)

// notStoredTokens are the stable tokens, indexed by NotStored.
var notStoredTokens = [NumNotStored]string{
	NotStoredNone:           "",
	NotStoredNoStore:        "no-store",
	NotStoredRequestNoStore: "request-no-store",
	NotStoredPrivate:        "private",
	NotStoredSetCookie:      "set-cookie",
	NotStoredAuthorization:  "authorization",
	NotStoredVaryStar:       "vary-star",
	NotStoredStatus:         "status",
	NotStoredMethod:         "method",
	NotStoredTooLarge:       "too-large",
	NotStoredTTLZero:        "ttl-zero",
	NotStoredTrailer:        "trailer",
	NotStoredHitForPass:     "hit-for-pass",
	NotStoredPartial:        "partial",
}

// String is the reason's token; "" for NotStoredNone or out of range.
func (n NotStored) String() string {
	if n < 0 || n >= NumNotStored {
		return ""
	}
	return notStoredTokens[n]
}

// storableReasons maps Storable's reasons to the stable tokens: Storable's
// strings are for logs and may be refined, the tokens are a public
// contract. This is the one place the two meet.
var storableReasons = map[string]NotStored{
	"method":                    NotStoredMethod,
	"status":                    NotStoredStatus,
	"must-understand":           NotStoredStatus, // must-understand with a status the cache does not implement
	"no-store":                  NotStoredNoStore,
	"private":                   NotStoredPrivate,
	"authorization":             NotStoredAuthorization,
	"set-cookie":                NotStoredSetCookie,
	"vary-star":                 NotStoredVaryStar,
	"no-validator-or-freshness": NotStoredTTLZero,
}

// notStoredFor is the token for Storable's reason on req. Storable says
// "no-store" for either side's directive; the request's is checked first
// there, so a request carrying it is the one that refused.
func notStoredFor(req *http.Request, reason string) NotStored {
	n, ok := storableReasons[reason]
	if !ok {
		// An unknown reason still says the response was not stored; the
		// status is the least misleading of the fixed tokens.
		return NotStoredStatus
	}
	if n == NotStoredNoStore && req != nil && ParseCacheControl(req.Header).NoStore {
		return NotStoredRequestNoStore
	}
	return n
}

// notStored counts one response of the route not stored for n.
func (s *routeCounters) notStoredAdd(n NotStored) {
	if n > NotStoredNone && n < NumNotStored {
		s.notStored[n].Add(1)
	}
}

// notStoredText is, per reason, why the response was not stored and what
// to change, as README's table "Why a response was not cached" shows them
// (a test keeps the two the same): the one place both are written, so
// that gateway explain and the documentation cannot drift apart.
var notStoredText = [NumNotStored][2]string{
	NotStoredNoStore:        {"the origin sent `Cache-Control: no-store`", "the origin, if the content is not per user"},
	NotStoredRequestNoStore: {"the client sent `Cache-Control: no-store`", "nothing: the client asked for it"},
	NotStoredPrivate:        {"the origin sent `Cache-Control: private`", "the origin: `public` or no `private` for shared content"},
	NotStoredSetCookie:      {"the response sets a cookie", "the origin (no cookie on shared content), or `routes[].cache.allow_set_cookie: true` if the cookie is the same for everyone"},
	NotStoredAuthorization:  {"the request carried `Authorization`", "the origin: `public`, `s-maxage` or `must-revalidate` on responses every user may share"},
	NotStoredVaryStar:       {"`Vary: *`, or `Vary` on a field the gateway sets (`X-Forwarded-*`, `Via`, ...)", "the origin: vary on request fields the client sends"},
	NotStoredStatus:         {"a status the cache does not store (206, 304, 1xx, or one such as 302 or 500 without `max-age`, `s-maxage`, `Expires` or `public`)", "the origin: explicit freshness on such statuses if they should be cached"},
	NotStoredMethod:         {"a method other than GET and HEAD, or a HEAD that went to the origin as sent (it has no body to store)", "nothing: only GET responses are stored, and they answer HEAD too"},
	NotStoredTooLarge:       {"the body is over `cache.max_object_size` (or the whole cache)", "raise `cache.max_object_size` (and `cache.max_size`)"},
	NotStoredTTLZero:        {"no freshness (`max-age`, `s-maxage`, `Expires`) and no validator (`ETag`, `Last-Modified`), so it could never be reused", "the origin: send `Cache-Control: max-age=...`, or an `ETag` or `Last-Modified` (which also allows heuristic freshness, capped by `routes[].cache.heuristic_max`)"},
	NotStoredTrailer:        {"the response has trailers, which the cache does not keep", "the origin: no trailers on cacheable responses"},
	NotStoredPartial:        {"a 206 to a range request that cannot be kept as a part: several ranges, an unknown length, or no strong `ETag` to tell that parts are of one representation", "the origin: a strong `ETag` on ranged responses; or `routes[].cache.slice` for large files"},
	NotStoredHitForPass:     {"an earlier response for this URL could not be stored, so its requests go to the origin side by side for `routes[].cache.hit_for_pass`", "fix that response's reason; `hit_for_pass: 0` turns the memory off"},
}

// Because says why a response was not stored for n; "" for
// NotStoredNone or out of range.
func (n NotStored) Because() string {
	if n <= NotStoredNone || n >= NumNotStored {
		return ""
	}
	return notStoredText[n][0]
}

// Advice says what to change so that a response refused for n is
// stored; "" for NotStoredNone or out of range.
func (n NotStored) Advice() string {
	if n <= NotStoredNone || n >= NumNotStored {
		return ""
	}
	return notStoredText[n][1]
}
