package entrypoint

import (
	"net"
	"net/http"
	"sync"
)

// net/http's HTTP/1 server writes a response through a 4 KiB buffer:
// one with a body larger than that leaves it in two writes, the
// buffer's first 4 KiB (the header and the start of the body) and then
// the rest, where nginx sends one. On a cache hit of a 12 KB gzip form
// the second system call cost nearly as much as the first, and the two
// together half of the hit. While a handler gathers writes (stallWriter.GatherWrites), the
// connection holds a write that fits that buffer and sends it together
// with the next, in one writev.

// gatherMax is net/http's HTTP/1 connection buffer, the largest write
// the connection holds back.
const gatherMax = 4 << 10

// gathering is a clientConn's state while it gathers writes, pooled:
// a connection, which may idle for long, keeps none of it.
type gathering struct {
	held []byte // the write held back, if any
	// vec and bufs are the writev of held and the next write, kept
	// here so that handing them to the connection allocates nothing.
	vec  net.Buffers
	bufs [2][]byte
}

var gatherings = sync.Pool{New: func() any { return &gathering{held: make([]byte, 0, gatherMax)} }}

// startGather makes c hold back writes of up to gatherMax until the
// next one, for a connection that can send both in one system call.
func (c *clientConn) startGather() {
	if c.g != nil {
		return
	}
	if _, ok := c.Conn.(*net.TCPConn); !ok {
		// A TLS connection writes records, not our buffers.
		return
	}
	c.g = gatherings.Get().(*gathering)
}

// holding reports whether c holds a write back.
func (c *clientConn) holding() bool { return c.g != nil && len(c.g.held) > 0 }

// endGather sends what c holds back and writes through again. An error
// leaves the response cut short, so the connection is closed: the
// server, which saw its own writes succeed, would otherwise go on to
// the next request on it.
func (c *clientConn) endGather() {
	g := c.g
	if g == nil {
		return
	}
	c.g = nil
	if len(g.held) > 0 {
		if _, err := c.Conn.Write(g.held); err != nil {
			_ = c.Conn.Close()
		}
		g.held = g.held[:0]
	}
	gatherings.Put(g)
}

func (c *clientConn) Write(p []byte) (int, error) {
	g := c.g
	if g == nil {
		return c.Conn.Write(p)
	}
	if len(g.held) == 0 {
		if len(p) > gatherMax {
			return c.Conn.Write(p)
		}
		// A copy: the server's buffer, which p usually is, is
		// written into again before the next write.
		g.held = append(g.held, p...)
		return len(p), nil
	}
	held := g.held
	g.bufs = [2][]byte{held, p}
	g.vec = g.bufs[:]
	n, err := g.vec.WriteTo(c.Conn)
	g.bufs = [2][]byte{} // not to keep p
	g.held = held[:0]
	// What was held counts as written when it was held.
	// (WriteTo writes everything or fails.)
	return int(max(n-int64(len(held)), 0)), err
}

// GatherWrites, on (true), makes the connection under the response
// send its writes in fewer system calls: it holds back a write of up to
// net/http's buffer and sends it with the next; off (false) sends what
// is held, with what net/http still buffers. A handler that writes a
// body larger than net/http's buffer in one call, as a cache hit does,
// brackets that write with it, and must turn it off before it returns.
// It does nothing on a connection other than plain HTTP/1.
func (s *stallWriter) GatherWrites(on bool) {
	c := s.conn
	if c == nil {
		return
	}
	if on {
		c.startGather()
		return
	}
	if c.holding() {
		// The rest of the response, which net/http buffers, goes out
		// with what is held.
		_ = http.NewResponseController(s.ResponseWriter).Flush()
	}
	c.endGather()
}
