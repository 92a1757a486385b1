// Package proxy is the gateway's request path, from a client's socket to
// an upstream's and back.
//
// Connections reach it through package entrypoint, which sorts them by
// protocol and guards HTTP/2 and HTTP/1 framing; the entrypoints'
// requests carry a Tunnels (websocket.go), with which upgraded
// connections register so that a shutdown can end them.
//
// A Handler picks a route by host, path prefix and method (router.go),
// applies the route's rate limit, body size limit and timeout, and hands
// the request to the route's handler: an httputil.ReverseProxy whose
// Transport is an Upstream, or a handler of its own (a composite route),
// behind the route's concurrency limit and wrapped in its Middleware
// (limits.go). WebSocket upgrades are tunnelled
// with their own caps and idle timeout (websocket.go). An Upstream
// balances over its targets (package balance), tracks their health and
// circuit breakers, and keeps their connections pooled: h1Transport
// (h1transport.go), the gateway's own HTTP/1.1 client, when every
// connection is HTTP/1.1, and net/http's Transport when HTTP/2 is spoken
// or negotiated.
//
// The pieces meet at the standard seams: a route's handler is an
// http.Handler that the cache and compression wrap as Middleware, and an
// Upstream is an http.RoundTripper. The constructors (New, NewUpstream)
// validate their options and return an error; on the request
// path, classify (errors.go) picks the status of every upstream failure
// the client sees, and keeps the detail for the log.
package proxy
