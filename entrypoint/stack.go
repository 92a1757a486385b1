package entrypoint

import "net/http"

// The HTTP/2 server runs every stream's handler on a new goroutine,
// whose stack starts at the runtime's least (8 KiB). A proxied request
// needs more than that, and the runtime grows the stack where the path
// first runs out, deep in the proxy (ReverseProxy), by copying it and
// adjusting every frame on it: measured under h2c load, that copy was
// about 4% of the gateway's CPU, some 4 µs a request. withStack grows
// it once, before anything else runs on it, when it holds a few frames
// and the copy costs little. HTTP/1.1 needs none of this: a connection
// serves its requests on one goroutine, whose stack stays grown.
func withStack(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reserveStack()
		h.ServeHTTP(w, r)
	})
}

// stackReserve is the frame reserveStack takes: more than a new
// goroutine's stack has free, so that the runtime doubles the stack to
// 16 KiB, which holds a proxied request's deepest path.
const stackReserve = 8 << 10

// stackIndex stays -1, so reserveStack only reserves its frame and
// spends nothing clearing it. (The frame is the function's whole, as
// the runtime checks on entry, used or not.)
var stackIndex = -1

//go:noinline
func reserveStack() {
	if i := stackIndex; i >= 0 {
		var b [stackReserve]byte
		b[i] = 1
		stackIndex = int(b[i/2])
	}
}
