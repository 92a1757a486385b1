// Package proxy is the gateway's request path: listeners that accept
// HTTP/1.1, HTTP/2 over TLS and h2c; a router that picks a route by host,
// path prefix and method; and, per route, an httputil.ReverseProxy that
// sends the request to a pooled upstream transport which balances over the
// upstream's targets and tracks their health.
//
// The pieces meet at the standard seams: a route's work is an http.Handler
// that later stages (cache, compression) wrap as middleware, and an
// upstream is an http.RoundTripper. Every constructor validates its
// options and returns an error; nothing on the request path returns one.
package proxy
