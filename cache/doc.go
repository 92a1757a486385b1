// Package cache is the gateway's shared HTTP cache (RFC 9111, with the
// stale-while-revalidate and stale-if-error extensions of RFC 5861).
//
// It starts with the pure header parsing that the storage and freshness
// rules stand on: ParseCacheControl turns Cache-Control field lines into
// Directives without touching the network, the clock or any store.
package cache
