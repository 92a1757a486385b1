package entrypoint

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"

	"gateway/internal/clientwatch"
)

// A request with both Content-Length and Transfer-Encoding: chunked is
// how requests are smuggled past a proxy that reads one of the two and
// on to a server that reads the other (RFC 9112 section 6.1: a server
// that gets one MUST close the connection after responding). net/http
// reads such a body as chunked, which is right, but drops the
// Content-Length field before any handler runs, so the gateway could not
// tell and kept the connection open: whatever followed the chunked body
// was served as the next request.
//
// clientConn, the connection net/http's HTTP/1 server reads from, counts the
// Content-Length fields in the bytes that pass: a line that starts with
// the name, in any case, directly followed by a colon, which is exactly
// what net/http takes for one (it refuses a name with a space before the
// colon, and a line that starts with a space continues the previous
// field). checkFraming counts, per connection, the requests that arrived
// with one. At a chunked request, a field in the bytes that no request
// arrived with is the smuggler's, and the connection is closed after
// the response. The count can only err toward closing: a body or a
// trailer section that contains such a line, or a pipelined request read
// ahead, leaves a field unclaimed, and closing a connection that is
// sound costs its client a new one, nothing more.

// clField is what starts a Content-Length field line, lower case.
const clField = "\ncontent-length:"

// clientConn is a client connection served by net/http's HTTP/1 server.
type clientConn struct {
	net.Conn
	// prefix holds bytes read from the connection before net/http got
	// it (while looking for the HTTP/2 preface); Read returns them
	// first. Only net/http's connection goroutine reads prefix.
	prefix []byte
	// match is how much of clField the bytes read so far end with.
	// Reads come from net/http's connection goroutine, or from its
	// background read while a handler runs, never both at once.
	match int
	// fields counts Content-Length fields read; claimed counts the
	// requests that arrived with one.
	fields, claimed atomic.Int64
	// stall is the write stall timeout's writer of the request being
	// served (see withIOTimeouts); only the handler's goroutine uses it.
	stall stallWriter
	// readAborted is set while the read deadline is long past
	// (abortread.go); the background read and the connection's
	// goroutine both use it.
	readAborted atomic.Bool
	// g, while not nil, gathers the response's writes (gather.go);
	// only the goroutine serving the connection's requests uses it.
	g *gathering
	// watch tells an upstream exchange that the client left
	// (clientwatch.go).
	watch connWatch
}

// clientConnTLS is an clientConn over TLS. net/http sets Request.TLS from
// ConnectionState for a connection that is no *tls.Conn.
type clientConnTLS struct{ *clientConn }

func (c clientConnTLS) ConnectionState() tls.ConnectionState {
	return c.Conn.(*tls.Conn).ConnectionState()
}

func (c *clientConn) Read(p []byte) (int, error) {
	var n int
	var err error
	if len(c.prefix) > 0 {
		n = copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			// An empty slice of it would keep the first request's
			// bytes for as long as the connection lives.
			c.prefix = nil
		}
	} else if c.readAborted.Load() {
		return 0, os.ErrDeadlineExceeded
	} else {
		n, err = c.Conn.Read(p)
		if err != nil {
			c.readFailed(err)
		}
	}
	if n > 0 {
		c.scan(p[:n])
	}
	return n, err
}

// scan counts the Content-Length field lines in b, which continues what
// earlier reads returned.
func (c *clientConn) scan(b []byte) {
	m, found := c.match, 0
	for i := 0; i < len(b); {
		if m == 0 {
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				break
			}
			i += j + 1
			m = 1
			continue
		}
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != clField[m] {
			m = 0 // b[i] is looked at again: it may be a '\n'
			continue
		}
		i++
		if m++; m == len(clField) {
			found++
			m = 0
		}
	}
	c.match = m
	if found > 0 {
		c.fields.Add(int64(found))
	}
}

type clientConnKey struct{}

// connContext is the servers' ConnContext: it lets checkFraming and
// withIOTimeouts find the connection a request came on, and an upstream
// exchange its clientwatch.Watcher.
func connContext(ctx context.Context, c net.Conn) context.Context {
	switch c := c.(type) {
	case *clientConn:
		return clientwatch.NewContext(context.WithValue(ctx, clientConnKey{}, c), c)
	case clientConnTLS:
		return clientwatch.NewContext(context.WithValue(ctx, clientConnKey{}, c.clientConn), c.clientConn)
	}
	return ctx
}

// checkFraming closes the connection after the response to a chunked
// request that also carried a Content-Length (see clientConn). Requests
// without a body pass with two comparisons and, for a bodiless one
// without the field, one map lookup.
func checkFraming(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 {
			chunked := len(r.TransferEncoding) > 0
			if chunked || r.ContentLength > 0 || len(r.Header["Content-Length"]) > 0 {
				if c, ok := r.Context().Value(clientConnKey{}).(*clientConn); ok {
					if !chunked {
						c.claimed.Add(1)
					} else if c.fields.Load() > c.claimed.Load() {
						w.Header().Set("Connection", "close")
						log.Warn("request with both Content-Length and Transfer-Encoding: closing the connection after the response",
							"client", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
					}
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}
