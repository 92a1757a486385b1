// Package outcome is how the cache tells an observer what it did for a
// request, without the two importing each other: the cache classifies
// its own decision as an Outcome and hands it to the Recorder it finds
// in the request's context; the proxy puts one there (its Observation)
// for the requests an observer wrapped around it describes, and the
// access log and the metrics read it back.
//
// Requests that carry no Recorder (batch items, composite parts, a
// cache used without an observer) record nothing: their outer request
// is the one described.
package outcome

import "context"

// Outcome is what the cache did for a response, in the few classes that
// logs and metrics use.
type Outcome uint8

// Outcomes. Num counts them.
const (
	// None: the cache took no part; the route does not cache.
	None Outcome = iota
	// Hit: served fresh from the cache.
	Hit
	// Stale: served stale (stale-while-revalidate, max-stale,
	// stale-if-error).
	Stale
	// Miss: fetched from the origin for the cache, a revalidation
	// included.
	Miss
	// Pass: forwarded without the cache's involvement: an unsafe
	// method, a key remembered as uncacheable (hit-for-pass), a request
	// that forbids storing or carries preconditions.
	Pass
	// Bypass: a protocol upgrade, which the cache never handles.
	Bypass
	Num
)

var names = [Num]string{"none", "hit", "stale", "miss", "pass", "bypass"}

func (o Outcome) String() string {
	if o < Num {
		return names[o]
	}
	return "none"
}

// Recorder takes the outcome of one request. The cache calls it as it
// writes the response's Cache-Status, possibly from a goroutine other
// than the request's.
type Recorder interface {
	RecordCacheOutcome(Outcome)
}

type recorderKey struct{}

// NewContext returns ctx carrying rec. It allocates the context, so
// make it together with whatever else a request's context needs.
func NewContext(ctx context.Context, rec Recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, rec)
}

// IsKey reports whether key is the one FromContext looks a Recorder up
// by, so that a context type of a caller's own can carry one (its Value
// answering for that key) where the allocation of NewContext would be
// one too many.
func IsKey(key any) bool {
	_, ok := key.(recorderKey)
	return ok
}

// FromContext is the Recorder ctx carries, or nil.
func FromContext(ctx context.Context) Recorder {
	rec, _ := ctx.Value(recorderKey{}).(Recorder)
	return rec
}

// Record hands o to the Recorder in ctx, if there is one.
func Record(ctx context.Context, o Outcome) {
	if rec := FromContext(ctx); rec != nil {
		rec.RecordCacheOutcome(o)
	}
}
