package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// reverseProxyOnly makes every route of h that has a forwarder answer
// through its ReverseProxy instead, the reference the forwarder must
// match.
func reverseProxyOnly(t *testing.T, h *Handler) {
	t.Helper()
	n := 0
	for _, ro := range h.routes {
		if f, ok := ro.handler.(*forwarder); ok {
			ro.handler = f.rp
			n++
		}
	}
	if n == 0 {
		t.Fatal("no route has a forwarder")
	}
}

// seen is what an upstream received of one request.
type seen struct {
	Method, URI, Host, Proto string
	Header                   http.Header
}

// exchangeResult is what a client got back through the gateway.
type exchangeResult struct {
	Status   int
	Header   http.Header
	Body     string
	Trailer  http.Header
	Interim  []string // "code fields" of each 1xx, in order
	ReadErr  bool     // the body ended in an error (an aborted response)
	DoErr    bool     // no response at all (aborted before its header)
	Upstream []seen
}

// TestForwarderMatchesReverseProxy: for every kind of response an
// upstream may send, over HTTP/1.1 (the gateway's transport) and h2c
// (net/http's), and requests with and without forwarding fields,
// the forwarder gives the client and the upstream exactly what the
// route's ReverseProxy gives them: status, header fields (but Date),
// body, trailers, interim responses, and an abort where the upstream's
// body breaks.
func TestForwarderMatchesReverseProxy(t *testing.T) {
	checkLeaks(t)
	raw := func(resp string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			brw.WriteString(resp)
			brw.Flush()
		}
	}
	upstreams := map[string]http.HandlerFunc{
		"plain": func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"application/json"}
			h["Cache-Control"] = []string{"no-store"}
			h["Set-Cookie"] = []string{"a=1", "b=2"}
			h["X-Multi"] = []string{"1", "2", "3"}
			io.WriteString(w, strings.Repeat("x", 1024))
		},
		"big": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.Repeat("0123456789abcdef", 8<<10))
		},
		"via": func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Via"] = []string{"1.1 other", "1.0 third"}
			io.WriteString(w, "via")
		},
		"hop": raw("HTTP/1.1 200 OK\r\nConnection: X-Hop, x-other\r\nX-Hop: a\r\nX-Other: b\r\nX-Kept: c\r\n" +
			"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: nothing\r\nContent-Length: 2\r\n\r\nok"),
		"noncanonical": raw("HTTP/1.1 200 OK\r\nx-lower: 1\r\nX-LOWER: 2\r\ncontent-type: text/plain\r\nContent-Length: 2\r\n\r\nok"),
		"chunked": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "one,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "two")
		},
		"events": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "Text/Event-Stream; charset=utf-8")
			w.Header().Set("Content-Length", "12")
			io.WriteString(w, "data: hi\n\n\n\n")
		},
		"trailers": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		},
		"early": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Header().Set("X-Final", "1")
			io.WriteString(w, "final")
		},
		"notmodified": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		},
		"nocontent": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		},
		"untilclose": raw("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the connection closes"),
		"switch":     raw("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
		"cut":        raw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"),
		"error":      func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
	}
	requests := []fwdRequest{
		{"get", http.MethodGet, "/", nil},
		{"head", http.MethodHead, "/", nil},
		{"query", http.MethodGet, "/p/q?a=1&b=%41&c", nil},
		{"semicolon", http.MethodGet, "/p?a=1;b=2", nil},
		{"badescape", http.MethodGet, "/p?a=%zz", nil},
		{"forwarding", http.MethodGet, "/", http.Header{
			"X-Forwarded-For":   {"203.0.113.9", "198.51.100.1"},
			"X-Forwarded-Host":  {"client.example"},
			"X-Forwarded-Proto": {"https"},
			"Forwarded":         {"for=203.0.113.9"},
			"Via":               {"1.1 edge"},
			"User-Agent":        {"tester/1"},
			"Accept":            {"a", "b"},
		}},
		{"hopfields", http.MethodGet, "/", http.Header{
			"Connection": {"X-Secret"}, "X-Secret": {"s"}, "Te": {"trailers"}, "Proxy-Authorization": {"Basic x"},
		}},
	}
	rawOnes := map[string]bool{"hop": true, "noncanonical": true, "untilclose": true, "switch": true, "cut": true}
	for _, proto := range []string{ProtoHTTP1, ProtoH2C} {
		for _, trusted := range []bool{false, true} {
			for name, up := range upstreams {
				if proto == ProtoH2C && rawOnes[name] {
					continue // written as HTTP/1.1 bytes
				}
				t.Run(fmt.Sprintf("%s/%s/trusted=%v", proto, name, trusted), func(t *testing.T) {
					testForwarderMatches(t, proto, trusted, up, requests)
				})
			}
		}
	}
}

type fwdRequest struct {
	name, method, path string
	header             http.Header
}

// testForwarderMatches is one case of TestForwarderMatchesReverseProxy:
// an upstream speaking proto that answers with up, the gateway trusting
// the client's forwarding fields or not.
func testForwarderMatches(t *testing.T, proto string, trusted bool, up http.HandlerFunc, requests []fwdRequest) {
	var mu sync.Mutex
	var got []seen
	kind := plainHTTP1
	if proto == ProtoH2C {
		kind = cleartextH2C
	}
	be := newBackend(t, kind, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Method, r.RequestURI, r.Host, r.Proto, r.Header.Clone()})
		mu.Unlock()
		up(w, r)
	}))
	var o Options
	if trusted {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	ro := RouteOptions{Path: "/", Upstream: newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}, Protocol: proto}), Timeout: time.Minute}
	o.Routes = []RouteOptions{ro, {Path: "/p/", StripPrefix: true, Upstream: ro.Upstream, Timeout: time.Minute}}
	fwd := newHandler(t, o)
	if _, ok := fwd.routes[0].handler.(*forwarder); !ok {
		t.Fatalf("route handler is %T; want *forwarder", fwd.routes[0].handler)
	}
	ref := newHandler(t, o)
	reverseProxyOnly(t, ref)
	fwdSrv, refSrv := serveHandler(t, fwd), serveHandler(t, ref)
	client := newClient(t)
	for _, rq := range requests {
		do := func(base string) exchangeResult {
			mu.Lock()
			got = nil
			mu.Unlock()
			req, err := http.NewRequest(rq.method, base+rq.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range rq.header {
				req.Header[k] = v
			}
			// One name for both gateways, whose addresses
			// differ, so that X-Forwarded-Host is the same.
			req.Host = "gw.example"
			var res exchangeResult
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					res.Interim = append(res.Interim, fmt.Sprint(code, " ", h))
					return nil
				},
			}))
			resp, err := client.Do(req)
			if err != nil {
				// An aborted response: the connection
				// closed before its header went out.
				res.DoErr = true
				return res
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			res.Status, res.Header, res.Body, res.Trailer, res.ReadErr = resp.StatusCode, resp.Header, string(body), resp.Trailer, err != nil
			delete(res.Header, "Date")
			mu.Lock()
			res.Upstream = got
			mu.Unlock()
			return res
		}
		want, have := do(refSrv.URL), do(fwdSrv.URL)
		if !reflect.DeepEqual(have, want) {
			t.Errorf("%s: forwarder\n got %+v\nReverseProxy\n got %+v", rq.name, have, want)
		}
	}
}

// TestForwarderTakesPlainRequests: the forwarder sends GET and HEAD
// without a body or hop-by-hop fields itself, and leaves the rest to
// ReverseProxy.
func TestForwarderTakesPlainRequests(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		header         http.Header
		body           string
		want           bool
	}{
		{http.MethodGet, "/", nil, "", true},
		{http.MethodHead, "/x?a=1&b=%2F", nil, "", true},
		{http.MethodGet, "/", http.Header{"Accept": {"*/*"}, "X-Forwarded-For": {"1.2.3.4"}}, "", true},
		{http.MethodPost, "/", nil, "", false},
		{http.MethodOptions, "/", nil, "", false},
		{http.MethodGet, "/", nil, "body", false},
		{http.MethodGet, "/?a;b", nil, "", false},
		{http.MethodGet, "/?a=%4", nil, "", false},
		{http.MethodGet, "/", http.Header{"Connection": {"X-A"}}, "", false},
		{http.MethodGet, "/", http.Header{"Te": {"trailers"}}, "", false},
		{http.MethodGet, "/", http.Header{"Upgrade": {"websocket"}}, "", false},
		{http.MethodGet, "/", http.Header{"Proxy-Authorization": {"Basic x"}}, "", false},
	} {
		r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		for k, v := range tc.header {
			r.Header[k] = v
		}
		if got := plainRequest(r); got != tc.want {
			t.Errorf("%s %s %v body %q: got %v; want %v", tc.method, tc.target, tc.header, tc.body, got, tc.want)
		}
	}
}

// TestForwarderInterimToHTTP10: an HTTP/1.0 client gets no interim
// response through the forwarder either (RFC 9110 section 15.2).
func TestForwarderInterimToHTTP10(t *testing.T) {
	checkLeaks(t)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "final")
	}))
	srv := gatewayTo(t, RouteOptions{Path: "/", Upstream: newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})}, Options{})
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "final" {
		t.Errorf("got %d %q; want 200 \"final\" with no 103 before it", resp.StatusCode, body)
	}
}
