// Package cache is the gateway's shared HTTP cache (RFC 9111, with the
// stale-while-revalidate and stale-if-error extensions of RFC 5861). A
// Cache is one store shared by every cached route; Route.Wrap puts a
// route's caching in front of its proxy as middleware.
//
// The rules are pure functions, without network, clock or store:
// ParseCacheControl (cachecontrol.go); Storable, FreshnessLifetime,
// CurrentAge and Usable (policy.go); the primary key (Keyer, key.go) and
// the variant key (VariantKey, vary.go); Cache-Status (status.go) and the
// Outcome it classifies (outcome.go). As the cache writes a response's
// Cache-Status it reports that Outcome to the outcome.Recorder in the
// request's context, the proxy's Observation when an observer (the
// access log, the metrics) describes the request; the header itself is
// for clients and is never parsed back.
//
// The request path is handler.go and fetch.go: look the key up, serve a
// fresh (or acceptably stale) variant, else go forward, collapsing
// concurrent misses into one fetch (singleflight), and store what the
// origin sends while it streams to the client. encode.go keeps each
// encoded form of a stored body, made once per coding. admin.go serves
// the stats and purge endpoints.
//
// Storage. The cache keeps responses through the Store interface
// (store.go), whose every call takes a context and may fail: a failed Get
// is a miss and a failed Set a response not stored, so a store costs hits,
// never requests. A stored response is an Entry (entry.go): a Record
// (record.go), which is everything another process needs to serve it and
// has a versioned, checked wire form, wrapped with the state this process
// keeps beside it (soft-purge and refresh flags, parsed directives,
// encoded forms). MemoryStore (memstore.go) is the store of one process:
// ristretto bounds its memory by Entry.Size, and an index by key, URL,
// path (across hosts) and tag serves its purges. TieredStore (tiered.go) composes two stores: a
// Get that misses the first is answered by the second and fills the
// first, writes and purges go to both, and the second tier's failures are
// misses.
//
// A shared second tier plugs in as a Store of its own: it keeps Records
// in their wire form (Record.MarshalBinary, UnmarshalBinary), keeps its
// own purge index, and builds Entries from what it reads with NewEntry.
// NewTieredStore(memory, shared, onError) puts it under a MemoryStore and
// Options.Store hands the result to New; the request path does not change.
package cache
