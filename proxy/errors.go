package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// StatusClientClosed is logged when the client went away before the
// upstream answered; the client never sees it (nginx's 499).
const StatusClientClosed = 499

// Error writes a short plain-text error. Bodies stay terse and fixed so
// nothing internal (addresses, error text) leaks to clients; the detail
// goes to the log.
func Error(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

// clientGone: the request was canceled, and not by a timeout of ours
// (an upgrade's handshake timeout cancels with a deadline as cause, see
// serveUpgrade). Such a request says nothing about the upstream.
func clientGone(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled) && !errors.Is(context.Cause(ctx), context.DeadlineExceeded)
}

// classify maps an upstream failure to a status and a client message.
// It is the one place where that decision is made.
func classify(ctx context.Context, err error) (int, string) {
	var tooBig *http.MaxBytesError
	var netErr net.Error
	var ce clientError
	switch {
	case errors.Is(err, errNoTarget):
		return http.StatusServiceUnavailable, "no healthy upstream"
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, "request body too large"
	case errors.As(err, &ce) && errors.As(ce.err, &netErr) && netErr.Timeout():
		// Before the check for a canceled context: net/http cancels it
		// when any read from the client fails, a timeout included.
		return http.StatusRequestTimeout, "request body timed out"
	case clientGone(ctx):
		return StatusClientClosed, "client closed request"
	case errors.As(err, &ce):
		return http.StatusBadRequest, "request body could not be read"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		// Cause is ctx.Err() when no cause was set.
		return http.StatusGatewayTimeout, "upstream timed out"
	case errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusGatewayTimeout, "upstream timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return http.StatusBadGateway, "upstream refused connection"
	case errors.Is(err, syscall.ECONNRESET):
		return http.StatusBadGateway, "upstream reset connection"
	}
	return http.StatusBadGateway, "upstream unavailable"
}

// upstreamError is ReverseProxy's ErrorHandler. r is the outbound
// request, so its path is the one sent upstream (after strip_prefix),
// and the log names it so.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, ro *route, err error) {
	status, msg := classify(r.Context(), err)
	target := ""
	var te *targetError
	if errors.As(err, &te) {
		target = te.target
	}
	h.log.Warn("upstream error",
		"route", ro.name, "upstream", ro.upstream.name, "target", target,
		"method", r.Method, "upstream_path", r.URL.Path, "status", status, "err", err)
	if nt := (*noTargetError)(nil); errors.As(err, &nt) {
		// When the first breaker lets a probe through; a client that
		// waits that long is not refused by the same open breakers.
		w.Header().Set("Retry-After", retryAfter(nt.wait))
	}
	if status == StatusClientClosed {
		// Write nothing, and do not let net/http write its implicit
		// empty 200 either: the client may still be there, as when its
		// body stalled and net/http canceled the request on the timeout
		// before the error reached us. Aborting closes the connection
		// (resets the stream on HTTP/2).
		panic(http.ErrAbortHandler)
	}
	Error(w, status, msg)
}

// clientBody marks failures to read the client's body, so they are not
// blamed on the upstream that the transport was writing it to.
type clientBody struct{ io.ReadCloser }

func (b clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = clientError{err}
	}
	return n, err
}

type clientError struct{ err error }

func (e clientError) Error() string { return "reading request body: " + e.err.Error() }
func (e clientError) Unwrap() error { return e.err }

// bufferPool lends ReverseProxy its 32 KiB copy buffers, so a streamed
// body costs no allocation per request.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
