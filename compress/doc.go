// Package compress negotiates and applies response compression (gzip,
// brotli, zstd) for the gateway: it decides, per request, which content
// coding a client accepts and the proxy is willing to produce, so that
// cached and proxied responses can be sent compressed without ever
// breaking a client that cannot decode them.
//
// The file set starts with negotiation: [Negotiate] parses the request's
// Accept-Encoding field (RFC 9110 section 12.5.3) and picks a coding. It
// is a pure function with no allocations, so it can run on every request
// and at cache-key time without measurable cost.
package compress
