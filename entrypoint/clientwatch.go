package entrypoint

import (
	"context"
	"errors"
	"os"
	"sync"

	"gateway/internal/clientwatch"
)

// An HTTP/1 connection is a clientwatch.Watcher: net/http ends a
// request's context when its background read of the connection fails,
// and that read is the connection's Read, which sees the failure first
// and tells the Leaver watching at the time. An upstream exchange then
// needs no registration on the request's context (see package
// clientwatch).

// connWatch is a clientConn's state as a Watcher.
type connWatch struct {
	mu     sync.Mutex
	leaver clientwatch.Leaver
	gone   bool            // a read failed: the client left
	reqCtx context.Context // the context of the request being served
}

var _ clientwatch.Watcher = (*clientConn)(nil)

func (c *clientConn) Watch(l clientwatch.Leaver) bool {
	c.watch.mu.Lock()
	defer c.watch.mu.Unlock()
	if c.watch.gone || c.watch.leaver != nil {
		return false
	}
	c.watch.leaver = l
	return true
}

func (c *clientConn) Unwatch(l clientwatch.Leaver) bool {
	c.watch.mu.Lock()
	defer c.watch.mu.Unlock()
	if c.watch.leaver != l {
		return false // taken by readFailed
	}
	c.watch.leaver = nil
	return true
}

func (c *clientConn) Serves(ctx context.Context) bool {
	c.watch.mu.Lock()
	defer c.watch.mu.Unlock()
	return ctx != nil && c.watch.reqCtx == ctx
}

// serving records ctx as the context of the request being served,
// until served.
func (c *clientConn) serving(ctx context.Context) {
	c.watch.mu.Lock()
	c.watch.reqCtx = ctx
	c.watch.mu.Unlock()
}

// served ends what serving recorded: the request is over.
func (c *clientConn) served() {
	c.watch.mu.Lock()
	c.watch.reqCtx = nil
	c.watch.mu.Unlock()
}

// readFailed tells the Leaver watching, if any, that the client left,
// when err is what net/http takes for that: any error but the timeout
// its own abort of the background read causes (see abortread.go).
func (c *clientConn) readFailed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) && c.readAborted.Load() {
		return
	}
	c.watch.mu.Lock()
	c.watch.gone = true
	l := c.watch.leaver
	c.watch.leaver = nil
	c.watch.mu.Unlock()
	if l != nil {
		l.ClientLeft()
	}
}
