package batch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gateway/cache"
	"gateway/internal/leakcheck"
	"gateway/proxy"
)

// Shared test plumbing: a real origin on loopback, a real proxy.Handler
// (with the real cache on some routes) in front of it, the batch
// endpoint and composite routes on top, all served on real sockets.

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// checkLeaks fails t if goroutines of net/http or this module are still
// running once t's other cleanups have closed everything; see
// leakcheck.Check.
func checkLeaks(t *testing.T) {
	t.Helper()
	leakcheck.Check(t, "net/http.", "gateway/", "ristretto")
}

// origin is the backend. Its endpoints, by path prefix:
//
//	/cached/..  JSON, public, max-age=60
//	/echo/..    JSON echo of method, path, query, selected headers and
//	            body; no-store. ?type=T answers with that content type.
//	/text       text/plain "hello"
//	/raw        JSON written by hand, with "<&>"
//	/slow       waits for the request to be cancelled (at most 10s)
//	/gated/..   counts requests in flight and waits for the gate
//	/users/ID   JSON {"user": ID, "path", "raw"}, public, max-age=60
//	/orders     JSON [{"user": query user}], no-store
//	/fail/..    503 JSON
//	/big        2 KiB of JSON
//	/half       1 KiB of the 4 KiB it announces, then the connection drops
type origin struct {
	srv      *httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	byPath   map[string]int

	inflight, maxInflight atomic.Int64
	gate                  chan struct{}
}

var echoed = []string{"Authorization", "Cookie", "Accept-Language", "Accept-Encoding", "Accept", "Content-Type", "X-Item", "X-Other", "X-Forwarded-Host", "X-Forwarded-For", "Via"}

func newOrigin(t *testing.T) *origin {
	o := &origin{byPath: map[string]int{}, gate: make(chan struct{})}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(func() {
		o.openGate()
		o.srv.Close()
	})
	return o
}

func (o *origin) openGate() {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case <-o.gate:
	default:
		close(o.gate)
	}
}

func (o *origin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byPath[path]
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	o.mu.Lock()
	o.byPath[r.URL.Path]++
	o.mu.Unlock()
	p := r.URL.Path
	jsonOut := func(status int, cc string, v any) {
		b, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", cc)
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}
	switch {
	case strings.HasPrefix(p, "/cached/"):
		jsonOut(200, "public, max-age=60", map[string]string{"path": p})
	case strings.HasPrefix(p, "/echo/"):
		body, _ := io.ReadAll(r.Body)
		hdr := map[string]string{}
		for _, name := range echoed {
			if v, ok := r.Header[name]; ok {
				hdr[name] = strings.Join(v, ", ")
			}
		}
		v := map[string]any{"method": r.Method, "path": p, "query": r.URL.RawQuery, "headers": hdr, "body": string(body)}
		if ct := r.URL.Query().Get("type"); ct != "" {
			b, _ := json.Marshal(v)
			if r.URL.Query().Get("broken") != "" {
				b = b[:len(b)-1]
			}
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Add("Set-Cookie", "a=1; Path=/")
			w.Header().Add("Set-Cookie", "b=2, c; Path=/")
			_, _ = w.Write(b)
			return
		}
		jsonOut(200, "no-store", v)
	case p == "/raw":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, "{\"s\": \"<&>\",\n \"n\": [1, 2]}\n")
	case p == "/text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "hello\n")
	case p == "/slow":
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	case strings.HasPrefix(p, "/gated/"):
		n := o.inflight.Add(1)
		for {
			m := o.maxInflight.Load()
			if n <= m || o.maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-o.gate:
		case <-r.Context().Done():
		}
		o.inflight.Add(-1)
		jsonOut(200, "no-store", map[string]string{"path": p})
	case strings.HasPrefix(p, "/users/"):
		jsonOut(200, "public, max-age=60", map[string]string{"user": strings.TrimPrefix(p, "/users/"), "raw": r.URL.RawPath, "uri": r.RequestURI})
	case p == "/orders":
		jsonOut(200, "no-store", []map[string]string{{"user": r.URL.Query().Get("user"), "uri": r.RequestURI}})
	case strings.HasPrefix(p, "/fail/"):
		jsonOut(503, "no-store", map[string]string{"error": "down"})
	case p == "/big":
		jsonOut(200, "no-store", map[string]string{"pad": strings.Repeat("x", 2048)})
	case p == "/half":
		w.Header().Set("Content-Length", "4096")
		w.WriteHeader(200)
		_, _ = w.Write(bytes.Repeat([]byte("x"), 1024))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	default:
		http.NotFound(w, r)
	}
}

// gateway is the proxy with its routes, the batch endpoint in front, on
// a real socket.
type gateway struct {
	origin *origin
	proxy  *proxy.Handler
	batch  *Handler
	srv    *httptest.Server
	client *http.Client
	url    string
}

// routeSpec is a test route: prefix, batchable, cached, composite.
type routeSpec struct {
	name      string
	path      string
	batchable bool
	cached    bool
	dead      bool // upstream that refuses connections
	methods   []string
	composite *CompositeOptions
}

var testRoutes = []routeSpec{
	{name: "cached", path: "/cached", batchable: true, cached: true},
	{name: "echo", path: "/echo", batchable: true},
	{name: "text", path: "/text", batchable: true},
	{name: "raw", path: "/raw", batchable: true},
	{name: "slow", path: "/slow", batchable: true},
	{name: "gated", path: "/gated", batchable: true},
	{name: "big", path: "/big", batchable: true},
	{name: "half", path: "/half", batchable: true},
	{name: "echo-write", path: "/echo/write", batchable: true, methods: []string{"PUT", "POST"}},
	{name: "private", path: "/private", batchable: false},
	{name: "dead", path: "/dead", batchable: true, dead: true},
	{name: "users", path: "/users", batchable: true, cached: true},
	{name: "orders", path: "/orders", batchable: true},
	{name: "fail", path: "/fail", batchable: true},
	{name: "dash", path: "/dash/{user}", batchable: true, composite: &CompositeOptions{
		Parts: []Part{{Key: "profile", Path: "/users/{user}"}, {Key: "orders", Path: "/orders?user={user}"}},
	}},
	{name: "dash-omit", path: "/dashomit/{user}", composite: &CompositeOptions{
		OnError: OnErrorOmit,
		Parts:   []Part{{Key: "profile", Path: "/users/{user}"}, {Key: "broken", Path: "/fail/{user}"}, {Key: "plain", Path: "/text"}},
	}},
	{name: "dash-fail", path: "/dashfail/{user}", composite: &CompositeOptions{
		Parts: []Part{{Key: "profile", Path: "/users/{user}"}, {Key: "broken", Path: "/fail/{user}"}},
	}},
	{name: "all-fail", path: "/allfail/{user}", composite: &CompositeOptions{
		OnError: OnErrorOmit,
		Parts:   []Part{{Key: "a", Path: "/fail/{user}"}, {Key: "b", Path: "/fail/x"}},
	}},
	{name: "loop", path: "/loop/{x}", composite: &CompositeOptions{
		Parts: []Part{{Key: "self", Path: "/loop/{x}"}},
	}},
}

func newGateway(t *testing.T, bo Options) *gateway {
	t.Helper()
	o := newOrigin(t)
	target, _ := url.Parse(o.srv.URL)
	up, err := proxy.NewUpstream(proxy.UpstreamOptions{Name: "origin", Targets: []*url.URL{target}, Protocol: proxy.ProtoHTTP1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	deadURL, _ := url.Parse("http://" + deadAddr(t))
	dead, err := proxy.NewUpstream(proxy.UpstreamOptions{Name: "dead", Targets: []*url.URL{deadURL}, Protocol: proxy.ProtoHTTP1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)

	c, err := cache.New(cache.Options{MaxSize: 16 << 20, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	var composites []*Composite
	var routes []proxy.RouteOptions
	for _, rs := range testRoutes {
		ro := proxy.RouteOptions{Name: rs.name, Path: rs.path, Methods: rs.methods, Upstream: up, Batchable: rs.batchable, Timeout: 5 * time.Second}
		if rs.dead {
			ro.Upstream = dead
		}
		if rs.cached {
			rt, err := c.Route(cache.RouteOptions{Name: rs.name})
			if err != nil {
				t.Fatal(err)
			}
			ro.Middleware = append(ro.Middleware, rt.Wrap)
		}
		if rs.composite != nil {
			co := *rs.composite
			co.Name, co.Path, co.Logger = rs.name, rs.path, quiet()
			comp, err := NewComposite(co)
			if err != nil {
				t.Fatal(err)
			}
			ro.Path, ro.Handler, ro.Upstream = comp.Prefix(), comp, nil
			composites = append(composites, comp)
		}
		routes = append(routes, ro)
	}
	ph, err := proxy.New(proxy.Options{Routes: routes, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range composites {
		comp.Bind(ph)
	}
	if bo.Logger == nil {
		bo.Logger = quiet()
	}
	bh, err := New(bo, ph)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{origin: o, proxy: ph, batch: bh, srv: httptest.NewServer(bh)}
	tr := &http.Transport{DisableCompression: true}
	g.client = &http.Client{Transport: tr, Timeout: 20 * time.Second}
	g.url = g.srv.URL
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		g.srv.Close()
	})
	return g
}

// deadAddr is a loopback address where connections are refused: the
// port is bound but not listening, so no other listener can take it
// while the test runs.
func deadAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// batchResult is a decoded batch response.
type batchResult struct {
	Responses []struct {
		ID         string            `json:"id"`
		Status     int               `json:"status"`
		Headers    map[string]string `json:"headers"`
		Body       json.RawMessage   `json:"body"`
		BodyBase64 *string           `json:"body_base64"`
	} `json:"responses"`
}

// post sends a batch body and returns the status, the raw body and the
// response headers.
func (g *gateway) post(t *testing.T, body string, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+"/_batch", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// run posts a batch that must succeed and decodes it.
func (g *gateway) run(t *testing.T, body string, hdr ...string) batchResult {
	t.Helper()
	status, b, h := g.post(t, body, hdr...)
	if status != http.StatusOK {
		t.Fatalf("batch: got %d %s; want 200", status, b)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("batch Content-Type: got %q; want application/json", ct)
	}
	var res batchResult
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return res
}

func (g *gateway) get(t *testing.T, path string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := g.client.Get(g.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// items writes a batch body of GETs, ids i0, i1, ...
func items(paths ...string) string {
	var parts []string
	for i, p := range paths {
		parts = append(parts, fmt.Sprintf(`{"id": "i%d", "path": %q}`, i, p))
	}
	return `{"requests": [` + strings.Join(parts, ",") + `]}`
}

func jsonEqual(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Errorf("%s: got %s, not JSON: %v", what, got, err)
		return
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("%s: want %s, not JSON: %v", what, want, err)
	}
	ga, _ := json.Marshal(a)
	gb, _ := json.Marshal(b)
	if !bytes.Equal(ga, gb) {
		t.Errorf("%s: got %s; want %s", what, ga, gb)
	}
}
