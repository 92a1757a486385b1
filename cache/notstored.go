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
