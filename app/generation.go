package app

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"gateway/compress"
	"gateway/config"
	"gateway/proxy"
)

// genLife counts a generation's requests in flight and retires it.
type genLife struct {
	refs    atomic.Int64
	retired atomic.Bool
	once    sync.Once
	done    chan struct{} // closed when a retired generation is closed
}

// serveHTTP is the listeners' handler: the current generation's root,
// counted in flight on that generation.
func (a *App) serveHTTP(w http.ResponseWriter, r *http.Request) {
	a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	g := a.acquire()
	defer a.release(g)
	g.root.ServeHTTP(w, r)
}

// acquire counts a request on the current generation. A request that
// raced a swap counts itself off the retired one and tries again, so a
// retired generation whose count reached zero gets no new request.
func (a *App) acquire() *generation {
	for {
		g := a.gen.Load()
		g.life.refs.Add(1)
		if a.gen.Load() == g {
			return g
		}
		a.release(g)
	}
}

func (a *App) release(g *generation) {
	if g.life.refs.Add(-1) == 0 && g.life.retired.Load() {
		a.finish(g)
	}
}

// retire marks g, just swapped out, for closing once idle.
func (a *App) retire(g *generation) {
	g.life.done = make(chan struct{})
	if a.reload.retired == nil {
		a.reload.retired = map[*generation]struct{}{}
	}
	a.reload.retired[g] = struct{}{}
	g.life.retired.Store(true)
	if g.life.refs.Load() == 0 {
		a.finish(g)
	}
}

// finish closes a retired generation, once, off the request path.
func (a *App) finish(g *generation) {
	g.life.once.Do(func() {
		go func() {
			g.close()
			a.reload.mu.Lock()
			delete(a.reload.retired, g)
			a.reload.mu.Unlock()
			close(g.life.done)
		}()
	})
}

// closeRetired closes the retired generations still draining, when the
// shutdown grace has ended.
func (a *App) closeRetired() {
	a.reload.mu.Lock()
	var gs []*generation
	for g := range a.reload.retired {
		gs = append(gs, g)
	}
	a.reload.mu.Unlock()
	for _, g := range gs {
		a.finish(g)
		<-g.life.done
	}
}

// generation is what one config builds below the listeners.
type generation struct {
	cfg       *config.Config
	upstreams map[string]*proxy.Upstream
	// compressors by route name, for /compress/stats.
	compressors map[string]*compress.Compressor
	obs         observability // access log and metrics (observe.go)
	handler     *proxy.Handler
	root        http.Handler
	// runner is handler behind the observer, which the job queue's
	// attempts go through; nil without a queue.
	runner http.Handler
	// early: a route allows requests in 0-RTT, so HTTP/3 connections
	// may carry them (App.earlyData).
	early bool
	life  genLife // in-flight count and retirement (generation.go)
	// seq numbers the generations from 1; loaded is when g began to
	// serve (the admin status).
	seq    uint64
	loaded time.Time
}

// stamp numbers g as the generation after prev (nil: the first) and
// notes when it began to serve.
func (g *generation) stamp(prev *generation, now time.Time) {
	g.seq = 1
	if prev != nil {
		g.seq = prev.seq + 1
	}
	g.loaded = now
}

// close releases a generation's upstream transports and access log.
func (g *generation) close() {
	g.closeUpstreams()
	g.closeObservability()
}

func (g *generation) closeUpstreams() {
	for _, u := range g.upstreams {
		u.Close()
	}
}
