package cache_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gateway/cache"
	"gateway/compress"
	"gateway/proxy"
)

// The integration harness: a counting origin on a real socket, the
// gateway (proxy.New with one route whose middleware is the cache route)
// on another, an injected clock that only moves when a test advances it,
// and a check that everything is gone once the test's cleanups ran.
//
// Nothing here sleeps to let time pass: cache time is the fake clock, and
// tests wait for events (an origin request arriving, a request entering
// the gateway) on channels, with a generous deadline that only matters
// when the code under test is broken.

// waitTimeout bounds every wait for an event. It is long because a loaded
// two-core machine running the race detector can be very slow; a correct
// run never comes close to it.
const waitTimeout = 20 * time.Second

// epoch is where every fake clock starts.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// httpDate formats an HTTP-date at offset d from epoch.
func httpDate(d time.Duration) string { return epoch.Add(d).UTC().Format(http.TimeFormat) }

// fakeClock is Options.Now: it only moves when told to.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(epoch.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// notifier wakes waiters whenever something they may be waiting for
// changed: wait returns a channel that notify closes.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// await blocks until cond holds, re-checking it whenever n is notified.
func await(t testing.TB, what string, n *notifier, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		ch := n.wait() // before cond: a change after cond closes ch
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// eventually polls cond, for state that has no event of its own (a store
// that completes after the origin answered). It yields rather than
// sleeps, backing off to short waits only if that takes long.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if i < 1000 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}

// checkGoroutines fails t if, after t's later-registered cleanups closed
// everything, the goroutine count does not return to what it was when
// checkGoroutines was called. Call it before creating anything.
func checkGoroutines(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(waitTimeout)
		for i := 0; ; i++ {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines left after Close, %d before the test:\n%s", n, base, buf)
				return
			}
			if i < 1000 {
				runtime.Gosched()
			} else {
				time.Sleep(time.Millisecond)
			}
		}
	})
}

// gate blocks origin handlers until the test releases it. Its cleanup
// releases it, so a failing test never leaves a handler (and the server's
// Close) hanging.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t testing.TB) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate is released or r's client leaves.
func (g *gate) wait(r *http.Request) {
	select {
	case <-g.ch:
	case <-r.Context().Done():
	}
}

// seen is one request as the origin received it.
type seen struct {
	method string
	header http.Header
}

// origin is the upstream: it counts requests per path, records what it
// received and answers with the handler the test set. It sets Date from
// the fake clock before the handler runs, so that ages are what the test
// expects.
type origin struct {
	*httptest.Server
	clk *fakeClock

	mu      sync.Mutex
	handler http.HandlerFunc
	counts  map[string]int
	reqs    map[string][]seen
	total   int
	changed notifier
}

type countKey struct{}

func newOrigin(t testing.TB, clk *fakeClock) *origin {
	o := &origin{clk: clk, counts: make(map[string]int), reqs: make(map[string][]seen)}
	o.Server = httptest.NewUnstartedServer(o)
	o.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	o.Start()
	t.Cleanup(o.Close)
	return o
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.counts[r.URL.Path]++
	n := o.counts[r.URL.Path]
	o.total++
	o.reqs[r.URL.Path] = append(o.reqs[r.URL.Path], seen{r.Method, r.Header.Clone()})
	h := o.handler
	o.mu.Unlock()
	o.changed.notify()
	w.Header().Set("Date", o.clk.Now().Format(http.TimeFormat))
	if h == nil {
		http.Error(w, "no handler", http.StatusNotFound)
		return
	}
	h(w, r.WithContext(context.WithValue(r.Context(), countKey{}, n)))
}

// handle sets the handler for the requests that arrive from now on.
func (o *origin) handle(h http.HandlerFunc) {
	o.mu.Lock()
	o.handler = h
	o.mu.Unlock()
}

// count is the number of requests received for path.
func (o *origin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[path]
}

// last is the last request received for path.
func (o *origin) last(t testing.TB, path string) seen {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	rs := o.reqs[path]
	if len(rs) == 0 {
		t.Fatalf("origin received no request for %s", path)
	}
	return rs[len(rs)-1]
}

// waitCount waits until path has received at least n requests.
func (o *origin) waitCount(t testing.TB, path string, n int) {
	t.Helper()
	await(t, "origin request "+strconv.Itoa(n)+" for "+path, &o.changed, func() bool { return o.count(path) >= n })
}

// resp is a static origin response.
type resp struct {
	status int      // 0 means 200
	hdr    []string // name, value pairs; see value for the templates
	body   string   // "{n}" is the path's request number, "{h:Name}" a request header
	gate   *gate    // if set, the handler waits for it before answering
}

// static answers every request with rs, honouring If-None-Match and
// If-Modified-Since for a 200 as real origins do.
func (o *origin) static(rs resp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if rs.gate != nil {
			rs.gate.wait(r)
		}
		o.reply(w, r, rs)
	}
}

// reply writes rs. Header values are templates: "@+60s" ("@-10h", "@0")
// is the HTTP-date that far from the fake clock's now, "{host}" the
// X-Forwarded-Host the request came with. The first line of a name
// replaces the header (Date), later lines add to it.
func (o *origin) reply(w http.ResponseWriter, r *http.Request, rs resp) {
	h := w.Header()
	set := map[string]bool{}
	for i := 0; i+1 < len(rs.hdr); i += 2 {
		name, v := http.CanonicalHeaderKey(rs.hdr[i]), o.value(r, rs.hdr[i+1])
		if set[name] {
			h.Add(name, v)
		} else {
			h.Set(name, v)
			set[name] = true
		}
	}
	status := rs.status
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusOK && notModified(r, h) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := rs.body
	if n, ok := r.Context().Value(countKey{}).(int); ok {
		body = strings.ReplaceAll(body, "{n}", strconv.Itoa(n))
	}
	for strings.Contains(body, "{h:") {
		i := strings.Index(body, "{h:")
		j := strings.Index(body[i:], "}")
		if j < 0 {
			break
		}
		body = body[:i] + r.Header.Get(body[i+3:i+j]) + body[i+j+1:]
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

func (o *origin) value(r *http.Request, v string) string {
	if strings.HasPrefix(v, "@") {
		d, err := time.ParseDuration(v[1:])
		if err == nil {
			return o.clk.Now().Add(d).Format(http.TimeFormat)
		}
	}
	return strings.ReplaceAll(v, "{host}", r.Header.Get("X-Forwarded-Host"))
}

// notModified evaluates If-None-Match, else If-Modified-Since, against
// the response header h (RFC 9110 section 13.2.2).
func notModified(r *http.Request, h http.Header) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		et := strings.TrimPrefix(h.Get("Etag"), "W/")
		if et == "" {
			return false
		}
		for _, c := range strings.Split(inm, ",") {
			c = strings.TrimPrefix(strings.TrimSpace(c), "W/")
			if c == "*" || c == et {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" && r.Method == http.MethodGet {
		lm, err1 := http.ParseTime(h.Get("Last-Modified"))
		t, err2 := http.ParseTime(ims)
		return err1 == nil && err2 == nil && !lm.After(t)
	}
	return false
}

// gwConfig is what a test may choose about its gateway.
type gwConfig struct {
	cache   cache.Options      // Now and Logger are set by the harness
	route   cache.RouteOptions // Name defaults to "r"
	h2      bool               // serve the gateway over TLS with HTTP/2
	trusted []netip.Prefix     // the proxy's TrustedProxies
	// compress, when set, wraps the cache as the app does, and the cache
	// keeps encoded forms with it.
	compress *compress.Compressor
	// between, when set, runs between the compressor and the cache.
	between proxy.Middleware
	// timeout is the route's deadline, given to the proxy and the cache
	// as the app does.
	timeout time.Duration
}

// gateway is the system under test, with its origin and clock.
type gateway struct {
	clk    *fakeClock
	origin *origin
	cache  *cache.Cache
	route  *cache.Route
	up     *proxy.Upstream
	srv    *httptest.Server
	client *http.Client

	entered  atomic.Int64 // requests that reached the cache middleware
	exited   atomic.Int64 // requests whose cache middleware returned
	enterN   notifier     // notified on both
	hook     atomic.Pointer[func(*http.Request) *http.Request]
	adminSrv *httptest.Server
}

// newGateway builds origin, cache, proxy and servers, and registers their
// shutdown and the goroutine check with t.
func newGateway(t testing.TB, cfg gwConfig) *gateway {
	t.Helper()
	checkGoroutines(t)
	g := &gateway{clk: newClock()}
	g.origin = newOrigin(t, g.clk)

	up, err := proxy.NewUpstream(proxy.UpstreamOptions{
		Name:    "origin",
		Targets: []*url.URL{mustURL(t, g.origin.URL)},
		Logger:  quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	g.up = up
	t.Cleanup(up.Close)

	co := cfg.cache
	if co.MaxSize == 0 {
		co.MaxSize = 64 << 20
	}
	co.Now = g.clk.Now
	co.Logger = quiet()
	c, err := cache.New(co)
	if err != nil {
		t.Fatal(err)
	}
	g.cache = c
	t.Cleanup(c.Close)

	ro := cfg.route
	if ro.Name == "" {
		ro.Name = "r"
	}
	mws := []proxy.Middleware{g.enter}
	if cfg.compress != nil {
		ro.Compress = testEncoder{cfg.compress}
		mws = append(mws, cfg.compress.Wrap)
	}
	if cfg.between != nil {
		mws = append(mws, cfg.between)
	}
	rt, err := c.Route(ro)
	if err != nil {
		t.Fatal(err)
	}
	g.route = rt

	ph, err := proxy.New(proxy.Options{
		Routes: []proxy.RouteOptions{{
			Name:       "r",
			Upstream:   up,
			Timeout:    cfg.timeout,
			Middleware: append(mws, rt.Wrap),
		}},
		TrustedProxies: cfg.trusted,
		Logger:         quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	g.srv = httptest.NewUnstartedServer(ph)
	g.srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	if cfg.h2 {
		g.srv.EnableHTTP2 = true
		g.srv.StartTLS()
	} else {
		g.srv.Start()
	}
	t.Cleanup(g.srv.Close)
	g.client = g.srv.Client()
	tr := g.client.Transport.(*http.Transport)
	// The client must not add Accept-Encoding (Vary tests set their own)
	// nor decode bodies behind the test's back.
	tr.DisableCompression = true
	tr.MaxIdleConnsPerHost = 256
	g.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return g
}

// testEncoder is the adapter app.go uses between a route's compressor
// and the cache.
type testEncoder struct{ *compress.Compressor }

func (testEncoder) ETag(etag, coding string) string { return compress.ETag(etag, coding) }

// enter is the outermost middleware: it counts the requests that reached
// the cache, so that tests can wait for concurrent requests to be inside.
func (g *gateway) enter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := g.hook.Load(); h != nil {
			r = (*h)(r)
		}
		g.entered.Add(1)
		g.enterN.notify()
		defer func() {
			g.exited.Add(1)
			g.enterN.notify()
		}()
		next.ServeHTTP(w, r)
	})
}

// waitEntered waits until n requests in all have reached the cache.
func (g *gateway) waitEntered(t testing.TB, n int) {
	t.Helper()
	await(t, strconv.Itoa(n)+" requests inside the gateway", &g.enterN, func() bool { return g.entered.Load() >= int64(n) })
}

// waitExited waits until n requests in all have left the cache.
func (g *gateway) waitExited(t testing.TB, n int) {
	t.Helper()
	await(t, strconv.Itoa(n)+" requests done in the gateway", &g.enterN, func() bool { return g.exited.Load() >= int64(n) })
}

// host is the gateway's host:port, as clients address it.
func (g *gateway) host() string { return mustURL(nil, g.srv.URL).Host }

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Fatal(err)
	}
	return u
}

// result is a response as the client received it.
type result struct {
	label  string // set by checkResult, for the messages of step checks
	status int
	header http.Header
	body   string
	proto  int
}

// newRequest builds a request for the gateway. hdr holds name, value
// pairs; "Host" sets the request's host.
func (g *gateway) newRequest(ctx context.Context, t testing.TB, method, path string, hdr ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, g.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return req
}

// send does req and reads the whole response.
func (g *gateway) send(req *http.Request) (result, error) {
	resp, err := g.client.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b), proto: resp.ProtoMajor}, err
}

// do sends a request and fails t on a transport error.
func (g *gateway) do(t testing.TB, method, path string, hdr ...string) result {
	t.Helper()
	r, err := g.send(g.newRequest(context.Background(), t, method, path, hdr...))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (g *gateway) get(t testing.TB, path string, hdr ...string) result {
	t.Helper()
	return g.do(t, http.MethodGet, path, hdr...)
}

// admin serves c.AdminHandler on its own server, created on first use.
func (g *gateway) admin(t testing.TB) *httptest.Server {
	if g.adminSrv == nil {
		g.adminSrv = httptest.NewServer(g.cache.AdminHandler())
		t.Cleanup(g.adminSrv.Close)
	}
	return g.adminSrv
}

// adminDo sends method path?query to the admin handler.
func (g *gateway) adminDo(t testing.TB, method, pathQuery string) (int, string) {
	t.Helper()
	a := g.admin(t)
	req, err := http.NewRequest(method, a.URL+pathQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// purge posts a purge with the query parameters kv (name, value pairs)
// and returns the number purged.
func (g *gateway) purge(t testing.TB, kv ...string) int {
	t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	code, body := g.adminDo(t, http.MethodPost, "/cache/purge?"+q.Encode())
	if code != http.StatusOK {
		t.Fatalf("purge %v: status %d, body %q", q, code, body)
	}
	var out struct {
		Purged int  `json:"purged"`
		Soft   bool `json:"soft"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("purge %v: %v in %q", q, err, body)
	}
	return out.Purged
}

// stats reads GET /cache/stats (with query, e.g. "?route=r").
func (g *gateway) stats(t testing.TB, query string) cache.Stats {
	t.Helper()
	code, body := g.adminDo(t, http.MethodGet, "/cache/stats"+query)
	if code != http.StatusOK {
		t.Fatalf("stats%s: status %d, body %q", query, code, body)
	}
	var s cache.Stats
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("stats%s: %v in %q", query, err, body)
	}
	return s
}

// url is the absolute URL of path on the gateway, as purges name it.
func (g *gateway) url(path string) string { return g.srv.URL + path }

// Cache-Status (RFC 9211) checks.

type csParam struct{ name, value string }

// splitTop splits s on sep outside sf-strings.
func splitTop(s string, sep byte) []string {
	var out []string
	inStr, esc, start := false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseMember parses one Cache-Status list member.
func parseMember(m string) (name string, params []csParam) {
	parts := splitTop(strings.TrimSpace(m), ';')
	name = strings.TrimSpace(parts[0])
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		params = append(params, csParam{k, strings.Trim(v, `"`)})
	}
	return name, params
}

// ourStatus returns the parameters of this cache's ("gateway") member of
// the Cache-Status field, and how many members it has.
func ourStatus(h http.Header) (params []csParam, n int) {
	for _, line := range h.Values("Cache-Status") {
		for _, m := range splitTop(line, ',') {
			if name, ps := parseMember(m); name == "gateway" {
				params = ps
				n++
			}
		}
	}
	return params, n
}

// checkStatus compares our Cache-Status member with want, a list like
// "fwd=uri-miss; fwd-status=200; ttl=60; stored". A parameter in want
// without a value (e.g. "ttl", "fwd") must be present with any value; one
// whose name ends in "?" ("fwd-status?=200") may be absent. A
// parameter received but not wanted is an error, except detail, which is
// implementation-defined and only checked when want names it.
func checkStatus(t testing.TB, label string, h http.Header, want string) {
	t.Helper()
	got, n := ourStatus(h)
	if n != 1 {
		t.Errorf("%s: Cache-Status %q: got %d members from this cache; want 1", label, h.Values("Cache-Status"), n)
		return
	}
	_, wps := parseMember("gateway;" + want)
	have := map[string]string{}
	for _, p := range got {
		have[p.name] = p.value
	}
	wanted := map[string]bool{}
	for _, w := range wps {
		optional := strings.HasSuffix(w.name, "?")
		w.name = strings.TrimSuffix(w.name, "?")
		wanted[w.name] = true
		v, ok := have[w.name]
		switch {
		case !ok && optional:
		case !ok:
			t.Errorf("%s: Cache-Status %q: missing %q; want %q", label, h.Get("Cache-Status"), w.name, want)
		case w.value != "" && v != w.value:
			t.Errorf("%s: Cache-Status %q: %s=%s; want %s=%s", label, h.Get("Cache-Status"), w.name, v, w.name, w.value)
		}
	}
	for _, p := range got {
		if !wanted[p.name] && p.name != "detail" {
			t.Errorf("%s: Cache-Status %q: unexpected %q; want %q", label, h.Get("Cache-Status"), p.name, want)
		}
	}
}

// statusParam returns the value of one parameter of our member.
func statusParam(h http.Header, name string) (string, bool) {
	ps, _ := ourStatus(h)
	for _, p := range ps {
		if p.name == name {
			return p.value, true
		}
	}
	return "", false
}

// Table-driven scenarios: each row is a fresh gateway and a sequence of
// requests, each with what the client and the origin must see.

type step struct {
	label   string
	origin  *resp                          // if set, the origin answers this from now on
	before  func(t *testing.T, g *gateway) // runs after origin, before the request
	advance time.Duration                  // the clock moves this much before the request
	method  string                         // "" is GET
	path    string                         // "" is the row's path, else "/r"
	hdr     []string                       // request header pairs

	count  int    // origin requests for path after the step; -1 is any
	status int    // 0 is 200
	body   string // "*" is any
	cs     string // Cache-Status parameters (see checkStatus); "*" is any
	age    string // Age field; "" means none, "*" any
	check  func(t *testing.T, g *gateway, r result)
}

type row struct {
	name    string
	cfg     gwConfig
	origin  resp
	handler func(o *origin) http.HandlerFunc // instead of origin
	path    string
	steps   []step
}

func runRows(t *testing.T, rows []row) {
	t.Helper()
	for _, rw := range rows {
		t.Run(rw.name, func(t *testing.T) {
			g := newGateway(t, rw.cfg)
			if rw.handler != nil {
				g.origin.handle(rw.handler(g.origin))
			} else {
				g.origin.handle(g.origin.static(rw.origin))
			}
			for i, s := range rw.steps {
				label := "step " + strconv.Itoa(i+1)
				if s.label != "" {
					label += " (" + s.label + ")"
				}
				runStep(t, g, rw.path, label, s)
				if t.Failed() {
					return // later steps build on this one
				}
			}
		})
	}
}

func runStep(t *testing.T, g *gateway, rowPath, label string, s step) {
	t.Helper()
	if s.origin != nil {
		g.origin.handle(g.origin.static(*s.origin))
	}
	if s.before != nil {
		s.before(t, g)
	}
	g.clk.Advance(s.advance)
	method := s.method
	if method == "" {
		method = http.MethodGet
	}
	path := s.path
	if path == "" {
		path = rowPath
	}
	if path == "" {
		path = "/r"
	}
	label = label + ": " + method + " " + path
	r := g.do(t, method, path, s.hdr...)
	checkResult(t, g, label, path, r, s)
}

func checkResult(t *testing.T, g *gateway, label, path string, r result, s step) {
	t.Helper()
	u, _ := url.Parse(path)
	if got := g.origin.count(u.Path); s.count >= 0 && got != s.count {
		t.Errorf("%s: origin requests for %s: got %d; want %d", label, u.Path, got, s.count)
	}
	status := s.status
	if status == 0 {
		status = http.StatusOK
	}
	if r.status != status {
		t.Errorf("%s: status %d; want %d", label, r.status, status)
	}
	if s.body != "*" && r.body != s.body {
		t.Errorf("%s: body %q; want %q", label, r.body, s.body)
	}
	if s.cs != "*" {
		checkStatus(t, label, r.header, s.cs)
	}
	age, hasAge := r.header["Age"]
	switch {
	case s.age == "*":
	case s.age == "" && hasAge:
		t.Errorf("%s: Age %q; want none", label, age)
	case s.age != "" && (!hasAge || len(age) != 1 || age[0] != s.age):
		t.Errorf("%s: Age %q; want %q", label, age, s.age)
	}
	if s.check != nil {
		r.label = label
		s.check(t, g, r)
	}
}

// hdrIs checks one response header field.
func hdrIs(name, want string) func(*testing.T, *gateway, result) {
	return func(t *testing.T, _ *gateway, r result) {
		t.Helper()
		if got := r.header.Get(name); got != want {
			t.Errorf("%s: response %s: %q; want %q", r.label, name, got, want)
		}
	}
}

// sawHdr checks a header of the last request the origin received for path.
func sawHdr(path, name, want string) func(*testing.T, *gateway, result) {
	return func(t *testing.T, g *gateway, r result) {
		t.Helper()
		if got := g.origin.last(t, path).header.Get(name); got != want {
			t.Errorf("%s: origin saw %s: %q; want %q", r.label, name, got, want)
		}
	}
}

// all runs several checks.
func all(fs ...func(*testing.T, *gateway, result)) func(*testing.T, *gateway, result) {
	return func(t *testing.T, g *gateway, r result) {
		t.Helper()
		for _, f := range fs {
			f(t, g, r)
		}
	}
}

// loopback trusts the test's own peers.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
