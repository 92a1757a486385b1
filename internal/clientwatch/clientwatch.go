// Package clientwatch lets an HTTP/1 client connection tell the upstream
// exchange of the request it carries that the client has left, without
// a registration on the request's context for every request.
//
// net/http ends an HTTP/1 request's context when its background read of
// the connection fails: the client hung up. A proxy that waits on an
// upstream must then stop waiting, which context.AfterFunc arranges at
// the cost of a child context, a map and a channel on the request's
// context, per request. The connection itself sees that read fail
// first; the entrypoint's HTTP/1 connections are Watchers that pass it
// on to the one Leaver watching at the time.
package clientwatch

import "context"

// Leaver is told that the client of the request it watches has left.
type Leaver interface {
	// ClientLeft is called at most once, from the goroutine that read
	// the connection, before net/http ends the request's context: it
	// must not block, and must let that context end before acting on
	// the client's departure.
	ClientLeft()
}

// Watcher is an HTTP/1 client connection.
type Watcher interface {
	// Watch makes l the Leaver of the request in progress; false when
	// the client is gone already, or another Leaver watches.
	Watch(l Leaver) bool
	// Unwatch ends l's watch: false when l.ClientLeft has been called.
	Unwatch(l Leaver) bool
	// Serves reports whether ctx is the context of the request the
	// connection serves now, as net/http made it.
	Serves(ctx context.Context) bool
}

type key struct{}

// NewContext returns ctx carrying w, for the base context of w's
// requests.
func NewContext(ctx context.Context, w Watcher) context.Context {
	return context.WithValue(ctx, key{}, w)
}

// For returns the Watcher of the connection that carries ctx's request,
// when ctx is that request's context as net/http made it: ended only by
// the client leaving and by the request's end, which the Watcher
// covers. nil otherwise: a context derived from it may end for other
// reasons too (a batch item's timeout, say), and needs a registration
// of its own.
func For(ctx context.Context) Watcher {
	w, _ := ctx.Value(key{}).(Watcher)
	if w == nil || !w.Serves(ctx) {
		return nil
	}
	return w
}
