// Package limit holds the gateway's overload protection, apart from
// any request or response: token buckets per client key, at most
// MaxKeys of them, idle ones swept (Keyed), and a limit on concurrent
// requests with a bounded, timed queue (Concurrency). ParseKey reads
// what a rate limit is keyed by, for the proxy's options and their
// Validate alike; package proxy takes each request's key (its client address or
// a header) and answers a refused request (429 or 503, with
// Retry-After).
package limit
