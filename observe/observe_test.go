package observe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gateway/internal/routes"
	"gateway/proxy"
)

// syncBuffer collects log lines written from the servers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines parses the JSON lines written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// seen is what the upstream received.
type seen struct {
	mu      sync.Mutex
	headers []http.Header
}

func (s *seen) last() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headers[len(s.headers)-1]
}

// gateway runs upstream handler up behind a proxy route "api" (upstream
// "app") wrapped with o, on real sockets; it returns the gateway's URL
// and the upstream's.
func gateway(t *testing.T, up http.HandlerFunc, o Options) (gw, upURL string, got *seen) {
	t.Helper()
	got = &seen{}
	us := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.mu.Lock()
		got.headers = append(got.headers, r.Header.Clone())
		got.mu.Unlock()
		up(w, r)
	}))
	t.Cleanup(us.Close)
	target, _ := url.Parse(us.URL)
	u, err := proxy.NewUpstream(proxy.UpstreamOptions{Name: "app", Targets: []*url.URL{target}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	h, err := proxy.New(proxy.Options{Logger: quiet(), Routes: []proxy.RouteOptions{
		{Name: "api", Path: "/api", Upstream: u, Timeout: 10 * time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	o.Routes = h.RouteTable(false)
	gs := httptest.NewServer(Wrap(h, o))
	t.Cleanup(gs.Close)
	return gs.URL, us.URL, got
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestAccessLogLine checks every field of the JSON line, the request id
// kept from a trusted peer and sent both ways, the client found behind
// trusted proxies, and traceparent passed upstream untouched.
func TestAccessLogLine(t *testing.T) {
	var logs syncBuffer
	const body = "hello from upstream"
	gw, upURL, got := gateway(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}, Options{
		Log:            NewHandler("json", &logs),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
	})
	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	const tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
	req, _ := http.NewRequest("GET", gw+"/api/items?q=1", nil)
	req.Header.Set("X-Request-Id", "edge-42.abc")
	req.Header.Set("Traceparent", traceparent)
	req.Header.Set("Tracestate", tracestate)
	req.Header.Set("X-Forwarded-For", "198.51.100.9, 203.0.113.7, 10.1.2.3")
	before := time.Now()
	resp, b := do(t, req)
	after := time.Now()
	if resp.StatusCode != 200 || b != body {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	if id := resp.Header.Get("X-Request-Id"); id != "edge-42.abc" {
		t.Errorf("response X-Request-Id %q; want the trusted peer's", id)
	}
	uh := got.last()
	if v := uh.Values("X-Request-Id"); len(v) != 1 || v[0] != "edge-42.abc" {
		t.Errorf("upstream X-Request-Id %q; want the trusted peer's", v)
	}
	if v := uh.Values("Traceparent"); len(v) != 1 || v[0] != traceparent {
		t.Errorf("upstream traceparent %q; want %q untouched", v, traceparent)
	}
	if v := uh.Get("Tracestate"); v != tracestate {
		t.Errorf("upstream tracestate %q; want %q", v, tracestate)
	}
	if st := resp.Header.Get("Server-Timing"); st != "" {
		t.Errorf("Server-Timing %q without server_timing", st)
	}

	lines := logs.lines(t)
	if len(lines) != 1 {
		t.Fatalf("got %d log lines; want 1", len(lines))
	}
	l := lines[0]
	ts, err := time.Parse(time.RFC3339Nano, l["time"].(string))
	if err != nil || ts.Before(before) || ts.After(after) {
		t.Errorf("time %v (%v); want between %v and %v", l["time"], err, before, after)
	}
	host := strings.TrimPrefix(gw, "http://")
	want := map[string]any{
		"level": "INFO", "msg": "request",
		"request_id": "edge-42.abc",
		"client":     "203.0.113.7",
		"method":     "GET",
		"host":       host,
		"path":       "/api/items",
		"proto":      "HTTP/1.1",
		"route":      "api",
		"status":     200.0,
		"bytes":      float64(len(body)),
		"cache":      "none",
		"upstream":   "app",
		"target":     upURL,
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s: got %#v; want %#v", k, l[k], v)
		}
	}
	d, ud := l["duration_ms"].(float64), l["upstream_ms"].(float64)
	if ud < 2 || d < ud || d > float64(after.Sub(before).Microseconds())/1000 {
		t.Errorf("duration_ms %v, upstream_ms %v; want upstream_ms >= 2 (the upstream sleeps), duration_ms between it and the client's %v", d, ud, after.Sub(before))
	}
	if e, ok := l["encoding"]; ok {
		t.Errorf("encoding %#v on an unencoded body; want it left out", e)
	}
	if len(l) != len(want)+3 { // + time, duration_ms, upstream_ms
		t.Errorf("got fields %v; want exactly %d", l, len(want)+3)
	}
}

// TestRequestIDUntrusted: an untrusted peer's X-Request-Id is replaced
// by a generated one, sent upstream and back; ids differ per request; a
// trusted peer's malformed id is replaced too.
func TestRequestIDUntrusted(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		var logs syncBuffer
		o := Options{Log: NewHandler("json", &logs)}
		if trusted {
			o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		} else {
			o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		}
		gw, _, got := gateway(t, func(w http.ResponseWriter, r *http.Request) {}, o)
		sent := "forged"
		if trusted {
			sent = "bad id with spaces"
		}
		ids := map[string]bool{}
		for i := range 3 {
			req, _ := http.NewRequest("GET", gw+"/api/x", nil)
			req.Header.Set("X-Request-Id", sent)
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			resp, _ := do(t, req)
			id := resp.Header.Get("X-Request-Id")
			if !hexID.MatchString(id) {
				t.Fatalf("trusted %v: response X-Request-Id %q; want 32 hex digits", trusted, id)
			}
			if up := got.last().Values("X-Request-Id"); len(up) != 1 || up[0] != id {
				t.Errorf("trusted %v: upstream got %q; want %q", trusted, up, id)
			}
			l := logs.lines(t)[i]
			if l["request_id"] != id {
				t.Errorf("trusted %v: logged id %v; want %q", trusted, l["request_id"], id)
			}
			wantClient := "127.0.0.1"
			if trusted {
				wantClient = "203.0.113.7"
			}
			if l["client"] != wantClient {
				t.Errorf("trusted %v: client %v; want %s", trusted, l["client"], wantClient)
			}
			ids[id] = true
		}
		if len(ids) != 3 {
			t.Errorf("ids %v; want 3 different", ids)
		}
	}
}

// TestServerTiming: with ServerTiming the response names the gateway's
// and the upstream's time; a request that reaches no upstream names
// the gateway's only.
func TestServerTiming(t *testing.T) {
	gw, _, _ := gateway(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * time.Millisecond)
		w.Header().Set("Server-Timing", "db;dur=1")
	}, Options{ServerTiming: true})
	resp, _ := do(t, mustReq(t, "GET", gw+"/api/x"))
	st := resp.Header.Values("Server-Timing")
	if len(st) != 2 || st[0] != "db;dur=1" {
		t.Fatalf("Server-Timing %q; want the upstream's, then ours", st)
	}
	m := regexp.MustCompile(`^gateway;dur=([0-9.]+), upstream;dur=([0-9.]+)$`).FindStringSubmatch(st[1])
	if m == nil {
		t.Fatalf("Server-Timing %q; want gateway;dur=MS, upstream;dur=MS", st[1])
	}
	g, _ := strconv.ParseFloat(m[1], 64)
	u, _ := strconv.ParseFloat(m[2], 64)
	if u < 3 || g < u {
		t.Errorf("gateway %vms, upstream %vms; want upstream >= 3 and gateway >= upstream", g, u)
	}
	resp, _ = do(t, mustReq(t, "GET", gw+"/nowhere"))
	if st := resp.Header.Get("Server-Timing"); resp.StatusCode != 404 || !regexp.MustCompile(`^gateway;dur=[0-9.]+$`).MatchString(st) {
		t.Errorf("no route: %d, Server-Timing %q; want 404 with the gateway's time only", resp.StatusCode, st)
	}
}

func mustReq(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// textLine is the text format's line: time of day, status, method,
// host, path, duration, cache outcome (when the cache had a part),
// bytes, upstream/target (when one was contacted), aborted.
var textLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} \d{3} [A-Z]+ \S+ \S+ \d+(\.\d+)?(µs|ms|s)( cache=[a-z]+)? \d+(\.\d)?(B|KiB|MiB|GiB)( upstream=\S+)?( aborted)?$`)

// TestTextFormat: the text handler writes one short line per request,
// through the wrapper, with the upstream that answered.
func TestTextFormat(t *testing.T) {
	var logs syncBuffer
	gw, upURL, _ := gateway(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, Options{Log: NewHandler("text", &logs)})
	do(t, mustReq(t, "DELETE", gw+"/api/x"))
	logs.mu.Lock()
	line := strings.TrimSuffix(logs.b.String(), "\n")
	logs.mu.Unlock()
	if !textLine.MatchString(line) {
		t.Errorf("text line %q; want it to match %v", line, textLine)
	}
	host := strings.TrimPrefix(gw, "http://")
	want := " 204 DELETE " + host + " /api/x "
	if !strings.Contains(line, want) || !strings.HasSuffix(line, " 0B upstream=app/"+strings.TrimPrefix(upURL, "http://")) || strings.Contains(line, "cache=") {
		t.Errorf("text line %q; want %q, 0B, upstream=app/target and no cache (none)", line, want)
	}
}

// TestUpstreamFailureLogged: a refused connection is a 502 naming the
// target; a client that leaves before the answer is logged as 499.
func TestUpstreamFailureLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	target, _ := url.Parse(dead)
	u, err := proxy.NewUpstream(proxy.UpstreamOptions{Name: "dead", Targets: []*url.URL{target}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	slowURL, _ := url.Parse(slow.URL)
	su, err := proxy.NewUpstream(proxy.UpstreamOptions{Name: "slow", Targets: []*url.URL{slowURL}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close()
	h, err := proxy.New(proxy.Options{Logger: quiet(), Routes: []proxy.RouteOptions{
		{Name: "dead", Path: "/dead", Upstream: u},
		{Name: "slow", Path: "/slow", Upstream: su},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	gs := httptest.NewServer(Wrap(h, Options{Log: NewHandler("json", &logs), Routes: h.RouteTable(false)}))
	defer gs.Close()
	resp, _ := do(t, mustReq(t, "GET", gs.URL+"/dead/x"))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %d; want 502", resp.StatusCode)
	}
	l := logs.lines(t)[0]
	if l["status"] != 502.0 || l["route"] != "dead" || l["upstream"] != "dead" || l["target"] != dead {
		t.Errorf("refused: got %v; want status 502, route, upstream and target %s", l, dead)
	}

	req := mustReq(t, "GET", gs.URL+"/slow/x")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := http.DefaultClient.Do(req.WithContext(ctx)); err == nil {
		t.Fatal("the slow request did not time out")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(logs.lines(t)) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ls := logs.lines(t)
	if len(ls) != 2 || ls[1]["status"] != 499.0 || ls[1]["route"] != "slow" || ls[1]["aborted"] != true {
		t.Errorf("client gone: got %v; want status 499, route slow, aborted", ls[1:])
	}
}

// TestStreamingAndUpgrade: Flush passes through the wrapper (an event
// arrives while the upstream is still writing), and so does Hijack: an
// upgrade gets its 101, with the request id, and is logged as 101.
func TestStreamingAndUpgrade(t *testing.T) {
	var logs syncBuffer
	next := make(chan struct{})
	gw, _, _ := gateway(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo: " + line)
			brw.Flush()
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		<-next
		io.WriteString(w, "data: two\n\n")
	}, Options{Log: NewHandler("json", &logs)})

	resp, err := http.Get(gw + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); err != nil || l != "data: one\n" {
		t.Fatalf("first event: %q %v", l, err)
	}
	close(next)
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if string(rest) != "\ndata: two\n\n" {
		t.Errorf("rest %q", rest)
	}

	c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /api/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	cr := bufio.NewReader(c)
	r101, err := http.ReadResponse(cr, nil)
	if err != nil || r101.StatusCode != 101 || !hexID.MatchString(r101.Header.Get("X-Request-Id")) {
		t.Fatalf("upgrade: %v %v; want 101 with a request id", r101, err)
	}
	fmt.Fprintf(c, "ping\n")
	if l, _ := cr.ReadString('\n'); l != "echo: ping\n" {
		t.Errorf("tunnel: got %q", l)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(logs.lines(t)) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ls := logs.lines(t)
	if len(ls) != 2 {
		t.Fatalf("got %d lines; want 2", len(ls))
	}
	if ls[0]["status"] != 200.0 || ls[0]["bytes"] != 22.0 {
		t.Errorf("stream: %v; want 200, 22 bytes", ls[0])
	}
	if ls[1]["status"] != 101.0 || ls[1]["request_id"] != r101.Header.Get("X-Request-Id") || ls[1]["path"] != "/api/ws" {
		t.Errorf("upgrade: %v; want 101 with the id sent", ls[1])
	}
}

// TestOutput: lines are buffered, written after FlushInterval, and the
// rest on Close; a file is appended to.
func TestOutput(t *testing.T) {
	var w syncBuffer
	o := NewOutput(&w, nil)
	o.Write([]byte("a\n"))
	w.mu.Lock()
	n := w.b.Len()
	w.mu.Unlock()
	if n != 0 {
		t.Errorf("written at once; want buffered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		s := w.b.String()
		w.mu.Unlock()
		if s == "a\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not flushed after %v: %q", FlushInterval, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	o.Write([]byte("b\n"))
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if w.b.String() != "a\nb\n" {
		t.Errorf("after Close: %q", w.b.String())
	}
	if _, err := o.Write([]byte("c\n")); err == nil {
		t.Error("Write after Close succeeded")
	}

	path := t.TempDir() + "/access.log"
	for _, line := range []string{"one\n", "two\n"} {
		f, err := OpenOutput(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(line))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "one\ntwo\n" {
		t.Errorf("file: %q; want both lines appended", b)
	}
}

// TestClientAddress: the logged client is the peer's address without
// its port, the same whether it takes the IPv4 shortcut or the parse,
// and a peer address that is not host:port is logged as it came.
func TestClientAddress(t *testing.T) {
	h := &handler{}
	for remote, want := range map[string]string{
		"192.0.2.7:5123":        "192.0.2.7",
		"[2001:db8::1]:443":     "2001:db8::1",
		"[::ffff:192.0.2.8]:80": "192.0.2.8",
		"[fe80::1%eth0]:8080":   "fe80::1%eth0",
		"@":                     "@",
		"not an address":        "not an address",
		"192.0.2.9":             "192.0.2.9",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if got := h.client(r); got != want {
			t.Errorf("client(%q) = %q; want %q", remote, got, want)
		}
	}
}

// TestBatchRoute: the batching endpoint's requests, dot segments
// resolved, are labelled metrics.BatchRoute only when BatchPath is set;
// otherwise an unrouted request is metrics.NoRoute whatever its path.
func TestBatchRoute(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, tc := range []struct {
		batchPath, path, want string
	}{
		{"/_batch", "/_batch", "(batch)"},
		{"/_batch", "/x/../_batch", "(batch)"},
		{"/_batch", "/other", "(none)"},
		{"", "/_batch", "(none)"},
	} {
		var logs syncBuffer
		h := Wrap(next, Options{Log: NewHandler("json", &logs), Routes: routes.New([]string{"r"}, tc.batchPath != ""), BatchPath: tc.batchPath})
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, tc.path, nil))
		lines := logs.lines(t)
		if len(lines) != 1 || lines[0]["route"] != tc.want {
			t.Errorf("batch path %q, POST %s: got %v; want route %q", tc.batchPath, tc.path, lines, tc.want)
		}
	}
}
