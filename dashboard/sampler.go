package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gateway/admin"
)

// KeyTracker counts the cache keys each route hits and misses most, as
// the cache does while asked to (WatchKeys). The sampler turns it on
// while a page watches and off when none does, so an unwatched gateway
// counts no key.
type KeyTracker interface {
	WatchKeys(on bool)
	// TopKeys returns at most n keys each, largest count first.
	TopKeys(route string, n int) (hits, misses []KeyCount)
}

// Options configure a Dashboard.
type Options struct {
	// Gatherer is the registry /metrics serves; the rates and totals
	// come from it, so the page and a scrape agree. Required.
	Gatherer prometheus.Gatherer
	// Backend is the gateway as the admin endpoints see it: status,
	// config, upstreams, cache, jobs and WebSocket state. Required.
	Backend admin.Backend
	// Routes returns the configured route names in configuration order;
	// the page shows those routes, in that order, and history is kept
	// for them only. nil: the routes the registry names, by name.
	Routes func() []string
	// Keys, if set, gives each caching route's top keys.
	Keys KeyTracker
	// Interval is the sampling period; 0 means one second.
	Interval time.Duration
	// Idle is how long a GET of the snapshot keeps the sampler running
	// without an open stream; 0 means five seconds.
	Idle time.Duration
	// Heartbeat is the period of the event stream's comment lines,
	// which keep proxies from closing a quiet stream; 0 means 15 seconds.
	Heartbeat time.Duration
	// Now is the clock of samples; nil means time.Now.
	Now func() time.Time
	// NewTicker starts the sampler's ticker: its channel and its stop.
	// nil means time.NewTicker. A test passes one that fires when it
	// says so.
	NewTicker func(d time.Duration) (<-chan time.Time, func())
}

// Dashboard samples the gateway for the live page and serves the page
// and its data (handler.go). One sampler serves every watcher: it runs
// only while a page watches, gathers once per interval whatever their
// number, and encodes each tick once for all of them.
type Dashboard struct {
	o      Options
	static map[string]*file // handler.go

	// sampling serializes samples (tick), so that one reading follows
	// another; it guards prev and history.
	sampling sync.Mutex
	prev     *reading
	prevAt   time.Time
	prevRun  uint64 // the run prev was read in
	history  history

	// mu guards what follows.
	mu      sync.Mutex
	subs    map[*watcher]struct{}
	lastGet time.Time     // the last GET of the snapshot
	running bool          // the ticker goroutine runs
	runs    uint64        // counts the starts of the ticker goroutine
	stop    chan struct{} // closed to end the ticker goroutine
	latest  *sample       // nil before the first sample of a run
	closed  bool
	done    chan struct{} // closed by Close: streams end
}

// sample is one tick's snapshot, its event already encoded, and the
// full snapshot's encoding once a watcher asked for it.
type sample struct {
	snap Snapshot
	tick []byte // the "tick" event, shared by every stream
	full []byte // the full snapshot's JSON, made at most once
	once sync.Once
}

// watcher is one open event stream. ch holds the newest tick not yet
// written: a slow stream skips ticks instead of holding the sampler.
type watcher struct {
	ch chan *sample
}

// New checks o and builds a Dashboard. Nothing runs until a page
// watches.
func New(o Options) (*Dashboard, error) {
	var errs []error
	if o.Gatherer == nil {
		errs = append(errs, errors.New("dashboard: Options.Gatherer is required"))
	}
	if o.Backend == nil {
		errs = append(errs, errors.New("dashboard: Options.Backend is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Idle <= 0 {
		o.Idle = 5 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewTicker == nil {
		o.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	static, err := loadStatic()
	if err != nil {
		return nil, err
	}
	return &Dashboard{o: o, static: static, subs: map[*watcher]struct{}{}, done: make(chan struct{})}, nil
}

// Close ends every event stream and the sampler, for good: the admin
// listener is shutting down. Later requests get 503.
func (d *Dashboard) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	close(d.done)
	d.stopLocked()
}

// watchGet counts a GET of the snapshot as a watcher for Idle and
// returns the newest sample, taking one now if none is kept.
func (d *Dashboard) watchGet() (*sample, bool) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, false
	}
	d.lastGet = d.o.Now()
	d.startLocked()
	s := d.latest
	d.mu.Unlock()
	if s == nil {
		s = d.tick()
	}
	return s, s != nil
}

// subscribe opens a stream's watch and returns the newest sample to
// start it with (taken now if none is kept).
func (d *Dashboard) subscribe() (*watcher, *sample) {
	w := &watcher{ch: make(chan *sample, 1)}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, nil
	}
	d.subs[w] = struct{}{}
	d.startLocked()
	s := d.latest
	d.mu.Unlock()
	if s == nil {
		s = d.tick()
	}
	return w, s
}

// unsubscribe ends a stream's watch. The sampler notices at its next
// tick that nobody watches, so a page that reloads keeps it running.
func (d *Dashboard) unsubscribe(w *watcher) {
	d.mu.Lock()
	delete(d.subs, w)
	d.mu.Unlock()
}

// Watchers is how many event streams are open.
func (d *Dashboard) Watchers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.subs)
}

// startLocked starts the ticker goroutine and key tracking unless they
// run. d.mu is held.
func (d *Dashboard) startLocked() {
	if d.running || d.closed {
		return
	}
	d.running = true
	d.runs++
	d.stop = make(chan struct{})
	if d.o.Keys != nil {
		d.o.Keys.WatchKeys(true)
	}
	c, stopTicker := d.o.NewTicker(d.o.Interval)
	go d.run(c, stopTicker, d.stop)
}

// stopLocked ends the ticker goroutine and key tracking; the goroutine
// then drops the history (forget). d.mu is held.
func (d *Dashboard) stopLocked() {
	if !d.running {
		return
	}
	d.running = false
	close(d.stop)
	d.latest = nil
	if d.o.Keys != nil {
		d.o.Keys.WatchKeys(false)
	}
}

// run ticks until stop is closed or nobody watches.
func (d *Dashboard) run(c <-chan time.Time, stopTicker func(), stop chan struct{}) {
	defer stopTicker()
	defer d.forget()
	for {
		select {
		case <-stop:
			return
		case <-c:
			if !d.watched(stop) {
				return
			}
			d.tick()
		}
	}
}

// forget drops the samples once nobody watches: nothing is kept for a
// page that is not open, and the next run starts a new history, whose
// first sample has no rates (an interval across the pause would average
// over it).
func (d *Dashboard) forget() {
	d.sampling.Lock()
	defer d.sampling.Unlock()
	d.mu.Lock()
	running := d.running
	d.mu.Unlock()
	if !running {
		d.history = history{}
		d.prev = nil
	}
}

// watched reports whether a page still watches, and stops the sampler
// when none does.
func (d *Dashboard) watched(stop chan struct{}) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stop != stop {
		return false // stopped, and maybe started again with another goroutine
	}
	if len(d.subs) > 0 || d.o.Now().Sub(d.lastGet) < d.o.Idle {
		return true
	}
	d.stopLocked()
	return false
}

// tick takes one sample now, as the ticker does each Interval: it
// gathers the registry once, derives the rates from the sample before,
// appends to the history and hands the tick to every open stream. It
// returns the sample (nil after Close).
func (d *Dashboard) tick() *sample {
	d.sampling.Lock()
	defer d.sampling.Unlock()
	d.mu.Lock()
	closed, run := d.closed, d.runs
	d.mu.Unlock()
	if closed {
		return nil
	}
	now := d.o.Now()
	families, _ := d.o.Gatherer.Gather() // what was gathered serves even if a collector failed
	cur := read(families)
	prev, dt := d.prev, now.Sub(d.prevAt).Seconds()
	if d.prevRun != run {
		prev = nil // the first sample of a run: no interval to rate
	}
	s := d.build(now, cur, prev, dt)
	d.prev, d.prevAt, d.prevRun = cur, now, run

	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running || d.runs != run {
		return s // it raced a stop: served to its caller, handed to no stream
	}
	d.latest = s
	for w := range d.subs {
		select {
		case <-w.ch: // the stream has not written the older one: skip it
		default:
		}
		w.ch <- s
	}
	return s
}

// build makes the sample of one reading, and records its points.
func (d *Dashboard) build(now time.Time, cur, prev *reading, dt float64) *sample {
	ctx := context.Background()
	names := d.routeNames(cur)
	t := now.UnixMilli()
	snap := Snapshot{
		Time:            now.UTC(),
		IntervalSeconds: d.o.Interval.Seconds(),
		Gateway:         gatewayInfo(ctx, d.o.Backend, now),
		Routes:          make([]RoutePoint, 0, len(names)),
		Cache:           cacheView(ctx, d.o.Backend, names, d.o.Keys),
		Upstreams:       upstreamViews(ctx, d.o.Backend, now, cur, prev),
		Jobs:            jobsView(ctx, d.o.Backend),
		WebSocket:       webSocketView(ctx, d.o.Backend, names),
	}
	var prevGateway *counts
	if prev != nil {
		prevGateway = &prev.gateway
	}
	snap.Now = point(t, &cur.gateway, prevGateway, dt)
	for _, name := range names {
		c := cur.routes[name]
		if c == nil {
			c = &counts{}
		}
		var pc *counts
		if prev != nil {
			if pc = prev.routes[name]; pc == nil {
				pc = &counts{}
			}
		}
		snap.Routes = append(snap.Routes, RoutePoint{Route: name, Point: point(t, c, pc, dt)})
	}
	d.history.add(snap.Now, snap.Routes, names)
	return &sample{snap: snap, tick: event("tick", snap)}
}

// routeNames are the routes the page shows: Options.Routes, or the
// configured routes the reading names.
func (d *Dashboard) routeNames(rd *reading) []string {
	if d.o.Routes != nil {
		return d.o.Routes()
	}
	var names []string
	for _, name := range ordered(nil, rd.routes) {
		if routeName(name) {
			names = append(names, name)
		}
	}
	return names
}

// fullJSON is the sample's full snapshot: history and config added.
func (d *Dashboard) fullJSON(s *sample) []byte {
	s.once.Do(func() {
		full := s.snap
		full.Full = true
		d.sampling.Lock()
		full.History = d.history.until(s.snap.Now.T)
		d.sampling.Unlock()
		if cfg, err := json.Marshal(d.o.Backend.Config(context.Background())); err == nil {
			full.Config = cfg
		}
		s.full, _ = json.Marshal(full)
	})
	return s.full
}

// event encodes one Server-Sent Event whose data is v's JSON (one line:
// JSON escapes every newline in its strings).
func event(name string, v any) []byte {
	b, _ := json.Marshal(v)
	return eventBytes(name, b)
}

func eventBytes(name string, data []byte) []byte {
	out := make([]byte, 0, len(data)+len(name)+16)
	out = append(out, "event: "...)
	out = append(out, name...)
	out = append(out, "\ndata: "...)
	out = append(out, data...)
	return append(out, "\n\n"...)
}
