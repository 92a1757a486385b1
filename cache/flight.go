package cache

import (
	"context"
	"strings"
	"sync"
)

// flights are the fetches under way, one per key, that concurrent misses
// for the key share (stampede protection). Unlike a singleflight group's
// DoChan, the request that starts a flight runs the fetch itself, on its
// own goroutine: it waits for that fetch anyway, since the response
// streams to its client. A miss nobody shares then costs one call and no
// goroutine, channel or timer; followers make the channel they wait on.
type flights struct {
	mu sync.Mutex
	m  map[string]*flightCall
}

// flightCall is one flight: its result, and how its followers are woken.
type flightCall struct {
	// key is the flight's key, a copy of the request's: the map keeps it,
	// and so does the store the fetch stores under it (which is why it
	// is not held in the call, which the store would then keep whole).
	key string
	fr  flightResult // written by the leader before done is closed
	f   fill         // the leader's fetch's, allocated with the call
	lk  lookup       // the leader's, which the fetch refers to
	// done is made by the first follower and closed when the flight
	// ends; nil while nobody waits.
	done chan struct{}
	dups int // followers, under flights.mu

	// cancel and prev, next: a flight counted among those Close waits
	// for, in Cache.active, under Cache.mu, so that Close cancels it.
	cancel     context.CancelFunc
	prev, next *flightCall
}

// join returns the flight for key and whether the caller leads it (it
// started it and must end it with finish).
func (g *flights) join(key string) (*flightCall, bool) {
	g.mu.Lock()
	if c, ok := g.m[key]; ok {
		c.dups++
		if c.done == nil {
			c.done = make(chan struct{})
		}
		g.mu.Unlock()
		return c, false
	}
	if g.m == nil {
		g.m = make(map[string]*flightCall)
	}
	c := &flightCall{}
	c.key = strings.Clone(key)
	g.m[c.key] = c
	g.mu.Unlock()
	return c, true
}

// finish ends the flight c that leads key, whose result is in c.fr, and
// reports whether it was shared. A key remembered as uncacheable is
// marked so before the followers wake, as they then go to the origin
// side by side; a key nobody waited on needs no marker, and one-off
// uncacheable URLs cost the store nothing.
func (g *flights) finish(key string, c *flightCall) bool {
	g.mu.Lock()
	if g.m[key] == c {
		delete(g.m, key)
	}
	shared := c.dups > 0
	g.mu.Unlock()
	if shared {
		c.fr.markPass()
	}
	if c.done != nil {
		close(c.done)
	}
	return shared
}

// enterFlight counts the flight c, which cancel stops, among those Close
// waits for and cancels, unless the cache is closed. The caller calls
// exitFlight when it returns true.
func (c *Cache) enterFlight(fc *flightCall, cancel context.CancelFunc) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.bg.Add(1)
	fc.cancel = cancel
	fc.next = c.active
	if c.active != nil {
		c.active.prev = fc
	}
	c.active = fc
	return true
}

// exitFlight undoes enterFlight once the flight's fetch returned.
func (c *Cache) exitFlight(fc *flightCall) {
	c.mu.Lock()
	if fc.prev != nil {
		fc.prev.next = fc.next
	} else {
		c.active = fc.next
	}
	if fc.next != nil {
		fc.next.prev = fc.prev
	}
	fc.prev, fc.next, fc.cancel = nil, nil, nil
	c.mu.Unlock()
	c.bg.Done()
}
