// Package observe wraps the gateway's whole handler to give every
// request an id, a line in the access log, its request metrics and,
// when enabled, a Server-Timing header.
//
// The wrapper is outermost, inside only the listener's own wrappers
// (its I/O timeouts and the HTTP/1 framing check, see package proxy), so
// it sees the status, the bytes and the headers the client gets after
// compression and caching. Its ResponseWriter records them and passes
// Flush and Hijack on (and Unwrap, for http.ResponseController). It
// offers the proxy a proxy.Observation, which the proxy fills in with
// the route that took the request, the upstream target that answered
// and its time, and, through the request's context, what the cache did
// (see package outcome): the access log and the metrics take the
// cache's outcome from the cache itself, never from the Cache-Status
// header, which an upstream that is a cache may have written too.
//
// Request ids: an X-Request-Id from a trusted peer (trusted_proxies) is
// kept, provided it is 1 to 128 visible ASCII characters; otherwise a
// new one (16 random bytes, hex) replaces it. Either way it is sent
// upstream and back to the client. Other tracing headers, W3C
// traceparent and tracestate included, pass through untouched.
//
// A request costs one allocation here (three with Server-Timing), plus
// what the access log's handler does (none for its JSON and text lines); the log's output is buffered
// (see Output) so it costs no system call per line.
package observe

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"gateway/batch"
	"gateway/internal/routes"
	"gateway/metrics"
	"gateway/proxy"
)

// Options configure the wrapper.
type Options struct {
	// Log, when set, receives one record per request.
	Log slog.Handler
	// Metrics, when set, counts every request.
	Metrics *metrics.Gen
	// ServerTiming adds "Server-Timing: gateway;dur=…, upstream;dur=…"
	// (milliseconds until the response headers: all of it, and the
	// upstream's part when there was one).
	ServerTiming bool
	// TrustedProxies are the peers whose X-Request-Id is kept and whose
	// X-Forwarded-For names the client in the log.
	TrustedProxies []netip.Prefix
	// Routes is the generation's route table (proxy.Handler.RouteTable),
	// which names the route an Observation reports; Metrics must count
	// by the same table.
	Routes *routes.Table
	// BatchPath is the batching endpoint's path, when it is enabled;
	// Routes must then have its Batch ID.
	BatchPath string
}

// HeaderRequestID carries the request id both ways.
const HeaderRequestID = "X-Request-Id"

// maxIDLen bounds a request id kept from a trusted peer.
const maxIDLen = 128

type handler struct {
	next     http.Handler
	o        Options
	observed bool      // someone reads the Observation
	batch    routes.ID // the batching endpoint's, routes.None when off
}

// Wrap returns next behind request ids, the access log, metrics and
// Server-Timing as o asks.
func Wrap(next http.Handler, o Options) http.Handler {
	h := &handler{next: next, o: o, observed: o.Log != nil || o.Metrics != nil || o.ServerTiming}
	if o.BatchPath != "" {
		h.batch, _ = o.Routes.Batch()
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := &state{w: w, h: h, start: time.Since(epoch)}
	s.idv[0] = h.requestID(r, s)
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Header[HeaderRequestID] = s.idv[:]
	// The proxy cleans dot segments in place; the log shows what the
	// client asked for.
	reqPath := r.URL.Path
	defer func() {
		if p := recover(); p != nil {
			// An aborted response (http.ErrAbortHandler: the client or
			// the upstream went away) is logged before net/http sees the
			// panic again.
			s.finish(r, reqPath, true)
			panic(p)
		}
	}()
	h.next.ServeHTTP(s, r)
	if !s.wroteHeader && !s.hijacked {
		// What net/http would send after we return, with our headers.
		s.WriteHeader(http.StatusOK)
	}
	s.finish(r, reqPath, false)
}

// requestID keeps a trusted peer's id or makes one in s.
func (h *handler) requestID(r *http.Request, s *state) string {
	if v := r.Header[HeaderRequestID]; len(v) == 1 && validID(v[0]) && proxy.TrustsPeer(h.o.TrustedProxies, r.RemoteAddr) {
		return v[0]
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	hex.Encode(s.id[:], b[:])
	// s is never reused and s.id never written again, so the string
	// may share its bytes.
	return unsafe.String(&s.id[0], len(s.id))
}

func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// epoch is the origin of the requests' start times (state.start):
// time.Since it reads the monotonic clock alone, about a third of what
// time.Now costs, which reads the wall clock too. Only the access log
// needs wall time, the end's, which finish reads once for both.
var epoch = time.Now()

// state is one request's ResponseWriter and everything recorded about
// it, in one allocation.
type state struct {
	w           http.ResponseWriter
	h           *handler
	start       time.Duration // time.Since(epoch) as the request came in
	obs         proxy.Observation
	status      int
	bytes       int64
	wroteHeader bool
	hijacked    bool
	id          [32]byte
	idv         [1]string // the X-Request-Id header value, request and response
}

var _ proxy.Observed = (*state)(nil)

// jobID is the id of the job the request created or runs, as the queue
// reported it to the proxy's observation; "" when none.
func (s *state) jobID() string { return s.obs.Job() }

// Observation is filled in by the proxy; nil when nobody reads it.
func (s *state) Observation() *proxy.Observation {
	if !s.h.observed {
		return nil
	}
	return &s.obs
}

func (s *state) Header() http.Header { return s.w.Header() }

func (s *state) WriteHeader(code int) {
	if s.wroteHeader || (code >= 100 && code < 200 && code != http.StatusSwitchingProtocols) {
		// Informational responses pass; the final one is recorded.
		s.w.WriteHeader(code)
		return
	}
	s.wroteHeader = true
	s.status = code
	hdr := s.w.Header()
	// Set now rather than before the handler runs: a stored response
	// (or an upstream echoing the id) must not carry another id.
	hdr[HeaderRequestID] = s.idv[:]
	if s.h.o.ServerTiming {
		hdr["Server-Timing"] = append(hdr["Server-Timing"], s.serverTiming())
	}
	s.w.WriteHeader(code)
}

func (s *state) serverTiming() string {
	var buf [64]byte
	b := append(buf[:0], "gateway;dur="...)
	b = appendMillis(b, time.Since(epoch)-s.start)
	if _, _, d, ok := s.obs.Upstream(); ok {
		b = append(b, ", upstream;dur="...)
		b = appendMillis(b, d)
	}
	return string(b)
}

func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64)
}

func (s *state) Write(p []byte) (int, error) {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	n, err := s.w.Write(p)
	s.bytes += int64(n)
	return n, err
}

// FlushError is Flush for http.ResponseController.
func (s *state) FlushError() error {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(s.w).Flush()
}

// Flush is for code that asks for an http.Flusher.
func (s *state) Flush() { _ = s.FlushError() }

// Hijack hands over the connection (an upgrade whose upstream switched
// protocols); the request is then logged as 101.
func (s *state) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	// ReverseProxy writes the 101 itself, from this header map, after
	// the hijack.
	s.w.Header()[HeaderRequestID] = s.idv[:]
	c, brw, err := http.NewResponseController(s.w).Hijack()
	if err == nil {
		s.hijacked = true
		if !s.wroteHeader {
			s.wroteHeader = true
			s.status = http.StatusSwitchingProtocols
		}
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the deadlines.
func (s *state) Unwrap() http.ResponseWriter { return s.w }

// finish counts and logs the request.
func (s *state) finish(r *http.Request, reqPath string, aborted bool) {
	// The wall clock is read only for the access log, which stamps
	// each line with the end; the duration comes from the monotonic
	// clock either way.
	h := s.h
	var end time.Time
	var d time.Duration
	if h.o.Log != nil {
		end = time.Now()
		d = end.Sub(epoch) - s.start
	} else {
		d = time.Since(epoch) - s.start
	}
	route := s.obs.Route
	if route == routes.None && h.batch != routes.None && batch.IsPath(reqPath, h.o.BatchPath) {
		route = h.batch
	}
	status := s.status
	if status == 0 {
		// Nothing was sent: the client went away first (nginx's 499).
		status = proxy.StatusClientClosed
	}
	var hdr http.Header
	if !s.hijacked {
		hdr = s.w.Header()
	}
	outcome := s.obs.CacheOutcome()
	if h.o.Metrics != nil {
		h.o.Metrics.Request(route, r.Method, status, outcome, d)
		h.o.Metrics.Protocol(r.ProtoMajor, r.ProtoMinor)
	}
	if h.o.Log == nil {
		return
	}
	jh, isJSON := h.o.Log.(*jsonHandler)
	isJSON = isJSON && len(jh.prefix) == 0 && jh.groups == 0
	th, isText := h.o.Log.(*textHandler)
	if isJSON || isText {
		l := accessLine{
			id: s.idv[0], method: r.Method, host: r.Host, path: reqPath,
			proto: r.Proto, status: status, bytes: s.bytes, duration: d,
			cache: outcome.String(), encoding: headerValue(hdr, "Content-Encoding"), aborted: aborted,
			job: s.jobID(),
		}
		l.upstream, l.target, l.upstreamDur, l.hasUpstream = s.obs.Upstream()
		if isText {
			_ = th.writeAccess(end, &l)
			return
		}
		l.client, l.route = h.client(r), h.o.Routes.Name(route)
		_ = jh.writeAccess(end, &l)
		return
	}
	var buf [16]slog.Attr
	as := append(buf[:0], slog.String("request_id", s.idv[0]))
	as = optString(as, "client", h.client(r))
	as = optString(as, "method", r.Method)
	as = optString(as, "host", r.Host)
	as = optString(as, "path", reqPath)
	as = optString(as, "proto", r.Proto)
	as = optString(as, "route", h.o.Routes.Name(route))
	as = append(as,
		slog.Int("status", status),
		slog.Int64("bytes", s.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	)
	as = optString(as, "cache", outcome.String())
	as = optString(as, "encoding", headerValue(hdr, "Content-Encoding"))
	as = optString(as, "job", s.jobID())
	if up, target, ud, ok := s.obs.Upstream(); ok {
		as = optString(as, "upstream", up)
		as = optString(as, "target", target)
		as = append(as, slog.Float64("upstream_ms", float64(ud.Microseconds())/1000))
	}
	if aborted {
		as = append(as, slog.Bool("aborted", true))
	}
	rec := slog.NewRecord(end, slog.LevelInfo, "request", 0)
	rec.AddAttrs(as...)
	_ = h.o.Log.Handle(context.Background(), rec)
}

// optString appends a string attribute unless v is empty: the access
// log has no empty members.
func optString(as []slog.Attr, key, v string) []slog.Attr {
	if v == "" {
		return as
	}
	return append(as, slog.String(key, v))
}

// client is the client's address as the rate limiter sees it: the peer,
// or, behind trusted proxies, the nearest X-Forwarded-For hop that is not
// one (proxy.ClientIP).
func (h *handler) client(r *http.Request) string {
	// With no proxy trusted the client is the peer, and an IPv4 peer's
	// address is logged as net/http wrote it: no parse, and no new
	// string per request.
	if ra := r.RemoteAddr; len(h.o.TrustedProxies) == 0 {
		if i := strings.LastIndexByte(ra, ':'); i > 0 && strings.IndexByte(ra[:i], ':') < 0 {
			return ra[:i]
		}
	}
	if a := proxy.ClientIP(h.o.TrustedProxies, r); a.IsValid() {
		return a.String()
	}
	return r.RemoteAddr
}

// headerValue is h.Get(key) for a key already in canonical form.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
