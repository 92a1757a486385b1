package cache_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"gateway/cache"
	"gateway/internal/outcome"
)

// recorder is an outcome.Recorder that counts its calls.
type recorder struct {
	o atomic.Uint32
	n atomic.Int32
}

func (r *recorder) RecordCacheOutcome(o outcome.Outcome) {
	r.o.Store(uint32(o))
	r.n.Add(1)
}

// TestOutcomeRecorded: the cache reports what it did to the recorder in
// the request's context, once per response, as it writes Cache-Status.
func TestOutcomeRecorded(t *testing.T) {
	g := newGateway(t, gwConfig{})
	var rec atomic.Pointer[recorder]
	hook := func(r *http.Request) *http.Request {
		return r.WithContext(outcome.NewContext(r.Context(), rec.Load()))
	}
	g.hook.Store(&hook)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flaky":
			if n, _ := r.Context().Value(countKey{}).(int); n > 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			g.origin.reply(w, r, resp{hdr: []string{"Cache-Control", "max-age=1, stale-if-error=600"}, body: "v"})
		default:
			g.origin.reply(w, r, resp{hdr: []string{"Cache-Control", "max-age=60"}, body: "v"})
		}
	})
	for _, s := range []struct {
		method, path string
		hdr          []string
		advance      time.Duration
		want         cache.Outcome
	}{
		{"GET", "/a", nil, 0, cache.OutcomeMiss},
		{"GET", "/a", nil, 0, cache.OutcomeHit},
		{"GET", "/c", []string{"Cache-Control", "no-store"}, 0, cache.OutcomePass},
		{"GET", "/b", []string{"Cache-Control", "only-if-cached"}, 0, cache.OutcomeMiss},
		{"POST", "/a", nil, 0, cache.OutcomePass},
		{"GET", "/flaky", nil, 0, cache.OutcomeMiss},
		{"GET", "/flaky", nil, 2 * time.Second, cache.OutcomeStale},
		{"GET", "/flaky", []string{"Cache-Control", "max-stale=60"}, 0, cache.OutcomeStale},
	} {
		g.clk.Advance(s.advance)
		r := &recorder{}
		rec.Store(r)
		res := g.do(t, s.method, s.path, s.hdr...)
		if got, n := outcome.Outcome(r.o.Load()), r.n.Load(); got != s.want || n != 1 {
			t.Errorf("%s %s %q (Cache-Status %q): recorded %s %d times; want %s once",
				s.method, s.path, s.hdr, res.header.Get("Cache-Status"), got, n, s.want)
		}
	}
}
