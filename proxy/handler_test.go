package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
)

// TestMaxBodySize: a body over the route's limit gets 413, whether the
// client announces its length or streams it chunked; one at the limit
// passes whole.
func TestMaxBodySize(t *testing.T) {
	checkLeaks(t)
	const limit = 1 << 10
	var hits atomic.Int64
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return // the gateway gave up sending the body
		}
		io.WriteString(w, strconv.FormatInt(n, 10))
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	gw := gatewayTo(t, RouteOptions{Upstream: u, MaxBodySize: limit}, Options{})
	c := newClient(t)

	// unknownLength hides the reader's size, so the client sends chunks.
	type unknownLength struct{ io.Reader }
	tests := []struct {
		name        string
		body        io.Reader
		wantCode    int
		wantBody    string
		wantReached bool // the upstream saw the request
	}{
		{"over limit with Content-Length", bytes.NewReader(make([]byte, 2*limit)), 413, "request body too large\n", false},
		{"over limit chunked", unknownLength{bytes.NewReader(make([]byte, 2*limit))}, 413, "request body too large\n", true},
		{"over limit by one, chunked", unknownLength{bytes.NewReader(make([]byte, limit+1))}, 413, "request body too large\n", true},
		{"at limit with Content-Length", bytes.NewReader(make([]byte, limit)), 200, "1024", true},
		{"at limit chunked", unknownLength{bytes.NewReader(make([]byte, limit))}, 200, "1024", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			resp, err := c.Post(gw.URL+"/upload", "application/octet-stream", tt.body)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || string(b) != tt.wantBody {
				t.Errorf("POST: got %d %q; want %d %q", resp.StatusCode, b, tt.wantCode, tt.wantBody)
			}
			// A chunked body is streamed, so the upstream may or may not
			// have seen the start of it; an announced one must not be sent.
			if reached := hits.Load() > before; !tt.wantReached && reached {
				t.Errorf("upstream reached: got %v; want %v", reached, tt.wantReached)
			}
		})
	}
}

// TestForwardedHeaders checks what the upstream learns about the client:
// X-Forwarded-* from an untrusted peer are replaced, from a trusted one
// extended or kept; Via names the gateway both ways; hop-by-hop headers
// stop at the gateway.
func TestForwardedHeaders(t *testing.T) {
	checkLeaks(t)
	seen := make(chan http.Header, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		send(r, seen, r.Header.Clone())
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "upstream-only")
		io.WriteString(w, "ok")
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	untrusted := gatewayTo(t, RouteOptions{Upstream: u}, Options{
		// The test client is 127.0.0.1, outside this prefix.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	trusted := gatewayTo(t, RouteOptions{Upstream: u}, Options{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	c := newClient(t)

	forged := http.Header{
		"X-Forwarded-For":   {"1.2.3.4"},
		"X-Forwarded-Host":  {"orig.example"},
		"X-Forwarded-Proto": {"https"},
	}
	tests := []struct {
		name    string
		gw      string
		send    http.Header
		wantFor string
		wantHst string
		wantPro string
		wantVia string
	}{
		{"untrusted peer, forged headers", untrusted.URL, forged, "127.0.0.1", "gw.test", "http", "1.1 gateway"},
		{"untrusted peer, no headers", untrusted.URL, nil, "127.0.0.1", "gw.test", "http", "1.1 gateway"},
		{"trusted peer extends and keeps", trusted.URL, forged, "1.2.3.4, 127.0.0.1", "orig.example", "https", "1.1 gateway"},
		{"trusted peer, no headers", trusted.URL, nil, "127.0.0.1", "gw.test", "http", "1.1 gateway"},
		{"Via is appended to", untrusted.URL, http.Header{"Via": {"1.0 edge"}}, "127.0.0.1", "gw.test", "http", "1.0 edge, 1.1 gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", tt.gw+"/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "gw.test"
			for k, v := range tt.send {
				req.Header[k] = v
			}
			// Hop-by-hop headers, and one the client names in Connection.
			req.Header.Set("Connection", "X-Foo")
			req.Header.Set("X-Foo", "hop")
			req.Header.Set("Keep-Alive", "timeout=5")
			req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got := waitFor(t, seen, "the upstream request")

			for _, h := range []struct{ name, got, want string }{
				{"X-Forwarded-For", got.Get("X-Forwarded-For"), tt.wantFor},
				{"X-Forwarded-Host", got.Get("X-Forwarded-Host"), tt.wantHst},
				{"X-Forwarded-Proto", got.Get("X-Forwarded-Proto"), tt.wantPro},
				{"Via", got.Get("Via"), tt.wantVia},
				{"response Via", resp.Header.Get("Via"), "1.1 gateway"},
			} {
				if h.got != h.want {
					t.Errorf("%s: got %q; want %q", h.name, h.got, h.want)
				}
			}
			if n := len(got["X-Forwarded-For"]); n != 1 {
				t.Errorf("X-Forwarded-For lines: got %d; want 1", n)
			}
			for _, k := range []string{"X-Foo", "Keep-Alive", "Proxy-Authorization"} {
				if v, ok := got[k]; ok {
					t.Errorf("upstream got hop-by-hop %s: %q; want none", k, v)
				}
			}
			if v := got.Get("Connection"); v != "" && v != "keep-alive" {
				t.Errorf("upstream Connection: got %q; want none", v)
			}
			if v := resp.Header.Get("X-Secret"); v != "" {
				t.Errorf("client got upstream's hop-by-hop X-Secret: %q; want none", v)
			}
		})
	}
}

// TestClientCancelReachesUpstream: when the client gives up, the gateway
// must cancel the upstream request instead of letting it run to the end.
func TestClientCancelReachesUpstream(t *testing.T) {
	checkLeaks(t)
	for _, proto := range []string{ProtoHTTP1, ProtoH2C} {
		t.Run(proto, func(t *testing.T) {
			arrived := make(chan struct{})
			upstreamDone := make(chan struct{})
			be := newBackend(t, cleartextH2C, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(arrived)
				<-r.Context().Done()
				close(upstreamDone)
			}))
			u := newUpstream(t, UpstreamOptions{Protocol: proto, Targets: []*url.URL{be.target(t)}})
			gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{})

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", gw.URL+"/slow", nil)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			c := newClient(t)
			go func() {
				resp, err := c.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				errc <- err
			}()
			waitFor(t, arrived, "the request to reach the upstream")
			cancel()
			if err := waitFor(t, errc, "the client to return"); !errors.Is(err, context.Canceled) {
				t.Errorf("client: got %v; want context.Canceled", err)
			}
			waitFor(t, upstreamDone, "the upstream request's context to end")
		})
	}
}
