package entrypoint

import "time"

// After reading a request without a body, net/http reads the connection
// in the background to notice a client that hangs up, and when the
// response is done it interrupts that read by setting the read deadline
// to a time long past (its aLongTimeAgo, in 1970). With one core the
// background read has seldom begun by then, and then fails at once in
// the poller, which still costs every request a *net.OpError. A
// clientConn notices such a deadline and fails the read itself, with
// the error the poller wraps (a timeout, which net/http expects there).

// SetReadDeadline notes whether t is long past, for Read.
func (c *clientConn) SetReadDeadline(t time.Time) error {
	c.readAborted.Store(longPast(t))
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline notes whether t is long past, for Read.
func (c *clientConn) SetDeadline(t time.Time) error {
	c.readAborted.Store(longPast(t))
	return c.Conn.SetDeadline(t)
}

// longPast reports whether t is a deadline from before this process
// began, which is past without reading the clock.
func longPast(t time.Time) bool { return !t.IsZero() && t.Before(monoEpoch) }
