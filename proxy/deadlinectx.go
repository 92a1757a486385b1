package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"gateway/internal/clientwatch"
)

// deadlineCtx is a route's deadline on a request: its parent, ended at
// end at the latest. context.WithDeadline would arm a timer for every
// request, register a child with the parent, and (for the HTTP/1.1
// transport, which cuts its connection when the request's context ends)
// carry a child of its own: five allocations and a timer heap insertion
// and removal for a deadline that nearly every request meets. Here the
// timer is armed only when something waits for the deadline through
// Done (a wait for a pooled connection, a dial, a queue, the cache's
// wait on another request's fetch, net/http's transport): that
// something then gets a real context.WithDeadline, which the
// deadlineCtx becomes from then on. The HTTP/1.1 transport waits
// without Done: it puts end on the upstream connection as its I/O
// deadline and watches only the parent for the client leaving (see
// h1Conn.roundTrip).
//
// Before it is armed, Err reports the deadline from the clock, and
// context.Cause reports the parent's cause (nil while the parent goes
// on) where it would report DeadlineExceeded: the gateway's own checks
// (classify, errorKind, clientGone) look at Err and at the error as
// well, so a deadline is still a 504 and a timeout.
type deadlineCtx struct {
	context.Context // the parent
	end             time.Time
	// watch, when set, is the client's connection, which tells of the
	// client leaving, the one way the parent ends before the request
	// does (see clientwatch.For).
	watch    clientwatch.Watcher
	mu       sync.Mutex // serialises arming, cancel and the hook
	armed    atomic.Pointer[armedDeadline]
	canceled atomic.Bool
	// hook, while set (see setHook), is called by cancel; fired records
	// that it was. Guarded by mu.
	hook  func()
	fired bool
}

// armedDeadline is the real context a deadlineCtx became.
type armedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// withDeadline returns parent ended at end at the latest, and the
// function that releases it, as context.WithDeadline does.
func withDeadline(parent context.Context, end time.Time) (*deadlineCtx, context.CancelFunc) {
	c := &deadlineCtx{Context: parent, end: end}
	return c, c.cancel
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.end) {
		return d, true
	}
	return c.end, true
}

func (c *deadlineCtx) Done() <-chan struct{} {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Done()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a.ctx.Done()
	}
	ctx, cancel := context.WithDeadline(c.Context, c.end)
	if c.canceled.Load() {
		cancel()
	}
	c.armed.Store(&armedDeadline{ctx, cancel})
	return ctx.Done()
}

func (c *deadlineCtx) Err() error {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	if c.canceled.Load() {
		return context.Canceled
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.end) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *deadlineCtx) Value(key any) any {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Value(key)
	}
	return c.Context.Value(key)
}

func (c *deadlineCtx) cancel() {
	c.mu.Lock()
	c.canceled.Store(true)
	a := c.armed.Load()
	hook := c.hook
	c.hook = nil
	c.fired = hook != nil
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	if a != nil {
		a.cancel()
	}
}

// setHook has cancel call f, as the one thing waiting on c, in place of
// an AfterFunc (which would arm it): false when c is armed or canceled
// already, or hooked.
func (c *deadlineCtx) setHook(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed.Load() != nil || c.canceled.Load() || c.hook != nil {
		return false
	}
	c.hook, c.fired = f, false
	return true
}

// clearHook removes the hook: false when cancel has called it.
func (c *deadlineCtx) clearHook() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hook = nil
	return !c.fired
}
