package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"gateway/cache"
)

// TestExpectContinueRefused: a request with Expect: 100-continue that the
// gateway refuses before reading its body (over the route's body limit)
// gets its 413 at once, without the body: net/http must still see its own
// body reader, which a body wrapped in place hid from it.
func TestExpectContinueRefused(t *testing.T) {
	checkLeaks(t)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("upstream got %s %s; want nothing forwarded", r.Method, r.URL)
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Name: "r", Path: "/", Upstream: u, MaxBodySize: 100}}})
	srv := startServer(t, h, ListenerOptions{ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	resp, body := rawRequest(t, srv.addr, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\nExpect: 100-continue\r\n\r\n")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("got %d %q; want 413 without sending the body", resp.StatusCode, body)
	}
}

// TestH2CUpgradeNotTunnelled: "Upgrade: h2c" on an HTTP/1.1 request is
// not an upgrade the gateway passes on. Were it tunnelled, an upstream
// that switched would take any request bytes the client sent next,
// unrouted and unlimited (h2c smuggling); RFC 9113 retired the mechanism.
// The request is proxied as a plain one, without the upgrade fields.
func TestH2CUpgradeNotTunnelled(t *testing.T) {
	checkLeaks(t)
	seen := make(chan http.Header, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		send(r, seen, r.Header.Clone())
		io.WriteString(w, "plain")
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	gw := gatewayTo(t, RouteOptions{Name: "r", Path: "/", Upstream: u}, Options{})
	resp, body := rawRequest(t, gw.Listener.Addr().String(),
		"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "plain" {
		t.Fatalf("got %d %q; want 200 \"plain\"", resp.StatusCode, body)
	}
	hdr := waitFor(t, seen, "the upstream request")
	for _, f := range []string{"Upgrade", "Http2-Settings", "Connection"} {
		if v, ok := hdr[f]; ok {
			t.Errorf("upstream got %s: %q; want it dropped", f, v)
		}
	}
}

// TestNoContentTypeSniffed: a response without Content-Type reaches the
// client without one, over HTTP/1.1 and HTTP/2, rather than with the
// type net/http would guess from the body.
func TestNoContentTypeSniffed(t *testing.T) {
	checkLeaks(t)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		if r.URL.Path == "/typed" {
			w.Header().Set("Content-Type", "application/json")
		}
		io.WriteString(w, "<html><script>alert(1)</script></html>")
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Name: "r", Path: "/", Upstream: u}}})
	srv := startServer(t, h, ListenerOptions{H2C: true})
	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"HTTP/1.1", newClient(t)}, {"h2c", newH2CClient(t)}} {
		for _, p := range []struct{ path, want string }{{"/untyped", ""}, {"/typed", "application/json"}} {
			resp, err := c.client.Get("http://" + srv.addr + p.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if v, ok := resp.Header["Content-Type"]; resp.StatusCode != http.StatusOK || (p.want == "" && ok) || (p.want != "" && resp.Header.Get("Content-Type") != p.want) {
				t.Errorf("%s %s: %d, Content-Type %q (body %q); want 200 with %q", c.name, p.path, resp.StatusCode, v, b, p.want)
			}
		}
	}
}

// TestRequestTrailers: trailer fields a client sends after a chunked
// request body reach the upstream with their values, over an HTTP/1.1 and
// an h2c upstream.
func TestRequestTrailers(t *testing.T) {
	checkLeaks(t)
	for _, kind := range []struct {
		name  string
		kind  serverKind
		proto string
	}{{"http1", plainHTTP1, ProtoHTTP1}, {"h2c", cleartextH2C, ProtoH2C}} {
		t.Run(kind.name, func(t *testing.T) {
			got := make(chan string, 1)
			be := newBackend(t, kind.kind, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				send(r, got, string(b)+"|"+r.Trailer.Get("X-Checksum"))
			}))
			u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}, Protocol: kind.proto})
			gw := gatewayTo(t, RouteOptions{Name: "r", Path: "/", Upstream: u}, Options{})
			resp, body := rawRequest(t, gw.Listener.Addr().String(),
				"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"+
					"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %q; want 200", resp.StatusCode, body)
			}
			if v := waitFor(t, got, "the upstream request"); v != "hello|abc123" {
				t.Errorf("upstream got body|trailer %q; want %q", v, "hello|abc123")
			}
		})
	}
}

// TestClientBodyErrorsSpareTargets: a request whose body the client got
// wrong (over the route's limit, malformed chunks) fails for the client's
// sake; neither passive health nor the breaker may hold it against the
// target, or a few such requests would take every target out.
func TestClientBodyErrorsSpareTargets(t *testing.T) {
	checkLeaks(t)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	u := newUpstream(t, UpstreamOptions{
		Targets:  []*url.URL{be.target(t)},
		MaxFails: 1, CoolDown: time.Hour,
		Breaker: testBreaker(time.Hour),
	})
	gw := gatewayTo(t, RouteOptions{Name: "r", Path: "/", Upstream: u, MaxBodySize: 10}, Options{})
	addr := gw.Listener.Addr().String()
	for _, req := range []struct{ name, raw string }{
		{"over the limit", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n01234567890123456789\r\n0\r\n\r\n"},
		{"malformed chunk", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"},
	} {
		for range 5 {
			resp, _ := rawRequest(t, addr, req.raw)
			if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s: got %d; want 413 or 400", req.name, resp.StatusCode)
			}
		}
	}
	if code, body := get(t, newClient(t), gw.URL+"/ok"); code != http.StatusOK || body != "ok" {
		t.Errorf("after the clients' bad bodies: got %d %q; want 200 \"ok\" (the target still in)", code, body)
	}
}

// upgradeOrigin answers every request with 101 Switching Protocols to
// websocket, whether asked or not, then reads the connection to its end
// and answers "got N" before closing; closed reports each connection the
// gateway closed.
func upgradeOrigin(t *testing.T, closed chan<- struct{}) *backend {
	return newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		n, _ := io.Copy(io.Discard, brw)
		fmt.Fprintf(c, "got %d", n)
		select {
		case closed <- struct{}{}:
		default:
		}
	}))
}

// TestUnaskedSwitchClosed: an upstream's 101 to a request that did not
// ask to switch is refused with 502, and its connection closed at once
// rather than left open outside the pool until a garbage collection.
func TestUnaskedSwitchClosed(t *testing.T) {
	checkLeaks(t)
	closed := make(chan struct{}, 1)
	be := upgradeOrigin(t, closed)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	gw := gatewayTo(t, RouteOptions{Name: "r", Path: "/", Upstream: u}, Options{})
	if code, _ := get(t, newClient(t), gw.URL+"/plain"); code != http.StatusBadGateway {
		t.Errorf("plain GET answered 101 upstream: got %d; want 502", code)
	}
	waitFor(t, closed, "the gateway to close the switched connection")
}

// TestHTTP10UpgradeIgnored: RFC 9110 section 7.8 has a server ignore
// Upgrade in an HTTP/1.0 request; it is proxied as a plain request.
func TestHTTP10UpgradeIgnored(t *testing.T) {
	checkLeaks(t)
	seen := make(chan string, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		send(r, seen, r.Header.Get("Upgrade"))
		io.WriteString(w, "plain")
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	gw := gatewayTo(t, RouteOptions{Name: "r", Path: "/", Upstream: u}, Options{})
	resp, body := rawRequest(t, gw.Listener.Addr().String(), "GET /x HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "plain" {
		t.Errorf("got %d %q; want 200 \"plain\"", resp.StatusCode, body)
	}
	if up := waitFor(t, seen, "the upstream request"); up != "" {
		t.Errorf("upstream got Upgrade %q; want none", up)
	}
}

// TestBareUpgradeFieldHits: an Upgrade field without "Connection:
// upgrade" asks for nothing; the request is served from the cache like
// any other, so a client cannot pass the cache at will with it.
func TestBareUpgradeFieldHits(t *testing.T) {
	checkLeaks(t)
	clk := newClock()
	var hits atomic.Int64
	origin := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat))
		io.WriteString(w, "stored")
	}))
	c := newCache(t, clk)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{origin.target(t)}})
	gw := gatewayTo(t, RouteOptions{Name: "r", Path: "/", Upstream: u, Middleware: []Middleware{cacheRoute(t, c, cache.RouteOptions{Name: "r"})}}, Options{})
	addr := gw.Listener.Addr().String()
	rawRequest(t, addr, "GET /p HTTP/1.1\r\nHost: x\r\n\r\n")
	c.Store().(*cache.MemoryStore).Wait()
	resp, body := rawRequest(t, addr, "GET /p HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\n\r\n")
	if resp.StatusCode != http.StatusOK || body != "stored" || hits.Load() != 1 {
		t.Errorf("with a bare Upgrade field: %d %q (Cache-Status %q), %d origin requests; want the stored response, 1 origin request",
			resp.StatusCode, body, resp.Header.Get("Cache-Status"), hits.Load())
	}
}
