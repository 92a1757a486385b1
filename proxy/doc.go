// Package proxy is the gateway's request path, from a client's socket to
// an upstream's and back.
//
// A Server owns the listeners, and every connection is sorted by
// protocol before any HTTP server sees it (connListener, edge.go). On a
// TLS listener the gateway runs the handshake itself and reads the
// protocol ALPN chose; on a cleartext listener with h2c it compares the
// first bytes with the HTTP/2 client preface, deciding at the first byte
// that differs. HTTP/2 connections are served by x/net/http2's server
// through h2Guard (h2guard.go), which follows the frame headers and gives
// each connection a budget of resets and control frames: a client that
// spends it gets GOAWAY ENHANCE_YOUR_CALM and loses the connection.
// HTTP/1 connections are served by net/http's server through clientConn
// (h1framing.go), which counts Content-Length fields, so that a request
// carrying both Content-Length and Transfer-Encoding (a smuggling
// attempt) has its connection closed after the response.
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
// Upstream is an http.RoundTripper. The constructors (New, NewUpstream,
// NewServer) validate their options and return an error; on the request
// path, classify (errors.go) picks the status of every upstream failure
// the client sees, and keeps the detail for the log.
package proxy
