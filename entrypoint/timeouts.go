package entrypoint

import (
	"io"
	"net/http"
	"time"
)

// withIOTimeouts enforces ReadTimeout and WriteTimeout as limits on
// stalls rather than on whole requests. Deadlines are pushed forward
// at most every quarter of the timeout, so a small response sets none.
//
// The first write deadline is the server's own WriteTimeout, which
// net/http arms before the handler runs: on an HTTP/1.1 connection when
// it reads the request, on an HTTP/2 stream as the connection's
// goroutine opens it. Setting it from the handler instead would cost
// every HTTP/2 request a message to that goroutine and a second timer.
func withIOTimeouts(h http.Handler, rt, wt time.Duration) http.Handler {
	if rt <= 0 && wt <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A body of length 0 has nothing to stall on: an HTTP/2 request
		// that ended with its headers has one that is not http.NoBody.
		if rt > 0 && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			// On a copy: net/http keeps its own Request, and must still
			// find its body there. With Expect: 100-continue, a body it
			// no longer recognises is drained before an early answer (a
			// 413) while the client waits for the 100 that never comes.
			r = r.WithContext(r.Context())
			r.Body = &stallReader{ReadCloser: r.Body, w: w, d: rt}
		}
		if wt <= 0 {
			h.ServeHTTP(w, r)
			return
		}
		if c := h1Conn(r); c != nil {
			// net/http serves an HTTP/1 connection's requests one at a
			// time, and no request's writer may be used after its
			// handler returns: one writer, kept with the connection,
			// serves them all, rather than one allocated per request.
			c.stall = stallWriter{ResponseWriter: w, d: wt, last: monoNow(), conn: c}
			c.serving(r.Context())
			h.ServeHTTP(&c.stall, r)
			c.served()
			// A handler that left gathering on: what the connection
			// holds goes out ahead of what net/http still buffers.
			c.endGather()
			// The response is over: the connection, which may idle for
			// long, must not keep it.
			c.stall.ResponseWriter = nil
			return
		}
		h.ServeHTTP(&stallWriter{ResponseWriter: w, d: wt, last: monoNow()}, r)
	})
}

// h1Conn is the HTTP/1 connection r came on, nil for any other.
func h1Conn(r *http.Request) *clientConn {
	if r.ProtoMajor != 1 {
		return nil
	}
	c, _ := r.Context().Value(clientConnKey{}).(*clientConn)
	return c
}

// monoEpoch is the origin of the stall wrappers' clock, monoNow.
var monoEpoch = time.Now()

// monoNow is the time since monoEpoch. The stall writer reads the
// clock as each response is made and at each of its writes, and needs
// no wall time: this reads the monotonic clock alone, for about a third
// of what time.Now costs (which reads the wall clock too).
func monoNow() time.Duration { return time.Since(monoEpoch) }

// The stall wrappers make an http.ResponseController of the server's
// writer each time they move a deadline, which is seldom, rather than
// one per request: made and used at once, it costs no allocation.

type stallReader struct {
	io.ReadCloser
	w    http.ResponseWriter // the server's
	d    time.Duration
	last time.Time
	done bool
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.done {
		return s.ReadCloser.Read(p)
	}
	if now := time.Now(); now.Sub(s.last) > s.d/4 {
		s.last = now
		_ = http.NewResponseController(s.w).SetReadDeadline(now.Add(s.d))
	}
	n, err := s.ReadCloser.Read(p)
	if err != nil {
		s.done = true
		// Once the body is read, net/http keeps reading in the
		// background to notice a client that hangs up; a deadline left
		// behind would fire there and cancel a request still waiting on
		// its upstream. After any other error the deadline must stay:
		// net/http drains the rest of the body when the handler ends,
		// and without it a stalled client would hold that read forever.
		if err == io.EOF {
			_ = http.NewResponseController(s.w).SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

type stallWriter struct {
	http.ResponseWriter // the server's
	d                   time.Duration
	// last is monoNow when the write deadline was last moved; at
	// first, as the request reached the handler, just after net/http
	// armed it.
	last time.Duration
	// conn is the HTTP/1 connection the response goes to, for
	// GatherWrites; nil on other protocols.
	conn *clientConn
}

func (s *stallWriter) extend() {
	if now := monoNow(); now-s.last > s.d/4 {
		s.last = now
		_ = http.NewResponseController(s.ResponseWriter).SetWriteDeadline(time.Now().Add(s.d))
	}
}

func (s *stallWriter) WriteHeader(code int) { s.extend(); s.ResponseWriter.WriteHeader(code) }

func (s *stallWriter) Write(p []byte) (int, error) { s.extend(); return s.ResponseWriter.Write(p) }

func (s *stallWriter) Flush() { s.extend(); _ = http.NewResponseController(s.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach Hijack and the deadlines.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
