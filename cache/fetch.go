package cache

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fetchInto sends out through the route's proxy and writes the result to
// fr, which the caller owns: a request that goes forward alone (direct)
// keeps it on its stack, a flight in its call. With a client (w, r) the
// response streams to it as it arrives, except when it must be replaced:
// a 304 to a revalidation (the client gets the refreshed entry) or an
// error while a stale entry may be served (stale-if-error). w is nil for
// background refreshes. cancel, when set, stops out's context, which the
// caller made for this fetch (a flight's): the fetch needs no other.
// f, when set, is the zero fill the fetch uses, allocated with its
// flight; otherwise it allocates one.
func (h *handler) fetchInto(fr *flightResult, f *fill, w http.ResponseWriter, r, out *http.Request, lk *lookup, cancel context.CancelFunc) {
	if f == nil {
		f = new(fill)
	}
	f.h, f.client, f.out, f.lk, f.reqTime, f.gen = h, w, out, lk, h.c.now(), h.c.purgeMarkOf(lk.primary)
	if w != nil && lk.entry == nil {
		f.header = w.Header()
	} else {
		f.intercept = true
		f.header = make(http.Header)
	}
	if w != nil && out != r {
		// The fetch outlives r's cancellation for the sake of other
		// requests; if r's client leaves and nothing is being stored,
		// nobody needs it any more.
		if cancel == nil {
			ctx, c := context.WithCancel(out.Context())
			out = out.WithContext(ctx)
			defer c()
			cancel = c
		}
		f.cancel = cancel
		stop := context.AfterFunc(r.Context(), f.clientLeft)
		defer stop()
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				fr.abort = p
			}
		}()
		h.next.ServeHTTP(f, out)
		if !f.wroteHeader {
			f.WriteHeader(http.StatusOK)
		}
	}()
	fr.status = f.status
	if f.mode == modeHeld {
		if fr.abort == nil && (f.length < 0 || int64(len(f.body)) == f.length) {
			f.sendHeld()
		} else if fr.abort == nil || fr.abort == http.ErrAbortHandler {
			// Cut short (the proxy aborts when the upstream body
			// breaks): the stale entry answers, as for an error.
			fr.abort = nil
			f.storing = false
			f.mode = modeStaleOnError
			f.staleDetail += "-cut-short"
		}
	}
	if fr.abort != nil {
		if lk.entry != nil {
			lk.entry.refreshing.Store(false)
		}
		return
	}
	switch f.mode {
	case modeNotModified:
		e := h.refreshed(lk.entry, f)
		if e == nil {
			// The 304 validates another representation than ours: fetch
			// the whole response instead.
			lk2 := *lk
			lk2.entry, lk2.canStale = nil, false
			lk2.fwd = "uri-miss"
			*fr = flightResult{}
			h.fetchInto(fr, nil, w, r, outbound(out, &lk2, out.Context()), &lk2, cancel)
			return
		}
		// The 304's fields may change what may be stored (private, a
		// Set-Cookie for the revalidating client): the merged response
		// is judged like a new one. One that may not be stored replaces
		// nothing and is served to this client alone; the stored entry
		// goes too, unless only this request kept it from being stored
		// (its Authorization): then the entry is as good as before.
		merged := &http.Response{StatusCode: e.Status, Header: e.Header}
		ok, reason := Storable(out, merged, h.rt.o.Policy)
		if !ok {
			h.rt.stats.notStoredAdd(notStoredFor(out, reason))
		}
		switch {
		case ok:
			h.store(out.Context(), lk.primary, e, f.gen)
			fr.entry, fr.vary = e, lk.vary
		case requestRefusal(reason) && storableAlone(merged, h.rt.o.Policy):
		default:
			if _, err := h.c.store.Delete(out.Context(), lk.primary); err != nil {
				h.c.storeFailed("delete", err)
			}
			h.rt.stats.uncacheable.Add(1)
		}
		if w != nil {
			now := h.c.now()
			age := e.age(now)
			st := Status{Fwd: lk.fwd, FwdStatus: http.StatusNotModified, Stored: ok, TTL: e.Lifetime - age, HasTTL: true, Detail: lk.detail}
			if !ok {
				st.Detail = notStoredFor(out, reason).String()
			}
			h.serve(w, r, lk.primary, e, age, st)
		}
	case modeStaleOnError:
		e := lk.entry
		e.refreshing.Store(false)
		h.rt.stats.staleHits.Add(1)
		h.rt.noteHit(lk.primary)
		fr.entry, fr.vary, fr.stale, fr.staleDetail = e, lk.vary, true, f.staleDetail
		if w != nil {
			now := h.c.now()
			age := e.age(now)
			h.serve(w, r, lk.primary, e, age, Status{Fwd: "stale", FwdStatus: f.status, TTL: e.lifetime() - age, HasTTL: true, Detail: f.staleDetail})
		}
	case modeIntercepted:
		// The client was served as the response streamed; see fill.
	default:
		if lk.entry != nil {
			lk.entry.refreshing.Store(false)
		}
	}
	if f.storing {
		switch e := f.entry(); {
		case e == nil:
		case lk.part && e.Status == http.StatusPartialContent:
			h.storePart(out.Context(), lk.primary, e, f.gen)
		default:
			h.store(out.Context(), lk.primary, e, f.gen)
			fr.entry, fr.vary = e, f.vary
		}
	} else if f.markPass {
		h.rt.stats.uncacheable.Add(1)
		if h.rt.o.HitForPass > 0 {
			fr.passer, fr.passKey, fr.passCtx = h, lk.primary, out.Context()
		}
	}
}

// store stores e under primary and counts it when the store took it,
// unless a purge was made since its fetch began (at purge generation
// gen): what it fetched may be what the purge meant to remove.
func (h *handler) store(ctx context.Context, primary string, e *Entry, gen purgeMark) {
	// The grace is part of it: a stale entry can only stand in for a
	// failing origin if the store (the shared tier's too) still has it.
	cc := h.cc(e)
	e.Linger = max(h.window(cc.StaleWhileRevalidate, -1, h.rt.o.StaleWhileRevalidate), h.window(cc.StaleIfError, -1, h.rt.o.StaleIfError), h.grace(cc))
	h.c.purgeMu.RLock()
	defer h.c.purgeMu.RUnlock()
	if h.c.purgeMarkOf(primary) != gen {
		return
	}
	stored, err := h.c.store.Set(ctx, primary, e)
	if err != nil {
		h.c.storeFailed("set", err)
	}
	if stored {
		h.rt.stats.stores.Add(1)
	}
}

const (
	modePass         = iota // streams to the client (if any), maybe stored
	modeNotModified         // a 304 to our revalidation
	modeStaleOnError        // an error replaced by the stale entry
	modeIntercepted         // streamed to the client after being held back
	modeHeld                // kept from the client until whole (see fill.holds)
)

// fill is the ResponseWriter the proxy writes a forwarded response to. It
// decides at the status line what happens to the response (see fetch),
// then passes the body to the client and keeps a copy while it may still
// be stored.
type fill struct {
	h       *handler
	client  http.ResponseWriter
	out     *http.Request
	lk      *lookup
	header  http.Header
	reqTime time.Time
	gen     purgeMark // where the cache's purges stood when the fetch began
	cancel  context.CancelFunc
	// staleDetail names the window a stale entry replaced an error under.
	staleDetail string
	held        Status // the Cache-Status of a held response

	intercept   bool // header is ours, not the client's
	wroteHeader bool
	mode        int
	status      int
	respTime    time.Time
	stored      http.Header // what will be stored, without our Cache-Status
	vary        []string
	varyKey     []byte
	tags        []string
	body        []byte
	length      int64 // Content-Length, or -1
	markPass    bool
	why         NotStored // why the response is not stored, once known
	storing     bool
	keep        atomic.Bool // storing, as read by clientLeft
	decided     atomic.Bool // keep is settled
	gone        atomic.Bool // the client's connection failed or it left
}

func (f *fill) Header() http.Header { return f.header }

func (f *fill) WriteHeader(code int) {
	if f.wroteHeader {
		return
	}
	if code < 200 {
		if !f.intercept && f.client != nil {
			f.client.WriteHeader(code) // informational (103 Early Hints)
		}
		return
	}
	f.wroteHeader = true
	f.status = code
	f.respTime = f.h.c.now()
	lk := f.lk
	switch {
	case code == http.StatusNotModified && lk.conditional():
		f.mode = modeNotModified
		return
	case code >= 500 && lk.canStale && f.staleIfError(code):
		f.mode = modeStaleOnError
		return
	}
	f.decide()
	hdr := f.header
	stripTagFields(hdr)
	st := Status{Fwd: lk.fwd, FwdStatus: code, Stored: f.storing && f.fits(), Detail: lk.detail}
	if f.storing && !st.Stored {
		f.notStored(NotStoredTooLarge) // larger than the whole cache
	}
	if f.why != NotStoredNone {
		st.pass = isPassDetail(lk.detail)
		st.Detail = f.why.String()
	}
	if f.storing {
		st.TTL, st.HasTTL = f.lifetimeHint(), true
	}
	if f.client == nil {
		return
	}
	if f.intercept {
		if f.holds() {
			f.mode = modeHeld
			f.held = st
			return
		}
		f.mode = modeIntercepted
		ch := f.client.Header()
		for k, v := range hdr {
			ch[k] = v
		}
		hdr = ch
	}
	// After decide and lifetimeHint, which read the targeted fields, and
	// on the client's header only: what is stored keeps them.
	stripTargeted(hdr, f.h.rt.strip)
	f.h.c.addStatus(f.out, hdr, st)
	f.client.WriteHeader(code)
}

// holds reports whether the response, replacing a stale entry, is kept
// from the client until its body is whole: the entry may stand in for
// it should the origin cut it short, which a streamed response could no
// longer be undone from. Only a response being stored is held, so what
// is held is buffered anyway and bounded by the object limit; one that
// outgrows it is let go (see Write).
func (f *fill) holds() bool {
	return f.storing && f.lk.canStale && f.staleIfError(http.StatusBadGateway)
}

// sendHeld sends a held response, whole, as it would have streamed.
func (f *fill) sendHeld() {
	f.mode = modeIntercepted
	hdr := f.client.Header()
	for k, v := range f.header {
		hdr[k] = v
	}
	f.h.c.addStatus(f.out, hdr, f.held)
	f.client.WriteHeader(f.status)
	if _, err := f.client.Write(f.body); err != nil {
		f.gone.Store(true)
	}
}

// staleIfError reports whether the stale entry may replace an error
// answered with code, and notes in f.staleDetail under which window: a
// stale-if-error (the response's, the request's or the route's), else
// the route's grace, which is kept to the answers that say the origin is
// down or overwhelmed (the proxy's 502 and 504 for a refused, reset or
// timed-out connection among them); a 501 or 505 says nothing of the
// kind.
func (f *fill) staleIfError(code int) bool {
	lk := f.lk
	cc := f.h.cc(lk.entry)
	w := f.h.window(cc.StaleIfError, lk.reqCC.StaleIfError, f.h.rt.o.StaleIfError)
	if within(lk.staleness, w) {
		f.staleDetail = "stale-if-error"
		return true
	}
	switch code {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if within(lk.staleness, f.h.grace(cc)) {
			f.staleDetail = "grace"
			return true
		}
	}
	return false
}

// decide settles whether the response is to be stored.
func (f *fill) decide() {
	resp := &http.Response{StatusCode: f.status, Header: f.header}
	part := f.lk.part && f.status == http.StatusPartialContent
	if part {
		// A part is stored when the whole response would be: judged as
		// the 200 it is a part of (RFC 9111 3.3).
		resp = &http.Response{StatusCode: http.StatusOK, Header: f.header}
	}
	ok, reason := Storable(f.out, resp, f.h.rt.o.Policy)
	// own: refused only for what this request carries (its Authorization,
	// its no-store), which says nothing about the key; the response alone
	// would have been stored.
	own := !ok && requestRefusal(reason) && storableAlone(resp, f.h.rt.o.Policy)
	f.length = -1
	if cl := f.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			f.length = n
		}
	}
	why := NotStoredNone
	if !ok {
		why = notStoredFor(f.out, reason)
	}
	if ok || own {
		vary, star := VaryFields(f.header)
		switch {
		case star:
			ok, own, why = false, false, NotStoredVaryStar // never matches
		case len(f.header["Trailer"]) > 0:
			ok, own, why = false, false, NotStoredTrailer // trailers are not kept
		case f.length > f.h.c.maxObj:
			ok, own, why = false, false, NotStoredTooLarge
		case part && !combinable(f.header):
			ok, own, why = false, false, NotStoredPartial
		}
		if ok {
			f.vary = vary
		}
	}
	if !ok {
		// A 5xx says nothing lasting about the key; anything else that
		// cannot be stored will likely not be storable next time either.
		// Only a flight's own request judges the key: a pass request
		// (HEAD, no-store, preconditions) may be refused for its own sake,
		// and so may a flight's request, for its Authorization. Marking
		// the key then would drop the variants stored for everyone else
		// and stop collapsing their misses.
		f.markPass = f.status < 500 && f.lk.flight && !own
		f.notStored(why)
		f.decided.Store(true)
		return
	}
	f.storing = true
	f.keep.Store(true)
	f.decided.Store(true)
	f.stored = f.header.Clone()
	f.tags = tags(f.stored)
	stripTagFields(f.stored)
	f.varyKey = VariantKey(nil, f.vary, f.out)
	if f.length > 0 {
		f.body = bodyBuffer(int(f.length))
	}
}

// notStored records why the response is not stored, once per response:
// a body that outgrows the limit after the whole cache refused it is one
// response, not two. A pass for a key remembered as uncacheable reports
// that instead, as the reason it went forward alone.
func (f *fill) notStored(why NotStored) {
	if f.why != NotStoredNone {
		return
	}
	if f.lk.detail == "hit-for-pass" {
		why = NotStoredHitForPass
	}
	f.why = why
	f.h.rt.stats.notStoredAdd(why)
}

// requestRefusal reports whether a Storable reason may come from the
// request rather than the response: Authorization, or a no-store that
// either may carry.
func requestRefusal(reason string) bool {
	return reason == "authorization" || reason == "no-store"
}

// storableAlone reports whether resp would be stored for a plain GET
// without Authorization or request directives: whether the response
// itself is storable.
func storableAlone(resp *http.Response, o StoreOptions) bool {
	ok, _ := Storable(&http.Request{Method: http.MethodGet}, resp, o)
	return ok
}

// fits reports whether the response can be admitted at all: one that
// costs more than the whole store is still offered to it (and counted as
// dropped), but Cache-Status must not claim it was stored.
// A body of unknown length is judged by the largest it may grow to.
func (f *fill) fits() bool {
	n := f.length
	if n < 0 {
		n = f.h.c.maxObj
	}
	e := Entry{Record: Record{Header: f.stored, VaryKey: f.varyKey, Tags: f.tags}}
	cost := e.Size() + n + keyCost(f.lk.primary)
	return cost <= f.h.c.maxSize
}

func (f *fill) lifetimeHint() time.Duration {
	resp := &http.Response{StatusCode: f.status, Header: f.stored}
	lifetime, _ := FreshnessLifetime(resp, f.h.rt.o.Policy)
	return lifetime - CurrentAge(resp, f.reqTime, f.respTime, f.respTime)
}

func (f *fill) Write(p []byte) (int, error) {
	if !f.wroteHeader {
		f.WriteHeader(http.StatusOK)
	}
	if f.mode != modePass && f.mode != modeIntercepted && f.mode != modeHeld {
		return len(p), nil
	}
	if f.mode == modeHeld && int64(len(f.body)+len(p)) > f.h.c.maxObj {
		// Too large to be stored, so too large to hold: what was held
		// goes out and the rest streams, as without a stale entry.
		f.sendHeld()
	}
	if f.client != nil && f.mode != modeHeld && !f.gone.Load() {
		if _, err := f.client.Write(p); err != nil {
			f.clientLeft()
		}
	}
	if f.storing {
		if int64(len(f.body)+len(p)) > f.h.c.maxObj {
			f.dropBody()
		} else {
			f.body = append(f.body, p...)
		}
	}
	return len(p), nil
}

// dropBody gives up storing a response that outgrew the object limit.
func (f *fill) dropBody() {
	f.storing = false
	f.keep.Store(false)
	f.body = nil
	f.markPass = f.lk.flight
	f.notStored(NotStoredTooLarge)
	if f.gone.Load() && f.cancel != nil {
		f.cancel()
	}
}

// clientLeft is called when the client's writes fail or its request is
// cancelled: the fetch goes on only while its response is being stored.
// Before the status line that is not known yet, so it goes on.
func (f *fill) clientLeft() {
	f.gone.Store(true)
	if f.decided.Load() && !f.keep.Load() && f.cancel != nil {
		f.cancel()
	}
}

func (f *fill) FlushError() error {
	if !f.wroteHeader {
		f.WriteHeader(http.StatusOK)
	}
	if f.client == nil || f.gone.Load() || (f.mode != modePass && f.mode != modeIntercepted) {
		return nil
	}
	if err := http.NewResponseController(f.client).Flush(); err != nil {
		f.clientLeft()
	}
	return nil
}

// entry builds the stored entry once the whole body arrived.
func (f *fill) entry() *Entry {
	if f.length >= 0 && int64(len(f.body)) != f.length {
		return nil // cut short: never store a truncated body
	}
	hdr := f.stored
	if len(hdr["Date"]) == 0 {
		// RFC 9110 6.6.1: a cache adds Date before storing a response
		// without one, so its age can be computed.
		hdr["Date"] = []string{f.respTime.UTC().Format(http.TimeFormat)}
	}
	if bodyAllowed(f.status) {
		hdr["Content-Length"] = []string{strconv.Itoa(len(f.body))}
	}
	return newEntry(f.status, hdr, tightBody(f.body), f.vary, f.varyKey, f.tags, f.reqTime, f.respTime, f.h.rt.o.Policy, f.h.rt.o.Compress)
}

// refreshed is old updated by the 304 in f (RFC 9111 4.3.4), or nil when
// the 304 does not select old for update: its strong ETag is not old's
// (also when old has none, having been validated by Last-Modified: the
// 304 then speaks of a representation the cache does not hold), or its
// weak ETag does not match old's in a weak comparison.
func (h *handler) refreshed(old *Entry, f *fill) *Entry {
	if et := f.header.Get("Etag"); et != "" {
		if weak, ok := strings.CutPrefix(et, "W/"); !ok {
			if et != old.ETag {
				return nil
			}
		} else if old.ETag != "" && weak != strings.TrimPrefix(old.ETag, "W/") {
			return nil
		}
	}
	hdr := old.Header.Clone()
	for k, v := range f.header {
		switch k {
		case "Content-Length", "Content-Encoding", "Content-Range", "Transfer-Encoding", "Surrogate-Key", "Cache-Tag":
			// Describe the stored body (RFC 9111 3.2), or the tags
			// stored with it.
			continue
		}
		hdr[k] = v
	}
	hdr = hdr.Clone() // one backing array, len == cap everywhere
	if len(hdr["Date"]) == 0 || len(f.header["Date"]) == 0 {
		hdr["Date"] = []string{f.respTime.UTC().Format(http.TimeFormat)}
	}
	e := newEntry(old.Status, hdr, old.Body, old.Vary, old.VaryKey, old.Tags, f.reqTime, f.respTime, h.rt.o.Policy, h.rt.o.Compress)
	if e.compressible && old.compressible && e.ETag == old.ETag {
		// Same body, same validator: the encoded forms still hold.
		for i := range old.forms {
			if f := old.forms[i].done.Load(); f != nil {
				e.forms[i].done.Store(f)
			}
		}
	}
	return e
}

// Purge tags come from the Surrogate-Key (space separated, as Fastly and
// Varnish use it) and Cache-Tag (comma separated, as Cloudflare uses it)
// response fields. They are for this cache, so they are removed from what
// clients see and what is stored, and bounded so that one response cannot
// make the index large.
const (
	maxTags   = 64
	maxTagLen = 256
)

func tags(h http.Header) []string {
	var out []string
	add := func(t string) {
		if t == "" || len(t) > maxTagLen || len(out) >= maxTags {
			return
		}
		for _, o := range out {
			if o == t {
				return
			}
		}
		out = append(out, t)
	}
	for _, line := range h["Surrogate-Key"] {
		for _, t := range strings.Fields(line) {
			add(t)
		}
	}
	for _, line := range h["Cache-Tag"] {
		for _, t := range strings.Split(line, ",") {
			add(strings.TrimSpace(t))
		}
	}
	return out
}

func stripTagFields(h http.Header) {
	delete(h, "Surrogate-Key")
	delete(h, "Cache-Tag")
}

// serveContent answers a conditional or range request for a stored 200
// with net/http's own evaluation of preconditions and ranges. noRanges
// is set when body is a form the gateway encoded: it must not be
// offered in ranges (Accept-Ranges), and the caller has dropped Range.
func serveContent(w http.ResponseWriter, r *http.Request, body []byte, lastModified string, noRanges bool) (sent int) {
	hdr := w.Header()
	if _, ok := hdr["Content-Type"]; !ok {
		hdr["Content-Type"] = nil // keep ServeContent from sniffing one
	}
	// Dates are read exactly (ParseHTTPDate): an invalid Last-Modified or
	// If-(Un)Modified-Since is ignored (RFC 9110 13.1.3, 13.1.4), which
	// ServeContent does for a zero time and an absent field, where its own
	// lenient parsing might have answered 304 or 412 from a malformed date.
	var mod time.Time
	if lastModified != "" {
		mod, _ = ParseHTTPDate(lastModified)
	}
	r = withoutInvalidDates(r)
	cw := contentWriters.Get().(*contentWriter)
	*cw = contentWriter{ResponseWriter: w, noRanges: noRanges}
	http.ServeContent(cw, r, "", mod, bytes.NewReader(body))
	if cw.status == http.StatusPreconditionFailed && r.Method != http.MethodHead {
		_, _ = io.WriteString(w, preconditionFailed)
	}
	sent = cw.sent
	*cw = contentWriter{}
	contentWriters.Put(cw)
	return sent
}

// preconditionFailed is the body of a 412 answered from the cache.
const preconditionFailed = "precondition failed\n"

// errorDropFields describe the stored representation: its bytes (length,
// coding, range, digests) and how long it may be reused. An error that
// http.ServeContent answers in its place (412, 416) has a body of its own
// and must not be stored by a cache downstream, so it goes without them,
// as net/http's own errors from ServeContent do. A 416's Content-Range
// ("bytes */N") is set by ServeContent for the error itself and stays.
var errorDropFields = [...]string{
	"Content-Length", "Content-Encoding", "Content-Range", "Accept-Ranges",
	"Content-Md5", "Content-Digest", "Repr-Digest", "Digest",
	"Etag", "Last-Modified", "Cache-Control", "Expires",
}

// contentWriter is the ResponseWriter http.ServeContent writes to. The
// header it finds is that of the stored 200 (or of its encoded form),
// with Content-Length and Content-Encoding set, which ServeContent clears
// for a 304 but not for the bare 412 of a failed If-Match or
// If-Unmodified-Since: sent as they were, the client would wait for a
// body that never comes and the connection would break. Pooled, so that
// a conditional hit allocates no more than ServeContent itself does.
type contentWriter struct {
	http.ResponseWriter
	noRanges bool
	status   int
	sent     int // body bytes of the stored response written (200, 206)
}

var contentWriters = sync.Pool{New: func() any { return new(contentWriter) }}

func (cw *contentWriter) WriteHeader(code int) {
	h := cw.ResponseWriter.Header()
	if cw.noRanges {
		delete(h, "Accept-Ranges") // ServeContent sets it on 200 and 206
	}
	if code >= 300 && code != http.StatusNotModified {
		for _, k := range errorDropFields {
			if k == "Content-Range" && code == http.StatusRequestedRangeNotSatisfiable {
				continue
			}
			delete(h, k)
		}
		if code == http.StatusPreconditionFailed {
			// ServeContent writes no body for it: serveContent does.
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["X-Content-Type-Options"] = []string{"nosniff"}
			h["Content-Length"] = []string{strconv.Itoa(len(preconditionFailed))}
		}
	}
	cw.status = code
	cw.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes of the stored body that go out: those of a 200
// or a 206, not the short error text ServeContent writes for a 416.
func (cw *contentWriter) Write(p []byte) (int, error) {
	n, err := cw.ResponseWriter.Write(p)
	if cw.status < 300 {
		cw.sent += n
	}
	return n, err
}

// withoutInvalidDates returns r, or a shallow copy without the
// If-Modified-Since and If-Unmodified-Since fields that are not exact
// HTTP-dates, so that they are ignored as RFC 9110 13.1.3 and 13.1.4 say.
func withoutInvalidDates(r *http.Request) *http.Request {
	var drop []string
	for _, name := range [...]string{"If-Modified-Since", "If-Unmodified-Since"} {
		if vs, ok := r.Header[name]; ok {
			if _, valid := ParseHTTPDate(trimOWS(vs[0])); len(vs) != 1 || !valid {
				drop = append(drop, name)
			}
		}
	}
	if drop == nil {
		return r
	}
	r2 := *r
	r2.Header = r.Header.Clone()
	for _, name := range drop {
		delete(r2.Header, name)
	}
	return &r2
}
