package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
)

// An in-process sub-request: a synthetic *http.Request served by the
// proxy handler into an in-memory ResponseWriter. Batch items and
// composite parts both run this way.

// subRequest builds a request as the proxy would receive it from the
// client of outer: the same context (so the same server, connection and
// cancellation), peer address, TLS state and protocol version.
func subRequest(ctx context.Context, outer *http.Request, method string, u *url.URL, host string, h http.Header, body []byte) *http.Request {
	r := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      outer.Proto,
		ProtoMajor: outer.ProtoMajor,
		ProtoMinor: outer.ProtoMinor,
		Header:     h,
		Host:       host,
		RemoteAddr: outer.RemoteAddr,
		TLS:        outer.TLS,
		RequestURI: u.RequestURI(),
		Body:       http.NoBody,
	}
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return r.WithContext(ctx)
}

// result is what a handler answered to a sub-request.
type result struct {
	status int
	header http.Header // as at WriteHeader
	body   []byte
	// ctxErr is the request context's error as the handler returned:
	// DeadlineExceeded means the sub-request's time ran out.
	ctxErr error
	// aborted: the handler panicked (http.ErrAbortHandler included, which
	// the proxy uses when the upstream response broke off or the request
	// was cancelled), so the response is incomplete.
	aborted bool
	// tooLarge: the body went over the limit and was cut.
	tooLarge bool
	// overBudget: the body would have taken the batch over its budget
	// and was cut. The bytes kept are still taken from the budget.
	overBudget bool
}

// budget is what a batch has left of MaxTotalResponseSize for its items'
// bodies, which are all held until the batch is answered. Items take
// from it concurrently as their bodies arrive, and give back the bodies
// they do not keep. A nil budget has no bound.
type budget struct{ left atomic.Int64 }

func newBudget(n int64) *budget {
	b := &budget{}
	b.left.Store(n)
	return b
}

// take reserves n bytes, or reserves nothing and reports false when
// fewer are left. It never overdraws, even for a moment, so one item's
// refused write cannot make another's fail.
func (b *budget) take(n int64) bool {
	if b == nil {
		return true
	}
	for {
		left := b.left.Load()
		if n > left {
			return false
		}
		if b.left.CompareAndSwap(left, left-n) {
			return true
		}
	}
}

// give returns n bytes taken for a body that is not kept.
func (b *budget) give(n int64) {
	if b != nil && n > 0 {
		b.left.Add(n)
	}
}

// serve runs h for r into memory, keeping at most limit body bytes and
// taking them from bud (nil: no budget). A panic is contained: on a
// goroutine of our own it would take the whole process down, where
// net/http would have recovered it.
func serve(h http.Handler, r *http.Request, limit int64, bud *budget, log *slog.Logger) (res result) {
	rec := &recorder{header: http.Header{}, limit: limit, budget: bud}
	defer func() {
		p := recover()
		res.ctxErr = r.Context().Err()
		rec.mu.Lock()
		rec.closed = true
		res.status, res.header, res.body, res.tooLarge, res.overBudget = rec.status, rec.sent, rec.body.Bytes(), rec.tooLarge, rec.overBudget
		rec.mu.Unlock()
		if res.status == 0 {
			res.status, res.header = http.StatusOK, rec.header.Clone()
		}
		if p != nil {
			res.aborted = true
			if p != http.ErrAbortHandler && !rec.tooLarge && !rec.overBudget {
				log.Error("batch: panic serving a sub-request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			}
		}
	}()
	h.ServeHTTP(rec, r)
	return res
}

var errTooLarge = errors.New("batch: sub-response body over the limit")

// recorder is the in-memory ResponseWriter of a sub-request. Flush is a
// no-op (the response is sent as a whole, in the batch); there is no
// connection to hijack. Writes after the handler returned fail.
type recorder struct {
	header   http.Header
	mu       sync.Mutex
	sent     http.Header
	status   int
	body     bytes.Buffer
	limit    int64
	tooLarge bool
	// budget is the batch's, shared with the other items; nil for a
	// composite's parts.
	budget     *budget
	overBudget bool
	closed     bool
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeader(code)
}

func (w *recorder) writeHeader(code int) {
	// Informational responses (103 Early Hints) are not the answer; the
	// proxy clears their fields itself after passing them on.
	if w.status != 0 || w.closed || code < 200 {
		return
	}
	w.status = code
	w.sent = w.header.Clone()
}

func (w *recorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, http.ErrHandlerTimeout
	}
	if w.status == 0 {
		w.writeHeader(http.StatusOK)
	}
	if w.limit > 0 && int64(w.body.Len())+int64(len(p)) > w.limit {
		w.tooLarge = true
		return 0, errTooLarge
	}
	if !w.budget.take(int64(len(p))) {
		w.overBudget = true
		return 0, errTooLarge
	}
	return w.body.Write(p)
}

// Flush does nothing: nothing is sent until the whole batch is.
func (w *recorder) Flush() {}

// jsonBody reports whether a response body can be embedded as a JSON
// value: a JSON media type (application/json or any +json), no content
// coding, and valid JSON.
func jsonBody(h http.Header, body []byte) bool {
	if len(body) == 0 {
		return false
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return false
	}
	return json.Valid(body)
}

// errorBody is the JSON body of an error the batch package writes.
func errorBody(msg string) json.RawMessage {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	return b
}
