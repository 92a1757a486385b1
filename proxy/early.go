package proxy

import (
	"net/http"

	"gateway/internal/httpmethod"
)

// Requests sent in TLS early data (HTTP/3 0-RTT) can be replayed by
// anyone who saw them, so the gateway serves one only on a route that
// allows it (RouteOptions.AllowEarlyData) and only with a safe method;
// the rest are answered 425 Too Early, which tells the client to send
// the request again once the handshake is complete (RFC 8470 section
// 5.2). A server reads a request as early data when it reaches it
// before the handshake has completed: HTTP/3's marks them with
// r.TLS.HandshakeComplete false (HTTP/1.1 and HTTP/2 complete the
// handshake before reading any request).

// isEarly reports whether r arrived in early data.
func isEarly(r *http.Request) bool { return r.TLS != nil && !r.TLS.HandshakeComplete }

// tooEarly answers a request that may not be served from early data.
func tooEarly(w http.ResponseWriter) {
	Error(w, http.StatusTooEarly, "too early: send the request again after the handshake")
}

// RefuseEarly answers 425 to every request in early data with an
// unsafe method, before next: for what is served in front of the
// routes (the batch endpoint, the job queue's paths), which no route's
// allowance covers.
func RefuseEarly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isEarly(r) && !httpmethod.Safe(r.Method) {
			tooEarly(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}
