package cache

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/http/httpguts"

	"gateway/compress"
	"gateway/internal/httpmethod"
	"gateway/internal/outcome"
)

// handler is one route's cache in front of its proxy. The request path:
//
//  1. GET and HEAD look up the primary key (Keyer), then the variant that
//     matches the request's Vary fields. Other methods are forwarded, and
//     an unsafe one that succeeds invalidates its URL (RFC 9111 4.4).
//  2. A fresh entry, or a stale one the client accepts (max-stale), is
//     served at once; a stale one within stale-while-revalidate is served
//     at once and refreshed in the background, by exactly one request.
//  3. Otherwise the request goes forward: conditionally when a stale entry
//     has validators. Concurrent requests for one key share that fetch
//     (singleflight); see coalesce for who receives what.
//  4. The forwarded response streams to the client while a copy is kept;
//     when it is storable (Storable) and within the object size limit it
//     is stored. A key whose response was not storable is remembered as a
//     pass for a while, so its requests stop queuing behind one another.
type handler struct {
	rt   *Route
	c    *Cache
	next http.Handler
	arm  DeadlineArmer // next's, or nil: the route has no deadline to arm
}

var keyBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// noRequestDirectives is a request without Cache-Control, to tell whether
// a revalidation was forced by the request or by the stored response.
var noRequestDirectives = ParseCacheControlValue("")

// lookup is what the cache knows about a request before going forward.
type lookup struct {
	primary   string
	reqCC     Directives
	fwd       string   // Cache-Status fwd reason
	detail    string   // Cache-Status detail
	vary      []string // Vary fields of what is stored under primary
	entry     *Entry   // the stored variant for this request, if any
	canStale  bool     // entry is stale and may be served stale (RFC 5861)
	staleness time.Duration
	passUntil time.Time
	flight    bool // the fetch is a flight's: its outcome judges the key
	shared    bool // what was found came from the shared tier
	// part: a range request forwarded as sent, whose 206 may be kept as
	// a part (parts.go).
	part bool
}

// conditional reports whether the forwarded request can revalidate entry.
func (lk *lookup) conditional() bool {
	return lk.entry != nil && (lk.entry.ETag != "" || lk.entry.LastModified != "")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		h.forwardMethod(w, r)
		return
	}
	if len(r.Header["Upgrade"]) > 0 && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade") {
		// WebSocket and other upgrades are tunnels, not responses to
		// store. An Upgrade field alone asks for nothing (the proxy
		// drops it), and must not let a client pass the cache at will.
		h.next.ServeHTTP(&invalidator{ResponseWriter: w, c: h.c, r: r, fwd: "bypass", strip: h.rt.strip}, r)
		return
	}
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = h.appendKey((*bp)[:0], r)
	// The key is looked up as a view of the pooled buffer, which nothing
	// retains; a request that goes forward copies it (forward).
	lk := lookup{primary: unsafe.String(unsafe.SliceData(*bp), len(*bp)), reqCC: ParseCacheControl(r.Header), fwd: "uri-miss"}
	now := h.c.now()
	obj, err := h.c.store.Get(r.Context(), lk.primary)
	if err != nil {
		h.c.storeFailed("get", err) // a miss
	}
	if obj != nil {
		lk.vary = obj.Vary
		lk.passUntil = obj.PassUntil
		lk.shared = obj.Shared
		if len(obj.Variants) > 0 {
			lk.fwd = "vary-miss"
			if e := findVariant(obj, r); e != nil && h.tryServe(w, r, &lk, e, now) {
				return
			}
		}
	}
	h.forward(w, r, lk, now)
}

// forward handles a request the cache could not answer. lk is taken by
// value, and stays on the stack: what goes forward takes a copy (the
// flight's own, in its call), so that hits and flights allocate no
// lookup of their own.
func (h *handler) forward(w http.ResponseWriter, r *http.Request, lk lookup, now time.Time) {
	if br, ok := h.partRequest(r, &lk, now); ok {
		if h.servePart(w, r, &lk, br, now) {
			return
		}
		lk.part = true
	}
	if lk.reqCC.OnlyIfCached {
		// RFC 9111 5.2.1.7: nothing stored fits, and the client forbids
		// going forward.
		h.c.addStatus(r, w.Header(), Status{Detail: "only-if-cached"})
		httpError(w, http.StatusGatewayTimeout, "not cached")
		return
	}
	// lk.primary is still a view of the request's key buffer: what goes
	// forward copies it, as what it stores keeps it.
	switch {
	case lk.part:
		// Forwarded as sent and not coalesced: requests for other ranges
		// of the key would not be answered by this one's 206.
		h.rt.stats.misses.Add(1)
	case h.passes(r, &lk, now):
		h.rt.stats.passes.Add(1)
	default:
		h.coalesce(w, r, &lk)
		return
	}
	r, release := h.armDeadline(r)
	defer release()
	h.direct(w, r, r, lk)
}

// armDeadline arms the route's deadline on r, when it has one.
func (h *handler) armDeadline(r *http.Request) (*http.Request, context.CancelFunc) {
	if h.arm == nil {
		return r, func() {}
	}
	return h.arm.ArmDeadline(r)
}

// tryServe answers r from e when RFC 9111 and RFC 5861 allow it, and
// otherwise records in lk how to go forward.
func (h *handler) tryServe(w http.ResponseWriter, r *http.Request, lk *lookup, e *Entry, now time.Time) bool {
	lk.entry = e
	lk.fwd = "stale"
	age := e.age(now)
	lifetime := e.lifetime()
	cc := h.cc(e) // looked up once: a hit reads it up to three times
	v, staleness := Usable(lk.reqCC, cc, age, lifetime)
	switch v {
	case Fresh:
		h.rt.stats.hits.Add(1)
		h.rt.noteHit(lk.primary)
		st := Status{Hit: true, TTL: lifetime - age, HasTTL: true}
		if lk.shared {
			st.Detail = "shared"
		}
		h.serve(w, r, lk.primary, e, age, st)
		return true
	case StaleAcceptable:
		h.rt.stats.staleHits.Add(1)
		h.rt.noteHit(lk.primary)
		h.serve(w, r, lk.primary, e, age, Status{Hit: true, TTL: lifetime - age, HasTTL: true, Detail: "max-stale"})
		return true
	case Stale:
		lk.canStale = true
		lk.staleness = staleness
		if within(staleness, h.window(cc.StaleWhileRevalidate, -1, h.rt.o.StaleWhileRevalidate)) {
			h.rt.stats.staleHits.Add(1)
			h.rt.noteHit(lk.primary)
			if e.TryRefresh() {
				h.refreshInBackground(r, *lk)
			}
			h.serve(w, r, lk.primary, e, age, Status{Hit: true, TTL: lifetime - age, HasTTL: true, Detail: "stale-while-revalidate"})
			return true
		}
	case Revalidate:
		if rv, _ := Usable(noRequestDirectives, cc, age, lifetime); rv == Fresh {
			lk.fwd = "request"
		}
	}
	return false
}

// window is an RFC 5861 window: the response's directive when present
// (resp >= 0), else the route's default; a request directive (req >= 0)
// may widen it, as the client says it accepts that much.
func (h *handler) window(resp, req int64, def time.Duration) time.Duration {
	w := def
	if resp >= 0 {
		w = seconds(resp)
	}
	if req >= 0 {
		w = max(w, seconds(req))
	}
	return w
}

// grace is the route's grace for a response with directives cc: none
// when cc forbids serving it stale (RFC 9111 4.2.4: must-revalidate,
// proxy-revalidate and s-maxage bind a shared cache, no-cache any), and
// none when it names its own stale-if-error: its origin has then said
// how long, 0 included, and the route does not override that.
func (h *handler) grace(cc Directives) time.Duration {
	if cc.MustRevalidate || cc.ProxyRevalidate || cc.NoCache || cc.SMaxAge >= 0 || cc.StaleIfError >= 0 {
		return 0
	}
	return h.rt.o.Grace
}

// within reports whether staleness falls inside an RFC 5861 window. A
// zero window means none: an entry exactly at its lifetime is stale by 0
// and must not be served stale.
func within(staleness, window time.Duration) bool {
	return window > 0 && staleness <= window
}

// passes reports whether r goes to the origin on its own, not coalesced:
// a key remembered as uncacheable, a request that forbids storing, and a
// range or conditional request that the cache has nothing to answer with
// (forwarded as sent, so the origin can answer 206 or 304 itself).
func (h *handler) passes(r *http.Request, lk *lookup, now time.Time) bool {
	switch {
	case now.Before(lk.passUntil):
		lk.detail = "hit-for-pass"
	case lk.reqCC.NoStore:
		lk.detail = "request-no-store"
	case lk.entry == nil && hasPreconditions(r.Header):
		lk.detail = "conditional"
	default:
		return false
	}
	lk.entry = nil
	lk.canStale = false
	return true
}

// isPassDetail reports whether detail is one passes sets.
func isPassDetail(detail string) bool {
	return detail == "hit-for-pass" || detail == "request-no-store" || detail == "conditional"
}

func findVariant(obj *Object, r *http.Request) *Entry {
	if len(obj.Vary) == 0 {
		return obj.Variants[0]
	}
	var buf [256]byte
	vk := VariantKey(buf[:0], obj.Vary, r)
	for _, e := range obj.Variants {
		if bytes.Equal(e.VaryKey, vk) {
			return e
		}
	}
	return nil
}

// appendKey appends the route's key, plus the X-Forwarded-Host and -Proto a
// trusted peer sent: the proxy forwards those, and an origin may build
// links from them, so requests that differ in them must not share entries.
func (h *handler) appendKey(b []byte, r *http.Request) []byte {
	b = h.rt.keyer.AppendKey(b, r)
	if h.rt.o.TrustedPeer != nil && h.rt.o.TrustedPeer(r) {
		for _, name := range [...]string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
			b = append(b, "\x00f:"...)
			b = append(b, name...)
			for _, v := range r.Header[name] {
				b = append(b, '=')
				b = appendEscaped(b, v)
			}
		}
	}
	return b
}

// serve writes e, stored under primary, as the response to r, answering
// conditional and range requests for a 200 like a file server would,
// except that a form the gateway encoded is only ever sent whole.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, primary string, e *Entry, age time.Duration, st Status) {
	hdr := w.Header()
	// The entry's encoding was prepared for the route's compressor when it
	// was stored; a reload may since have turned compression off, and an
	// entry outlives that (it is keyed by URL): it is then served as
	// stored.
	enc := h.rt.o.Compress
	// f, when set, is a form the gateway encoded. Its bytes differ from
	// those the same ETag named on the miss, which the streaming
	// compressor encoded at another level, so a range of one must never
	// be spliced onto the other: like nginx's gzip, no ranges of it are
	// offered or served.
	var f *encoded
	if e.compressible && enc != nil {
		if coding := enc.Choose(r); coding != "" {
			var fresh bool
			f, fresh = e.encodedForm(coding, enc)
			if fresh {
				if rc, ok := h.c.store.(Recoster); ok {
					rc.Recost(primary, e)
				}
			}
		}
	}
	body := e.Body
	if f != nil {
		body = f.body
	}
	conditional := e.Status == http.StatusOK && hasPreconditions(r.Header)
	// A small body whose GET is answered whole gets its Content-Length
	// from the server instead: net/http (and the HTTP/2 and HTTP/3
	// servers) set it for a body that fits their first buffer when the
	// handler returns unflushed, as a hit's does. One field fewer keeps a
	// hit's header within the 8 fields a Go map holds without growing,
	// which net/http's header map does, and then its copy of it at
	// WriteHeader, in 7 allocations and about a microsecond.
	implicitLength := r.Method == http.MethodGet && !conditional && len(body) > 0 && len(body) <= implicitLengthMax && bodyAllowed(e.Status)
	switch {
	case f != nil:
		setFields(hdr, f.fields, implicitLength)
	case e.fields != nil:
		setFields(hdr, e.fields, implicitLength)
	default:
		for k, v := range e.Header {
			if !implicitLength || k != "Content-Length" {
				hdr[k] = v
			}
		}
	}
	if len(h.rt.strip) > 0 {
		stripTargeted(hdr, h.rt.strip)
		if f != nil {
			setFields(hdr, f.over, implicitLength)
		}
	}
	secs := min(int64(age/time.Second), deltaSecondsMax)
	if len(hdr["Cache-Status"]) == 0 && st.Hit && st.HasTTL && st.Key == "" {
		// The usual case: values shared with the entry's other hits of
		// this second, so nothing is allocated.
		vals := e.hitValues(h.c.name, secs, st)
		hdr["Age"] = vals[0:1:1]
		hdr["Cache-Status"] = vals[1:2:2]
	} else if len(hdr["Cache-Status"]) == 0 {
		// In two allocations: the member and one backing array for both
		// fields.
		var buf [128]byte
		vals := make([]string, 2)
		vals[0] = strconv.FormatInt(secs, 10)
		vals[1] = string(st.Append(buf[:0], h.c.name))
		hdr["Age"] = vals[0:1:1]
		hdr["Cache-Status"] = vals[1:2:2]
	} else {
		hdr["Age"] = []string{strconv.FormatInt(secs, 10)}
		AddCacheStatus(hdr, h.c.name, st)
	}
	outcome.Record(r.Context(), st.Outcome())
	madeHere := f != nil
	if madeHere {
		delete(hdr, "Accept-Ranges")
		if e.digests {
			for _, k := range digestFields {
				delete(hdr, k)
			}
		}
	} else if e.varyAE != nil && enc != nil {
		hdr["Vary"] = e.varyAE
	}
	if len(e.Header["Content-Encoding"]) == 0 && enc != nil {
		// Final bytes: the route's streaming compressor must not touch
		// them. A body stored encoded is left to it, to decode for a
		// client that does not accept the coding. (Without a compressor
		// there is none in front to tell.)
		passThrough(w, hdr, enc)
	}
	if conditional {
		switch {
		case len(r.Header["Range"]) == 0:
		case madeHere:
			// The whole encoded form goes out instead (RFC 9110 section
			// 14.2 lets a server ignore Range), as on the miss.
			r = withoutRange(r)
		case e.coding != "" && enc != nil && !acceptsCoding(r, e.coding):
			// A range of the encoded bytes is useless to a client that
			// cannot decode them, and the compressor passes a 206 on
			// untouched: the whole body goes out instead, for the
			// compressor to decode like any other 200.
			r = withoutRange(r)
		}
		h.rt.stats.hitBytes.Add(uint64(serveContent(w, r, body, e.LastModified, madeHere)))
		return
	}
	if r.Method == http.MethodHead || !bodyAllowed(e.Status) {
		w.WriteHeader(e.Status)
		return
	}
	var g writeGatherer
	if len(body) > implicitLengthMax {
		// Larger than the server's first buffer: the header and the
		// body leave in one system call where the connection can
		// gather them, rather than the header and the body's start in
		// one and the rest in another.
		g = gatherer(w)
	}
	if g != nil {
		g.GatherWrites(true)
	}
	w.WriteHeader(e.Status)
	n, _ := w.Write(body)
	if g != nil {
		g.GatherWrites(false)
	}
	h.rt.stats.hitBytes.Add(uint64(n))
}

// A writeGatherer is the writer the gateway's HTTP/1 listener puts
// under the handlers (entrypoint's stallWriter, there when the listener
// has a write timeout, as it has by default): between
// GatherWrites(true) and GatherWrites(false) the connection sends a
// response's writes in as few system calls as it can.
type writeGatherer interface{ GatherWrites(on bool) }

// gatherer is the writeGatherer under w, nil when there is none.
func gatherer(w http.ResponseWriter) writeGatherer {
	for {
		switch t := w.(type) {
		case writeGatherer:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

// setFields sets each of fields in h, but Content-Length when
// implicitLength. The stored slices have len == cap, so appending to
// them copies.
func setFields(h http.Header, fields []field, implicitLength bool) {
	for _, f := range fields {
		if !implicitLength || f.name != "Content-Length" {
			h[f.name] = f.values
		}
	}
}

// implicitLengthMax is the largest body the servers the gateway runs
// on give a Content-Length when the handler sent none: net/http's
// HTTP/1 buffer before chunking (2048 bytes) is the smallest of them
// (its HTTP/2 server's is 4 KiB, quic-go's HTTP/3 one's just under).
const implicitLengthMax = 2048

// passThrough tells the route's compressor that the response whose
// header is hdr is final: directly when w is the compressor's own writer,
// which spares the header the mark, else through the header.
func passThrough(w http.ResponseWriter, hdr http.Header, enc Encoder) {
	if s, ok := w.(compress.Skipper); ok {
		s.SkipCompression()
		return
	}
	enc.PassThrough(hdr)
}

// withoutRange is r without its Range field, for serveContent.
func withoutRange(r *http.Request) *http.Request {
	r2 := r.WithContext(r.Context())
	r2.Header = r.Header.Clone()
	delete(r2.Header, "Range")
	return r2
}

// hasPreconditions reports a conditional or range request (RFC 9110
// section 13 and 14).
func hasPreconditions(h http.Header) bool {
	for k := range h {
		if len(k) > 2 && (k[0] == 'I' && k[1] == 'f' || k[0] == 'R' && k == "Range") {
			return true
		}
	}
	return false
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// forwardMethod forwards a request the cache does not answer and
// invalidates what an unsafe one may have changed.
func (h *handler) forwardMethod(w http.ResponseWriter, r *http.Request) {
	h.next.ServeHTTP(&invalidator{ResponseWriter: w, c: h.c, r: r, fwd: "method", stats: h.rt.stats, why: NotStoredMethod, strip: h.rt.strip}, r)
}

// Invalidator returns next with the invalidation of RFC 9111 section 4.4
// in front of it, for a route that does not cache: a request with an
// unsafe method that succeeds there may change what a cached route
// stored for the same URL (one route reading /api with GET, another
// writing it with POST), so it invalidates that as a cached route's own
// unsafe request would. Safe methods go straight to next, at the cost of
// one method check; nothing else about the response is changed.
func (c *Cache) Invalidator(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpmethod.Safe(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&invalidator{ResponseWriter: w, c: c, r: r}, r)
	})
}

// invalidator passes a response the cache does not store through and,
// when it is a success to an unsafe method, drops the stored responses for the request URL and for
// the Location and Content-Location on the same origin (RFC 9111 4.4).
// It acts on the status line, before the body: later requests must not
// be served the old representation while the body still streams. On a
// cached route (fwd set) it adds the Cache-Status and removes the purge
// tags meant for the cache; a route without a cache (Invalidator) leaves
// the response as it is.
type invalidator struct {
	http.ResponseWriter
	c     *Cache
	r     *http.Request
	fwd   string
	wrote bool
	// why and stats, on a cached route's unsafe method, say and count
	// why its response was not stored.
	why   NotStored
	stats *routeCounters
	strip []string // the route's targeted fields to remove (Route.strip)
}

func (iv *invalidator) WriteHeader(code int) {
	if (code >= 200 || code == http.StatusSwitchingProtocols) && !iv.wrote {
		iv.wrote = true
		hdr := iv.ResponseWriter.Header()
		if code < 400 && !httpmethod.Safe(iv.r.Method) {
			iv.c.invalidate(iv.r, hdr)
		}
		if iv.fwd != "" {
			stripTagFields(hdr)
			stripTargeted(hdr, iv.strip)
			iv.c.addStatus(iv.r, hdr, Status{Fwd: iv.fwd, FwdStatus: code, Detail: iv.why.String()})
		}
		if iv.stats != nil {
			iv.stats.notStoredAdd(iv.why)
		}
	}
	iv.ResponseWriter.WriteHeader(code)
}

func (iv *invalidator) Write(p []byte) (int, error) {
	if !iv.wrote {
		iv.WriteHeader(http.StatusOK)
	}
	return iv.ResponseWriter.Write(p)
}

func (iv *invalidator) FlushError() error {
	if !iv.wrote {
		iv.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(iv.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach Hijack (upgrades) and the
// deadlines of the connection.
func (iv *invalidator) Unwrap() http.ResponseWriter { return iv.ResponseWriter }

// invalidateURL removes what is stored under the URL part u, for an
// unsafe request's response (RFC 9111 4.4). It runs on the response's
// path, so a store that shares its purges with other processes is asked
// to invalidate without waiting for them (URLInvalidator); a fill of u
// under way does not store after it.
func (c *Cache) invalidateURL(ctx context.Context, u string) {
	c.advanceURLGen(u)
	if iv, ok := c.store.(URLInvalidator); ok {
		if err := iv.InvalidateURL(ctx, u); err != nil {
			c.storeFailed("invalidate", err)
		}
		return
	}
	if _, err := c.store.PurgeURL(ctx, u, false); err != nil {
		c.storeFailed("invalidate", err)
	}
}

// invalidate drops what every cached route stored for the URL of r and for
// its response's Location and Content-Location on the same origin. Each
// route's keyer gives the URL as that route keys it (its ignore_params
// may drop parts of the query), so the request invalidates whatever route
// stored the URL, not only the one it went through.
func (c *Cache) invalidate(r *http.Request, resp http.Header) {
	c.mu.Lock()
	keyers := make([]*Keyer, len(c.routes))
	for i, rt := range c.routes {
		keyers[i] = rt.keyer
	}
	c.mu.Unlock()
	// The invalidation is owed even when the client has left.
	ctx := context.WithoutCancel(r.Context())
	var done []string
	remove := func(req *http.Request) {
		for _, k := range keyers {
			u := URLPart(k.Key(req))
			if !slices.Contains(done, u) {
				done = append(done, u)
				c.invalidateURL(ctx, u)
			}
		}
	}
	remove(r)
	base := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	if r.TLS != nil {
		base.Scheme = "https"
	}
	for _, name := range [...]string{"Location", "Content-Location"} {
		v := resp.Get(name)
		if v == "" {
			continue
		}
		u, err := base.Parse(v)
		if err != nil || u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) {
			continue // another origin: RFC 9111 4.4 forbids invalidating it
		}
		remove(&http.Request{Method: http.MethodGet, URL: u, Host: r.Host, TLS: r.TLS})
	}
}

// flightResult is what the fetch that leads a flight hands its followers.
type flightResult struct {
	entry *Entry   // a response a shared cache may reuse; nil: fetch yourself
	vary  []string // Vary fields entry was keyed under
	stale bool     // entry is a stale one, served because the origin failed
	// staleDetail names the window a stale entry was served under.
	staleDetail string
	status      int  // the status the origin answered with
	hit         bool // entry was found stored: nothing went forward
	abort       any  // the fetch panicked (e.g. the upstream body broke)
	// passer, when set, remembers passKey as uncacheable (hit-for-pass)
	// on markPass, with passCtx's values. It is only marked when the
	// flight had followers (flights.finish) or other processes wait on
	// its lease: a key nobody waited on needs no marker, and one-off
	// uncacheable URLs then cost the store nothing.
	passer  *handler
	passKey string
	passCtx context.Context
	passed  bool // markPass was called; only the flight's leader calls it
}

// markPass remembers the flight's key as uncacheable, once, when its
// response said so.
func (fr *flightResult) markPass() {
	if fr.passer == nil || fr.passed {
		return
	}
	fr.passed = true
	h := fr.passer
	// The flight's context may be done by now.
	if err := h.c.store.SetPass(context.WithoutCancel(fr.passCtx), fr.passKey, h.c.now().Add(h.rt.o.HitForPass)); err != nil {
		h.c.storeFailed("set pass", err)
	}
}

// coalesce sends r forward through a flight shared by every concurrent
// request for the key. The first request leads: its fetch streams to its
// own client and fills the cache. The rest wait, woken by the flight's
// end, and are served the result when a shared cache may reuse it for
// them; otherwise, or after LockTimeout, they go to the origin themselves.
func (h *handler) coalesce(w http.ResponseWriter, r *http.Request, lk *lookup) {
	// Read before joining: a leader's fetch keeps the client's deadline.
	end, hasEnd := r.Context().Deadline()
	fc, leads := h.c.flights.join(lk.primary)
	if leads {
		fc.lk = *lk
		fc.lk.primary = fc.key
		h.lead(w, r, &fc.lk, fc, end, hasEnd)
		return
	}
	// Waiting on the flight and going to the origin after it share one
	// deadline, the client's whole wait.
	r, release := h.armDeadline(r)
	defer release()
	timer := time.NewTimer(h.rt.o.LockTimeout)
	defer timer.Stop()
	select {
	case <-fc.done:
	case <-timer.C:
		dlk := *lk
		dlk.detail = "lock-timeout"
		h.countForward(&dlk)
		h.direct(w, r, r, dlk)
		return
	case <-r.Context().Done():
		if errors.Is(r.Context().Err(), context.DeadlineExceeded) {
			// The route's deadline passed while the fetch this request
			// waited on went on: a timeout, as the proxy answers one,
			// not an empty response.
			h.countForward(lk)
			httpError(w, http.StatusGatewayTimeout, "upstream timed out")
		}
		return // else the client left; nothing to answer
	}
	fr := &fc.fr
	if e := fr.entry; e != nil && VaryMatches(fr.vary, false, e.VaryKey, r) {
		if age := e.age(h.c.now()); shareable(fr, e, h.cc(e), lk, age) {
			h.rt.stats.coalesced.Add(1)
			h.serve(w, r, lk.primary, e, age, coalescedStatus(fr, lk, e, age))
			return
		}
	}
	h.countForward(lk)
	h.direct(w, r, r, *lk)
}

// lead runs the flight fc that r started, whose response streams to w.
// The fetch runs on a context detached from r's client (keeping its
// deadline, end when hasEnd, and the route's), so that the client
// leaving does not fail the followers: only when nothing is being stored
// does the fetch stop with it (fill.clientLeft).
func (h *handler) lead(w http.ResponseWriter, r *http.Request, lk *lookup, fc *flightCall, end time.Time, hasEnd bool) {
	lk.flight = true
	ctx := context.WithoutCancel(r.Context())
	var cancel context.CancelFunc
	switch {
	case hasEnd:
		ctx, cancel = context.WithDeadline(ctx, end)
	case h.arm == nil:
		ctx, cancel = context.WithCancel(ctx)
	}
	out := outbound(r, lk, ctx)
	if h.arm != nil {
		armed, release := h.arm.ArmDeadline(out)
		defer release()
		if armed != out {
			out = armed
			if cancel == nil {
				cancel = release // the context it armed is the fetch's own
			}
		}
	}
	if cancel == nil {
		// Nothing armed a deadline (the client's ends first): the fetch
		// still needs a context of its own to stop.
		ctx, cancel = context.WithCancel(out.Context())
		out = out.WithContext(ctx)
	}
	defer cancel()
	fr := &fc.fr
	func() {
		// Followers wake even if what follows panics (then they fetch
		// on their own).
		defer h.c.flights.finish(lk.primary, fc)
		// A flight counted by Close is cancelled by it; one started after
		// Close still runs, since requests may wait on it.
		if h.c.enterFlight(fc, cancel) {
			defer h.c.exitFlight(fc)
		}
		// A request that looked before the previous flight stored its
		// response, and arrived after that flight ended, starts this one:
		// what is stored now may already answer it.
		if got := h.recheck(w, r, out, lk); got != nil {
			*fr = *got
			return
		}
		got, lease := h.shareFill(w, r, out, lk)
		if got != nil {
			*fr = *got
			return
		}
		h.fetchInto(fr, &fc.f, w, r, out, lk, cancel)
		if lease != nil {
			// Remembered as a pass in the shared store before the lease
			// goes, so that the other processes' waiters go to the origin
			// side by side instead of queuing.
			fr.markPass()
			lease.Release()
		}
	}()
	if !fr.hit {
		h.countForward(lk)
	}
	if fr.abort != nil {
		panic(fr.abort)
	}
}

// coalescedStatus is the Cache-Status of a request answered with the
// entry another request's fetch produced.
func coalescedStatus(fr *flightResult, lk *lookup, e *Entry, age time.Duration) Status {
	st := Status{Fwd: lk.fwd, FwdStatus: fr.status, Collapsed: true, TTL: e.lifetime() - age, HasTTL: true}
	if fr.hit {
		st = Status{Hit: true, TTL: e.lifetime() - age, HasTTL: true}
	}
	if fr.stale {
		st.Detail = fr.staleDetail
	}
	return st
}

// shareable reports whether a request that waited on another's fetch may
// be answered with the entry that fetch produced, whose directives for
// the route are cc. Only a response this
// request could be served from the store may be shared (RFC 9111 section
// 4): one that is stale on arrival (max-age=0, no-cache, an Age past its
// lifetime) needs a validation of its own, or it would hand one client's
// page to another. A stale-if-error answer was already judged for stale
// use by the flight.
func shareable(fr *flightResult, e *Entry, cc Directives, lk *lookup, age time.Duration) bool {
	if fr.stale {
		return true
	}
	v, _ := Usable(lk.reqCC, cc, age, e.lifetime())
	return v == Fresh
}

// maxLeaseRounds bounds how often a flight waits for another process's
// fill of its key before fetching itself: each round ends with that
// fill's release or its lease lapsing.
const maxLeaseRounds = 4

// shareFill takes the key's fill lease from the Coordinator, waiting
// while another process holds it, before this flight goes to the origin.
// It returns the result when what another process stored answers the
// flight (served to w as recheck does), else the lease this process now
// holds, or neither: no coordinator, the shared tier is down, the key is
// a pass, or the wait ran out (LockTimeout). Then the flight fetches.
func (h *handler) shareFill(w http.ResponseWriter, r, out *http.Request, lk *lookup) (*flightResult, Lease) {
	co := h.c.coord
	if co == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(out.Context(), h.rt.o.LockTimeout)
	defer cancel()
	for range maxLeaseRounds {
		lease, err := co.Lease(ctx, lk.primary)
		if err != nil {
			return nil, nil
		}
		if lease != nil {
			// The last holder's fill may have landed between this
			// flight's look and its lease: look once more, or two
			// processes would fetch one after the other.
			if fr := h.recheck(w, r, out, lk); fr != nil {
				if f, ok := lease.(interface{ Found() }); ok {
					f.Found()
				} else {
					lease.Release()
				}
				return fr, nil
			}
			return nil, lease
		}
		if fr := h.recheck(w, r, out, lk); fr != nil {
			return fr, nil
		}
		if ctx.Err() != nil || h.c.now().Before(lk.passUntil) {
			return nil, nil
		}
	}
	return nil, nil
}

// countForward counts a request that went to the origin for the cache.
func (h *handler) countForward(lk *lookup) {
	h.rt.noteMiss(lk.primary)
	if lk.entry != nil {
		h.rt.stats.revalidations.Add(1)
	} else {
		h.rt.stats.misses.Add(1)
	}
}

// recheck serves the leader of a flight (or just returns, when w is nil)
// from a fresh entry stored since its lookup, and returns nil when there
// is none.
func (h *handler) recheck(w http.ResponseWriter, r, out *http.Request, lk *lookup) *flightResult {
	obj, err := h.c.store.Get(out.Context(), lk.primary)
	if err != nil {
		h.c.storeFailed("get", err)
	}
	if obj == nil {
		return nil
	}
	lk.passUntil = obj.PassUntil
	if len(obj.Variants) == 0 {
		return nil
	}
	e := findVariant(obj, out)
	if e == nil || e == lk.entry {
		return nil
	}
	now := h.c.now()
	age := e.age(now)
	if v, _ := Usable(lk.reqCC, h.cc(e), age, e.lifetime()); v != Fresh {
		return nil
	}
	if w != nil {
		h.rt.stats.hits.Add(1)
		h.rt.noteHit(lk.primary)
		st := Status{Hit: true, TTL: e.lifetime() - age, HasTTL: true}
		if obj.Shared {
			st.Detail = "shared"
		}
		h.serve(w, r, lk.primary, e, age, st)
	}
	return &flightResult{entry: e, vary: obj.Vary, status: e.Status, hit: true}
}

// direct fetches out for r without a flight, with a copy of lk whose key
// is its own (what it stores keeps it; lk's may be a view of the
// request's key buffer), re-raising a panic of the proxy (an aborted
// response) on this goroutine as net/http expects.
func (h *handler) direct(w http.ResponseWriter, r, out *http.Request, lk lookup) {
	// The fetch's lookup and fill, in one allocation.
	d := &struct {
		lk lookup
		f  fill
	}{lk: lk}
	d.lk.primary = strings.Clone(lk.primary)
	d.lk.entry, d.lk.canStale, d.lk.flight = nil, false, false
	var fr flightResult
	if h.fetchInto(&fr, &d.f, w, r, out, &d.lk, nil); fr.abort != nil {
		panic(fr.abort)
	}
}

// detach returns a context that keeps parent's values and deadline but
// not its cancellation.
func detach(parent context.Context) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(parent)
	if d, ok := parent.Deadline(); ok {
		return context.WithDeadline(ctx, d)
	}
	return context.WithCancel(ctx)
}

// outbound is the request a coalesced fetch sends: always a GET (a HEAD
// miss fetches the body so later GETs can hit), without a body, and
// without the client's preconditions and range, which apply to what the
// cache answers, not to what it stores. When the stored entry has
// validators they make the request conditional instead.
//
// It shares r's URL and header, which nothing on the way to the origin
// changes in place (the proxy copies the request it sends), unless it
// has fields to remove or add: then the header is its own. A fetch that
// outlives r's handler is given a copy of r.
func outbound(r *http.Request, lk *lookup, ctx context.Context) *http.Request {
	out := r.WithContext(ctx)
	out.Method = http.MethodGet
	out.Body = http.NoBody
	out.ContentLength = 0
	out.GetBody = nil
	if !lk.conditional() && !hasPreconditions(r.Header) {
		return out
	}
	out.Header = r.Header.Clone()
	for _, k := range [...]string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		delete(out.Header, k)
	}
	if lk.conditional() {
		if lk.entry.ETag != "" {
			out.Header["If-None-Match"] = []string{lk.entry.ETag}
		}
		if lk.entry.LastModified != "" {
			out.Header["If-Modified-Since"] = []string{lk.entry.LastModified}
		}
	}
	return out
}

func (h *handler) refreshInBackground(r *http.Request, lk lookup) {
	lk.primary = strings.Clone(lk.primary) // it outlives the request's key buffer
	e := lk.entry
	ctx, cancel := detach(r.Context())
	// The refresh outlives r's handler, and what runs after it may still
	// change r: the request it sends shares nothing with r.
	out := outbound(r.Clone(ctx), &lk, ctx)
	lk.detail = "stale-while-revalidate"
	lk.flight = true
	ok := h.c.goBackground(func() {
		defer cancel()
		defer context.AfterFunc(h.c.closing, cancel)()
		fc, leads := h.c.flights.join(lk.primary)
		if !leads {
			<-fc.done // a miss's flight is refreshing the key already
			return
		}
		defer h.c.flights.finish(lk.primary, fc)
		h.fetchInto(&fc.fr, &fc.f, nil, nil, out, &lk, nil)
	})
	if !ok {
		cancel()
		e.refreshing.Store(false)
	}
}

// cc are the response directives of e this route obeys (Entry.directives).
func (h *handler) cc(e *Entry) Directives { return e.directives(h.rt.o.TargetedField) }

// httpError writes a short plain-text error like proxy.Error, which the
// cache cannot call: proxy's own tests import the cache.
func httpError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}
