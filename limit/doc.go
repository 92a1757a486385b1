// Package limit holds the gateway's overload protection, without HTTP:
// token buckets per client key (Keyed) and a bounded, queued limit on
// concurrent requests (Concurrency). Package proxy decides what a key is
// and what a refused request is answered with.
package limit
