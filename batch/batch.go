package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/textproto"
	"path"
	"strings"
	"sync"
	"time"

	"gateway/internal/fielderr"
)

// Router is the handler that batch items go through, with the routing
// question answered up front: *proxy.Handler is one.
type Router interface {
	http.Handler
	// RouteOf reports the route that would serve r: its name, whether it
	// is batchable, and ok false when no route takes r.
	RouteOf(r *http.Request) (name string, batchable, ok bool)
	// AllowedMethods reports, for an r that no route takes only because
	// of its method, the methods that would be taken, as a client's 405
	// lists them in Allow; nil otherwise.
	AllowedMethods(r *http.Request) []string
}

// Defaults of Options' zero values.
const (
	DefaultPath            = "/_batch"
	DefaultMaxItems        = 50
	DefaultMaxBodySize     = 1 << 20
	DefaultMaxResponseSize = 4 << 20
	// DefaultMaxTotalResponseSize is four default-sized bodies: a batch
	// of many small answers fits, one of many large ones fails item by
	// item instead of holding max_items times MaxResponseSize.
	DefaultMaxTotalResponseSize = 16 << 20
	DefaultConcurrency          = 8
)

// DefaultInheritHeaders are the outer request's fields that items get
// when the config names none.
var DefaultInheritHeaders = []string{"Authorization", "Cookie", "Accept-Language"}

// Options configure the batching endpoint.
type Options struct {
	// Path is where batches are POSTed, on every host; "" means /_batch.
	// The path is taken before routing, so no route serves it.
	Path string
	// MaxItems is the most requests one batch may hold (over: 413); 0
	// means 50.
	MaxItems int
	// MaxBodySize bounds the batch request body (over: 413); 0 means 1 MiB.
	MaxBodySize int64
	// MaxResponseSize bounds each item's response body; a larger one
	// fails that item with 502. 0 means 4 MiB.
	MaxResponseSize int64
	// MaxTotalResponseSize bounds the sum of a batch's item response
	// bodies, which are all held until the batch is answered: an item
	// whose body would take the batch over it fails with 502, and the
	// items whose bodies came first keep theirs. 0 means 16 MiB, or
	// MaxResponseSize when that is larger; it may not be smaller than
	// MaxResponseSize, or an item within its own limit could never fit.
	MaxTotalResponseSize int64
	// Concurrency is how many items run at once; 0 means 8.
	Concurrency int
	// ItemTimeout bounds each item from its start (0: none; the route's
	// own timeout still applies). An item past it gets 504 {"error":
	// "timeout"}.
	ItemTimeout time.Duration
	// InheritHeaders are the outer request's fields every item gets.
	// When the outer request has one, its value replaces the item's own;
	// when not, the item's value, if any, is kept. nil means none.
	InheritHeaders []string
	Logger         *slog.Logger
}

// Handler serves the batching endpoint at Options.Path and passes every
// other request to the router.
type Handler struct {
	o       Options
	next    Router
	inherit []string // canonical
	log     *slog.Logger
}

var _ http.Handler = (*Handler)(nil)

// Validate reports every problem with o, each a *fielderr.Error naming
// its field, joined. Zero values stand for their defaults and are not
// problems.
func (o Options) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fielderr.New("batch", field, fmt.Sprintf(format, args...)))
	}
	switch p := o.Path; {
	case p == "":
	case !strings.HasPrefix(p, "/"):
		bad("Path", "%q must start with \"/\"", p)
	case strings.ContainsAny(p, "?#{}"):
		bad("Path", "%q: the batch path cannot hold \"?\", \"#\", \"{\" or \"}\"", p)
	case path.Clean(p) != p:
		bad("Path", "%q: want a clean path (no \"//\", \".\" or \"..\" segments, no trailing \"/\")", p)
	}
	// 0 takes the default; a count below that asks for none at all.
	for _, f := range []struct {
		field string
		v     int
	}{
		{"MaxItems", o.MaxItems},
		{"Concurrency", o.Concurrency},
	} {
		if f.v < 0 {
			bad(f.field, "%d: must be at least 1", f.v)
		}
	}
	for _, f := range []struct {
		field string
		v     int64
	}{
		{"MaxBodySize", o.MaxBodySize},
		{"MaxResponseSize", o.MaxResponseSize},
		{"MaxTotalResponseSize", o.MaxTotalResponseSize},
		{"ItemTimeout", int64(o.ItemTimeout)},
	} {
		if f.v < 0 {
			bad(f.field, "%d must not be negative", f.v)
		}
	}
	resp := o.MaxResponseSize
	if resp == 0 {
		resp = DefaultMaxResponseSize
	}
	if total := o.MaxTotalResponseSize; total > 0 && total < resp {
		// One item's largest body could never fit.
		bad("MaxTotalResponseSize", "%d is below MaxResponseSize %d", total, resp)
	}
	seen := map[string]int{}
	for i, name := range o.InheritHeaders {
		if err := CheckInheritHeader(name); err != nil {
			errs = append(errs, fielderr.At("batch", "InheritHeaders", i, err.Error()))
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(name)
		if j, dup := seen[k]; dup {
			e := fielderr.At("batch", "InheritHeaders", i, fmt.Sprintf("duplicate header %q", name))
			e.Also = j
			errs = append(errs, e)
			continue
		}
		seen[k] = i
	}
	return errors.Join(errs...)
}

// New checks o (see Validate) and returns the endpoint in front of next.
func New(o Options, next Router) (*Handler, error) {
	if next == nil {
		return nil, errors.New("batch: no router")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if o.MaxItems == 0 {
		o.MaxItems = DefaultMaxItems
	}
	if o.MaxBodySize == 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	if o.MaxResponseSize == 0 {
		o.MaxResponseSize = DefaultMaxResponseSize
	}
	if o.MaxTotalResponseSize == 0 {
		o.MaxTotalResponseSize = max(DefaultMaxTotalResponseSize, o.MaxResponseSize)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &Handler{o: o, next: next, log: o.Logger}
	for _, name := range o.InheritHeaders {
		h.inherit = append(h.inherit, textproto.CanonicalMIMEHeaderKey(name))
	}
	return h, nil
}

// ServeHTTP serves a batch, or passes the request on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.isBatchPath(r.URL.Path) {
		h.next.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &batchError{Status: http.StatusMethodNotAllowed, Msg: "a batch is POSTed"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, &batchError{Status: http.StatusUnsupportedMediaType, Msg: "a batch is application/json"})
			return
		}
	}
	if r.ContentLength > h.o.MaxBodySize {
		writeError(w, tooLarge(h.o.MaxBodySize))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodySize))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeError(w, tooLarge(h.o.MaxBodySize))
			return
		}
		// The client went away or stalled; the status is for the log.
		writeError(w, &batchError{Status: http.StatusBadRequest, Msg: "reading the batch failed"})
		return
	}
	items, perr := parseBatch(data, limits{maxItems: h.o.MaxItems, batchPath: h.o.Path})
	if perr != nil {
		writeError(w, perr)
		return
	}
	h.write(w, h.run(r, items))
}

// write sends {"responses": [...]} one item at a time, dropping each
// item's body once it is written, so that the batch never holds a second
// copy of all its bodies (as one encoded buffer would) on top of the
// bodies themselves. The bytes are those of encoding the whole at once.
// There is no Content-Length: it is known only at the end.
func (h *Handler) write(w http.ResponseWriter, out []itemResponse) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteString(`{"responses":[`)
	for i := range out {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(&out[i]); err != nil {
			// Every body was checked to be JSON (or is base64), so this
			// is a bug; the status is sent, so the response can only be
			// cut short for the client to see it is incomplete.
			h.log.Error("batch: encoding the response", "id", out[i].ID, "err", err)
			panic(http.ErrAbortHandler)
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		out[i] = itemResponse{}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return // the client is gone
		}
		buf.Reset()
	}
	buf.WriteString("]}\n")
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) isBatchPath(p string) bool { return IsPath(p, h.o.Path) }

// IsPath reports whether the request path p is the batch endpoint at
// batchPath. The proxy resolves dot segments before routing; so does
// this, so "/x/../_batch" is the batch endpoint and not a route's.
func IsPath(p, batchPath string) bool {
	return p == batchPath || (strings.Contains(p, ".") && p != "" && p[0] == '/' && path.Clean(p) == batchPath)
}

func tooLarge(limit int64) *batchError {
	return &batchError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("batch body over %d bytes", limit)}
}

// itemResponse is one entry of the response: body holds a JSON response
// body as a JSON value, body_base64 any other non-empty body. Both are
// the recorded body itself; encoding/json writes a []byte as standard
// base64, so no encoded copy is held until the item is written.
type itemResponse struct {
	ID         string            `json:"id"`
	Status     int               `json:"status"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body,omitempty"`
	BodyBase64 []byte            `json:"body_base64,omitempty"`
}

// run serves the items, at most Concurrency at a time, and returns their
// responses in request order. It returns when every item has ended.
func (h *Handler) run(r *http.Request, items []*item) []itemResponse {
	out := make([]itemResponse, len(items))
	bud := newBudget(h.o.MaxTotalResponseSize)
	slots := make(chan struct{}, min(h.o.Concurrency, len(items)))
	var wg sync.WaitGroup
	for i, it := range items {
		slots <- struct{}{}
		if r.Context().Err() != nil {
			// The client is gone: start nothing more. The response is
			// never read, but stays well-formed.
			<-slots
			out[i] = failed(it.id, statusClientClosed, "batch cancelled")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			out[i] = h.runItem(r, it, bud)
		}()
	}
	wg.Wait()
	return out
}

// statusClientClosed marks items not run because the client went away.
const statusClientClosed = 499

func failed(id string, status int, msg string) itemResponse {
	return itemResponse{
		ID:      id,
		Status:  status,
		Headers: map[string]string{"Content-Type": "application/json"},
		Body:    errorBody(msg),
	}
}

// runItem serves one item through the router, its body taken from bud.
func (h *Handler) runItem(outer *http.Request, it *item, bud *budget) itemResponse {
	ctx := outer.Context()
	if h.o.ItemTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.o.ItemTimeout)
		defer cancel()
	}
	host := it.host
	if host == "" {
		host = outer.Host
	}
	req := subRequest(ctx, outer, it.method, it.url, host, h.itemHeader(outer, it), it.body)
	_, batchable, ok := h.next.RouteOf(req)
	switch {
	case !ok:
		// As the same request sent alone: 405 with Allow when routes
		// take the path in other methods.
		if allow := h.next.AllowedMethods(req); len(allow) > 0 {
			resp := failed(it.id, http.StatusMethodNotAllowed, "method not allowed")
			resp.Headers["Allow"] = strings.Join(allow, ", ")
			return resp
		}
		return failed(it.id, http.StatusNotFound, "no route")
	case !batchable:
		return failed(it.id, http.StatusForbidden, "route not batchable")
	}
	res := serve(h.next, req, h.o.MaxResponseSize, bud, h.log)
	kept := false
	defer func() {
		if !kept {
			// A body not sent makes room for the other items'.
			bud.give(int64(len(res.body)))
		}
	}()
	switch {
	case errors.Is(res.ctxErr, context.DeadlineExceeded) && outer.Context().Err() == nil:
		return failed(it.id, http.StatusGatewayTimeout, "timeout")
	case res.tooLarge:
		return failed(it.id, http.StatusBadGateway, fmt.Sprintf("response body over %d bytes", h.o.MaxResponseSize))
	case res.overBudget:
		return failed(it.id, http.StatusBadGateway, fmt.Sprintf("batch response too large: item bodies over %d bytes in all", h.o.MaxTotalResponseSize))
	case res.aborted && outer.Context().Err() != nil:
		return failed(it.id, statusClientClosed, "batch cancelled")
	case res.aborted:
		return failed(it.id, http.StatusBadGateway, "response aborted")
	}
	resp := itemResponse{ID: it.id, Status: res.status, Headers: responseHeaders(res.header)}
	switch {
	case it.method == http.MethodHead || len(res.body) == 0:
	case jsonBody(res.header, res.body):
		resp.Body, kept = res.body, true
	default:
		resp.BodyBase64, kept = res.body, true
	}
	return resp
}

// itemHeader is an item's own fields plus, from the outer request, the
// inherited ones (the outer value wins) and the gateway-owned ones the
// proxy judges by peer (X-Forwarded-*, Forwarded, Via), and the outer
// request id numbered with the item's position. The item's header was built for it by parseItem and is used once, so
// it is completed in place.
func (h *Handler) itemHeader(outer *http.Request, it *item) http.Header {
	hdr := it.header
	for _, name := range h.inherit {
		if vs := outer.Header[name]; len(vs) > 0 {
			hdr[name] = append([]string(nil), vs...)
		}
	}
	for _, name := range fromOuter {
		if vs := outer.Header[name]; len(vs) > 0 {
			hdr[name] = append([]string(nil), vs...)
		}
	}
	numberRequestID(hdr, it.index+1)
	return hdr
}

func writeError(w http.ResponseWriter, e *batchError) {
	b, _ := json.Marshal(e)
	writeJSON(w, e.Status, b)
}
