package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gateway/internal/clientwatch"
	"gateway/internal/httpmethod"
	"gateway/internal/jobid"
	"gateway/internal/outcome"
	"gateway/internal/routes"
	"gateway/limit"
)

// Middleware wraps a route's handler; the cache and compression stages
// plug in this way without the proxy knowing them.
type Middleware func(http.Handler) http.Handler

// RouteOptions describe one route.
type RouteOptions struct {
	Name string
	// Hosts are exact ("api.example.com") or wildcard ("*.example.com")
	// host names, lower case; none means every host.
	Hosts []string
	// Path is the prefix the route takes; "" means "/".
	Path string
	// Methods, upper case, limit the route; none means every method.
	Methods  []string
	Upstream *Upstream
	// StripPrefix removes Path before the request goes upstream.
	StripPrefix bool
	// Timeout bounds the upstream exchange, body included (0: none).
	// With Middleware it is armed inside them, for the requests that go
	// on toward the upstream: a cache hit needs no timer.
	Timeout time.Duration
	// MaxBodySize limits the request body in bytes (0: no limit).
	MaxBodySize int64
	// Middleware wraps the route's proxy, outermost first.
	Middleware []Middleware
	// OnUnsafe, when set, wraps the route's handler (its middleware
	// included) for requests with an unsafe method only (RFC 9110
	// section 9.2.1): the cache's invalidation on a route that does not
	// cache. Unlike Middleware it leaves safe requests, and where the
	// route's deadline is armed, as they are.
	OnUnsafe Middleware
	// WebSocket bounds the route's WebSocket (HTTP/1.1 Upgrade)
	// tunnels; the zero value sets no cap and no idle timeout.
	WebSocket WebSocketOptions
	// Batchable lets batch items (package batch) call the route; see
	// RouteOf.
	Batchable bool
	// AllowEarlyData serves the route's safe requests that arrive in
	// TLS early data (HTTP/3 0-RTT); without it they are answered 425
	// (see early.go).
	AllowEarlyData bool
	// Handler, when set, serves the route instead of a proxy to an
	// upstream (a composite route); Middleware wraps it all the same.
	// Upstream and StripPrefix must then be unset.
	Handler http.Handler
	// RateLimit, when set, limits requests per client (429 over it);
	// Concurrency bounds those in flight to the upstream (503 beyond
	// its queue). See limits.go.
	RateLimit   *RateLimitOptions
	Concurrency ConcurrencyOptions
}

// Options configure a Handler.
type Options struct {
	Routes []RouteOptions
	// TrustedProxies are the peers whose X-Forwarded-For, -Proto and
	// -Host headers are kept and extended; from any other peer they are
	// replaced, so a client cannot forge its address or the host and
	// scheme that upstreams (and cache keys) see.
	TrustedProxies []netip.Prefix
	// Via is the pseudonym in the Via header; "" means "gateway".
	Via    string
	Logger *slog.Logger
}

// Handler routes requests and proxies them upstream.
type Handler struct {
	router  *router
	routes  []*route // in option order, for WebSocketStats
	trusted []netip.Prefix
	via     viaHops
	log     *slog.Logger
}

var _ http.Handler = (*Handler)(nil)

type route struct {
	// inFlight counts the route's requests in progress (InFlight).
	inFlight atomic.Int64
	name     string
	hosts    []string
	path     string
	methods  []string
	strip    bool
	timeout  time.Duration
	// innerTimeout: the deadline is armed inside the route's middleware
	// (see newRoute), not by ServeHTTP.
	innerTimeout bool
	maxBody      int64
	upstream     *Upstream
	ws           *wsRoute
	rate         *rateLimiter       // nil: no rate limit
	conc         *limit.Concurrency // nil: no concurrency limit
	batchable    bool
	allowEarly   bool
	handler      http.Handler // the proxy, wrapped in the route's middleware
	unsafe       http.Handler // handler wrapped in OnUnsafe, or nil
	// direct: handler is the ReverseProxy (behind the route's
	// concurrency limit at most), which answers through the writer
	// ServeHTTP passes it.
	direct bool
	id     routes.ID // routes.Of its index in Options.Routes (Observation.Route)
}

// New validates the options and builds the handler.
func New(o Options) (*Handler, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Via == "" {
		o.Via = "gateway"
	}
	h := &Handler{trusted: o.TrustedProxies, via: newViaHops(o.Via), log: o.Logger}
	var errs []error
	var rs []*route
	for i, ro := range o.Routes {
		r, err := h.newRoute(ro)
		if err != nil {
			errs = append(errs, fmt.Errorf("proxy: route %d (%s): %w", i, ro.Name, err))
			continue
		}
		rs = append(rs, r)
	}
	if len(o.Routes) == 0 {
		errs = append(errs, errors.New("proxy: no routes"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, r := range rs {
		r.id = routes.Of(i)
	}
	h.router = newRouter(rs)
	h.routes = rs
	return h, nil
}

// RouteTable is the table of the handler's routes, with the batching
// endpoint's ID when batch is set, for the observers that name and count
// what Observation.Route reports (see package routes). Build it once per
// handler and give the same table to each.
func (h *Handler) RouteTable(batch bool) *routes.Table {
	names := make([]string, len(h.routes))
	for i, r := range h.routes {
		names[i] = r.name
	}
	return routes.New(names, batch)
}

func (h *Handler) newRoute(o RouteOptions) (*route, error) {
	switch {
	case o.Handler != nil && (o.Upstream != nil || o.StripPrefix):
		return nil, errors.New("a route with a handler has no upstream and strips no prefix")
	case o.Handler == nil && o.Upstream == nil:
		return nil, errors.New("no upstream")
	}
	if o.Path == "" {
		o.Path = "/"
	}
	if o.Path[0] != '/' {
		return nil, fmt.Errorf("path %q must start with /", o.Path)
	}
	if o.Timeout < 0 || o.MaxBodySize < 0 {
		return nil, errors.New("timeout and max body size must not be negative")
	}
	ws, err := newWSRoute(o.WebSocket)
	if err != nil {
		return nil, err
	}
	r := &route{
		ws:         ws,
		name:       o.Name,
		path:       o.Path,
		methods:    o.Methods,
		strip:      o.StripPrefix && o.Path != "/",
		timeout:    o.Timeout,
		maxBody:    o.MaxBodySize,
		upstream:   o.Upstream,
		batchable:  o.Batchable,
		allowEarly: o.AllowEarlyData,
	}
	for _, host := range o.Hosts {
		host = strings.ToLower(host)
		if host == "" || (strings.Contains(host, "*") && (!strings.HasPrefix(host, "*.") || strings.Count(host, "*") > 1)) {
			return nil, fmt.Errorf("host %q: want a name or *.name", host)
		}
		r.hosts = append(r.hosts, host)
	}
	if err := r.setLimits(o); err != nil {
		return nil, err
	}
	next := o.Handler
	if next == nil {
		rp := &httputil.ReverseProxy{
			Rewrite:      func(pr *httputil.ProxyRequest) { h.rewrite(pr.In, pr.Out, r, nil) },
			Transport:    o.Upstream,
			ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) { h.upstreamError(w, req, r, err) },
			ErrorLog:     slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
			// FlushInterval stays 0: ReverseProxy already flushes every
			// write of a body without a length and of server-sent
			// events, and a negative value would add a flush (and a
			// lock) to every response of known length too.
			BufferPool: bufferPool{},
			ModifyResponse: func(resp *http.Response) error {
				if resp.StatusCode == http.StatusSwitchingProtocols && !upgradeAgreed(resp) {
					// ReverseProxy refuses it too, but without closing
					// the connection, which then stayed open, outside the
					// pool and every limit, until a garbage collection:
					// returning an error makes it close the body.
					return errUnaskedSwitch
				}
				resp.Header["Via"] = h.via.appendVia(resp.Header["Via"], resp.ProtoMajor, resp.ProtoMinor)
				if resp.Request != nil {
					if o, _ := outcome.FromContext(resp.Request.Context()).(*Observation); o != nil && o.w != nil {
						moveHeader(o.w.Header(), resp.Header)
					}
				}
				return nil
			},
		}
		next = &forwarder{h: h, ro: r, up: o.Upstream, rp: rp}
	}
	// Innermost, so that only requests that reach the upstream count.
	next = r.limitConcurrency(next)
	if len(o.Middleware) > 0 && r.timeout > 0 {
		// A stage in front (the cache) answers many requests itself, and
		// a deadline does nothing for those but cost a timer and a
		// context each: it is armed for the requests that go on toward
		// the upstream, the exchange it bounds. The innermost middleware
		// (the cache) may arm it earlier through the same handler; see
		// deadline.
		next = &deadline{next: next, d: r.timeout}
		r.innerTimeout = true
	}
	for i := len(o.Middleware) - 1; i >= 0; i-- {
		next = o.Middleware[i](next)
	}
	r.handler = next
	// Without middleware the proxy answers through the writer the
	// route was given, which ServeHTTP can then hand to ModifyResponse.
	r.direct = len(o.Middleware) == 0 && o.Handler == nil
	if o.OnUnsafe != nil {
		r.unsafe = o.OnUnsafe(next)
	}
	return r, nil
}

// ServeHTTP routes, applies the route's limits and proxies.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if needsClean(r.URL) {
		r.URL.Path = cleanPath(r.URL.Path)
		r.URL.RawPath = ""
	}
	ro, allow := h.router.match(r)
	if ro == nil {
		if allow := allowList(allow); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			Error(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		Error(w, http.StatusNotFound, "no route")
		return
	}
	ro.inFlight.Add(1)
	defer ro.inFlight.Add(-1)
	// The route goes into the observation first, so that a refused
	// request is logged with it too; the refusals come before the
	// context below, which a request answered at once does not need.
	o := h.observe(w, ro)
	if isEarly(r) && !(ro.allowEarly && httpmethod.Safe(r.Method)) {
		tooEarly(w)
		return
	}
	// A queued job's attempt is the gateway's own request: its client
	// was counted when the job was accepted, and every attempt would
	// otherwise share one key (it has no client address).
	if ro.rate != nil && !jobid.IsAttempt(r.Context()) && !ro.rate.allow(w, r, h.trusted) {
		return
	}
	if ro.maxBody > 0 && r.ContentLength > ro.maxBody {
		Error(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	// The observation and the route's deadline go into one new context
	// and one copy of the request: a copy per value would cost every
	// request an allocation of a whole Request. (A route with middleware
	// arms its deadline inside them instead, see newRoute.) An upgrade
	// gets no deadline: the tunnel outlives the exchange.
	upgrade := isUpgradeRequest(r)
	in := r
	if !upgrade {
		r = withoutConnectionFields(r)
	}
	if timed := ro.timeout > 0 && !ro.innerTimeout && !upgrade; o != nil || timed {
		ctx := r.Context()
		if o != nil {
			ctx = o.context(ctx)
			if ro.innerTimeout && !upgrade {
				// For the deadline the middleware arms (ArmDeadline).
				o.watch = clientwatch.For(r.Context())
			}
		}
		if timed {
			dc, cancel := withDeadline(ctx, time.Now().Add(ro.timeout))
			dc.watch = clientwatch.For(r.Context())
			defer cancel()
			ctx = dc
		}
		r = r.WithContext(ctx)
	}
	// Not a body of length 0, which an HTTP/2 request that ended with
	// its headers has (not http.NoBody): nothing can be read from it,
	// and no transport sends it (ReverseProxy drops it).
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		body := r.Body
		if ro.maxBody > 0 {
			body = http.MaxBytesReader(w, body, ro.maxBody)
		}
		if r == in {
			// The body is replaced on a copy, never on the Request the
			// server passed in (see withIOTimeouts).
			r = r.WithContext(r.Context())
		}
		r.Body = clientBody{body}
	}
	if upgrade {
		h.serveUpgrade(w, r, ro)
		return
	}
	// A present but empty Content-Type keeps net/http from sniffing one
	// for a response that has none: the gateway passes the upstream's
	// message on as it is, and a guessed text/html could turn untyped
	// user content into a page. ReverseProxy adds the upstream's value
	// to this entry, and the gateway's own answers set theirs.
	w.Header()["Content-Type"] = nil
	if ro.unsafe != nil && !httpmethod.Safe(r.Method) {
		ro.unsafe.ServeHTTP(w, r)
		return
	}
	if o != nil && ro.direct {
		o.w = w
	}
	ro.handler.ServeHTTP(w, r)
}

// moveHeader hands the upstream response's header fields src over to
// the client's header dst, leaving in src those it does not take;
// ReverseProxy then copies what is left, as it copies every field
// otherwise. The result is the header ReverseProxy's copy makes (it
// adds each value of a canonical key to dst, in order), without its
// allocation of a new value list per field, and without its parse of a
// Content-Type that it only reads to flush server-sent events at once.
// A field stays in src when the copy could differ: when dst has values
// for it already (the copy appends), when src has none (the copy
// creates no entry), when its name is not in canonical form (the copy
// canonicalises it), and a Content-Type that may be text/event-stream,
// which ReverseProxy must still see in src to flush every write.
//
// dst shares src's value lists afterwards; ReverseProxy (or the
// forwarder) reads src no more, and nothing edits the client's header
// values in place before the server writes them out: the middleware
// (cache, compression, observers) replaces or appends to a field's
// list, and an append to a list the response reader made, or to a
// shared Via list, copies it, as those lists are full.
func moveHeader(dst, src http.Header) {
	for k, vv := range src {
		if len(vv) == 0 || len(dst[k]) > 0 || textproto.CanonicalMIMEHeaderKey(k) != k {
			continue
		}
		if k == "Content-Type" && mayBeEventStream(vv[0]) {
			continue
		}
		dst[k] = vv
		delete(src, k)
	}
}

// mayBeEventStream reports whether ReverseProxy could take the media
// type ct for text/event-stream: any value that mentions event-stream
// in any case, a superset of those it parses as that type.
func mayBeEventStream(ct string) bool {
	const s = "event-stream"
	for i := 0; i+len(s) <= len(ct); i++ {
		if strings.EqualFold(ct[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

// errUnaskedSwitch is an upstream's 101 to a request that did not ask
// for that protocol.
var errUnaskedSwitch = errors.New("upstream switched to a protocol the request did not ask for")

// upgradeAgreed reports whether a 101 switches to the protocol its
// request asked for, as ReverseProxy requires before it tunnels.
func upgradeAgreed(resp *http.Response) bool {
	if resp.Request == nil || !isUpgrade(resp.Request.Header) {
		return false
	}
	got := resp.Header.Get("Upgrade")
	return got != "" && strings.EqualFold(got, resp.Request.Header.Get("Upgrade"))
}

// withoutConnectionFields returns r without the header fields its
// Connection header names (RFC 9110 section 7.6.1). They are for the
// gateway alone, and ReverseProxy drops them from what it forwards; the
// middleware in front of it (the cache) must see the request as the
// upstream will, or a client could have a response stored under a key or
// a Vary variant that the upstream never saw, and served to others. TE
// stays: ReverseProxy reads it to tell the upstream trailers are welcome.
func withoutConnectionFields(r *http.Request) *http.Request {
	conn := r.Header["Connection"]
	if len(conn) == 0 {
		return r
	}
	var h http.Header
	for _, v := range conn {
		for f := range strings.SplitSeq(v, ",") {
			f = textproto.TrimString(f)
			// The usual tokens, checked first without canonicalising
			// (which allocates): "close" names no field, and Keep-Alive
			// is nothing the cache keys on.
			if f == "" || strings.EqualFold(f, "keep-alive") || strings.EqualFold(f, "close") {
				continue
			}
			f = textproto.CanonicalMIMEHeaderKey(f)
			if f == "Te" || f == "Connection" {
				continue
			}
			if _, ok := r.Header[f]; !ok {
				continue
			}
			if h == nil {
				h = r.Header.Clone()
			}
			delete(h, f)
		}
	}
	if h == nil {
		return r
	}
	r = r.WithContext(r.Context())
	r.Header = h
	return r
}

// deadline is the route's deadline armed inside its middleware, in
// front of the proxy: it bounds each request through next by d, except
// an upgrade, whose tunnel outlives the exchange (as in ServeHTTP).
//
// It is also the one way the middleware arms that deadline earlier: the
// cache, which it wraps, calls ArmDeadline as soon as a request cannot
// be answered from what is stored (cache.DeadlineArmer), so that its wait
// on another request's fetch counts too. ServeHTTP then finds the
// deadline armed and arms no second one.
type deadline struct {
	next http.Handler
	d    time.Duration
}

func (dl *deadline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, cancel := dl.ArmDeadline(r)
	defer cancel()
	dl.next.ServeHTTP(w, r)
}

// ArmDeadline returns r bounded by the route's deadline and the function
// that releases its timer. r is returned as it is, with a no-op release,
// for an upgrade and when its context already ends no later: the
// deadline is armed (by an earlier ArmDeadline), or the client's own
// ends first.
func (dl *deadline) ArmDeadline(r *http.Request) (*http.Request, context.CancelFunc) {
	if isUpgradeRequest(r) {
		return r, noCancel
	}
	if end, ok := r.Context().Deadline(); ok && time.Until(end) <= dl.d {
		return r, noCancel
	}
	if testHookArmDeadline != nil {
		testHookArmDeadline()
	}
	dc, cancel := withDeadline(r.Context(), time.Now().Add(dl.d))
	if oc, ok := r.Context().(*obsContext); ok {
		// r's context is the client's own, as the proxy handed it to
		// the middleware: its connection may watch for the client.
		dc.watch = oc.o.watch
	}
	return r.WithContext(dc), cancel
}

func noCancel() {}

// testHookArmDeadline, when set, is called for each route deadline
// ArmDeadline arms.
var testHookArmDeadline func()

// rewrite shapes out, the outbound request made from in. ReverseProxy
// (or the forwarder) has already removed hop-by-hop and X-Forwarded-*
// headers from it. xf, when not nil, is the room setXForwarded needs.
func (h *Handler) rewrite(in, out *http.Request, ro *route, xf *[2]string) {
	// The target is chosen per attempt by the upstream; the Host header
	// follows it, as with nginx's default proxy_set_header Host.
	out.URL.Scheme = "http"
	out.URL.Host = ""
	out.Host = ""
	if ro.strip {
		out.URL.Path = stripPrefix(out.URL.Path, ro.path)
		if out.URL.RawPath != "" {
			out.URL.RawPath = stripPrefix(out.URL.RawPath, ro.path)
		}
	}
	if h.isTrusted(in.RemoteAddr) {
		if v := in.Header["X-Forwarded-For"]; len(v) > 0 {
			out.Header["X-Forwarded-For"] = v
		}
		setXForwarded(in, out, xf)
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			out.Header.Set("X-Forwarded-Host", v)
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			out.Header.Set("X-Forwarded-Proto", v)
		}
	} else {
		setXForwarded(in, out, xf)
	}
	out.Header["Via"] = h.via.appendVia(in.Header["Via"], in.ProtoMajor, in.ProtoMinor)
	if _, ok := out.Header["User-Agent"]; !ok {
		// What ReverseProxy sets after this, so that the transport
		// sends no User-Agent of its own: an empty one, here shared.
		out.Header["User-Agent"] = noUserAgent
	}
	if in.Trailer != nil {
		// The server fills the announced trailer fields in once the body
		// has been read; the copy Clone made holds only their names, so
		// the transport, which writes them after the body, would send
		// them empty. Sharing the map forwards the values.
		out.Trailer = in.Trailer
	}
}

// Shared header values: made by literals, so full (an append copies
// them), and safe to share because nothing edits the values of an
// outbound request's header in place; the transports only write them
// out (the gateway's HTTP/1.1 transport, net/http's, which must not
// modify the request).
var (
	noUserAgent = []string{""}
	protoHTTP   = []string{"http"}
	protoHTTPS  = []string{"https"}
)

// setXForwarded is httputil.ProxyRequest's SetXForwarded on out, made
// from in: the same X-Forwarded-For (the client's address after any it
// came with), X-Forwarded-Host and X-Forwarded-Proto, in one allocation
// instead of three, or none when the caller has room for them in xf:
// one array holds the first two values, and the scheme's value is
// shared.
func setXForwarded(in, out *http.Request, xf *[2]string) {
	h := out.Header
	if xf == nil {
		xf = new([2]string)
	}
	vals := xf[:] // X-Forwarded-For's, X-Forwarded-Host's
	if clientIP, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			clientIP = strings.Join(prior, ", ") + ", " + clientIP
		}
		vals[0] = clientIP
		h["X-Forwarded-For"] = vals[0:1:1]
	} else {
		delete(h, "X-Forwarded-For")
	}
	vals[1] = in.Host
	h["X-Forwarded-Host"] = vals[1:2:2]
	if in.TLS == nil {
		h["X-Forwarded-Proto"] = protoHTTP
	} else {
		h["X-Forwarded-Proto"] = protoHTTPS
	}
}

func (h *Handler) isTrusted(remote string) bool { return TrustsPeer(h.trusted, remote) }

// TrustsPeer reports whether the peer at remote (a request's RemoteAddr)
// is within trusted, the test the proxy applies before keeping a
// client's X-Forwarded-* headers. Stages that depend on those headers
// (the cache key) use it to agree with the proxy.
func TrustsPeer(trusted []netip.Prefix, remote string) bool {
	if len(trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	return err == nil && contains(trusted, ap.Addr().Unmap())
}

// viaHops holds this gateway's Via entries, built once, for the
// protocol versions seen on nearly every request; each also as the
// one-element list that a message without a Via of its own gets.
type viaHops struct {
	h10, h11, h2, pseudonym string
	only10, only11, only2   []string
}

func newViaHops(pseudonym string) viaHops {
	v := viaHops{h10: "1.0 " + pseudonym, h11: "1.1 " + pseudonym, h2: "2 " + pseudonym, pseudonym: pseudonym}
	v.only10, v.only11, v.only2 = []string{v.h10}, []string{v.h11}, []string{v.h2}
	return v
}

// appendVia adds this hop to a Via list (RFC 9110 section 7.6.3).
//
// A message that came without Via gets one of the shared lists, which
// saves every request two allocations. They are safe to share because
// nothing writes a header's values in place: the outbound request's
// header is only written out, and ReverseProxy copies the response's
// values into the client's header one by one (Header.Add), so the
// shared list never reaches a map that a later stage appends to or
// edits.
func (v viaHops) appendVia(prev []string, major, minor int) []string {
	var hop string
	var only []string
	switch {
	case major == 1 && minor == 1:
		hop, only = v.h11, v.only11
	case major == 2:
		hop, only = v.h2, v.only2
	case major == 1 && minor == 0:
		hop, only = v.h10, v.only10
	default:
		hop = strconv.Itoa(major) + "." + strconv.Itoa(minor) + " " + v.pseudonym
	}
	if len(prev) == 0 {
		if only != nil {
			// Made by a literal, so full: an append copies it.
			return only
		}
		return []string{hop}
	}
	return []string{strings.Join(prev, ", ") + ", " + hop}
}
