package proxy

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hammer sends n GETs to u from `workers` goroutines and reports any
// request that does not come back 200 with body "ok".
func hammer(t *testing.T, c *http.Client, u string, n, workers int) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := c.Get(u)
				if err != nil {
					t.Errorf("GET: %v", err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || string(b) != "ok" {
					t.Errorf("GET: got %d %q (read error %v); want 200 \"ok\"", resp.StatusCode, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestConnectionPooling counts the connections an upstream accepts while
// 2,000 requests go through the gateway 50 at a time: the transport must
// reuse keep-alive connections, respect the per-target cap, and carry
// every HTTP/2 request on a single connection. Without reuse (Go's
// default of 2 idle connections per host) the same run accepts about
// 1,000 connections.
//
// HTTP/1.1 upstreams use the gateway's own transport, which counts a
// connection being dialed against the cap and takes a connection back
// before the response is passed on, so at most one connection per
// request in flight is ever open. (net/http's Transport is looser: it
// lets a dial finish as a spare when another connection came free first,
// and under load closes a connection whose writer goroutine was late to
// report, so 50 concurrent requests there were seen to open up to 60.)
func TestConnectionPooling(t *testing.T) {
	checkLeaks(t)
	const requests, concurrency = 2000, 50
	tests := []struct {
		name        string
		kind        serverKind
		opts        UpstreamOptions
		minAccepted int64 // the upstream accepts at least
		maxAccepted int64 // and at most this many connections
		maxOpen     int64 // of which at most this many are open once the run is over
		wantProto   int   // every request reaches it as HTTP/wantProto
	}{
		{"http1 capped at 16", plainHTTP1, UpstreamOptions{Protocol: ProtoHTTP1, MaxConnsPerTarget: 16}, 1, 16, 16, 1},
		{"http1 uncapped", plainHTTP1, UpstreamOptions{Protocol: ProtoHTTP1, MaxIdlePerTarget: 64}, 1, concurrency, concurrency, 1},
		{"h2 over TLS", tlsH2, UpstreamOptions{Protocol: ProtoH2}, 1, 1, 1, 2},
		{"auto over TLS", tlsH2, UpstreamOptions{Protocol: ProtoAuto}, 1, 1, 1, 2},
		{"h2c", cleartextH2C, UpstreamOptions{Protocol: ProtoH2C}, 1, 1, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wrongProto atomic.Int64
			be := newBackend(t, tt.kind, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.ProtoMajor != tt.wantProto {
					wrongProto.Add(1)
				}
				io.WriteString(w, "ok")
			}))
			o := tt.opts
			o.Targets = []*url.URL{be.target(t)}
			if tt.kind == tlsH2 {
				o.TLSConfig = be.clientTLS()
			}
			gw := gatewayTo(t, RouteOptions{Upstream: newUpstream(t, o)}, Options{})

			hammer(t, newClient(t), gw.URL+"/x", requests, concurrency)

			accepted := be.accepted.Load()
			t.Logf("upstream accepted %d connections, closed %d", accepted, be.closed.Load())
			if accepted < tt.minAccepted || accepted > tt.maxAccepted {
				t.Errorf("upstream accepted %d connections; want %d to %d", accepted, tt.minAccepted, tt.maxAccepted)
			}
			// The server learns of a close the transport made a moment
			// later, so give the count time to settle.
			open := func() int64 { return be.accepted.Load() - be.closed.Load() }
			for deadline := time.Now().Add(5 * time.Second); open() > tt.maxOpen && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if n := open(); n > tt.maxOpen {
				t.Errorf("upstream connections open after the run: got %d; want at most %d", n, tt.maxOpen)
			}
			if n := wrongProto.Load(); n != 0 {
				t.Errorf("requests not over HTTP/%d: got %d; want 0", tt.wantProto, n)
			}
		})
	}
}

// TestProtocolAuto checks that "auto" speaks HTTP/2 where TLS ALPN offers
// it and HTTP/1.1 to a cleartext target.
func TestProtocolAuto(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name string
		kind serverKind
		want int
	}{
		{"https with h2", tlsH2, 2},
		{"cleartext", plainHTTP1, 1},
		// A cleartext server that could speak h2c still gets HTTP/1.1:
		// auto never assumes prior knowledge.
		{"cleartext h2c-capable", cleartextH2C, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			protos := make(chan int, 1)
			be := newBackend(t, tt.kind, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				send(r, protos, r.ProtoMajor)
				io.WriteString(w, "ok")
			}))
			o := UpstreamOptions{Protocol: ProtoAuto, Targets: []*url.URL{be.target(t)}}
			if tt.kind == tlsH2 {
				o.TLSConfig = be.clientTLS()
			}
			gw := gatewayTo(t, RouteOptions{Upstream: newUpstream(t, o)}, Options{})
			if code, body := get(t, newClient(t), gw.URL); code != http.StatusOK || body != "ok" {
				t.Fatalf("GET: got %d %q; want 200 \"ok\"", code, body)
			}
			if got := waitFor(t, protos, "the upstream request"); got != tt.want {
				t.Errorf("upstream saw HTTP/%d; want HTTP/%d", got, tt.want)
			}
		})
	}
}

// TestSharedTLSConfig gives one *tls.Config, as a config loader would, to
// an h2 and an http1 upstream of the same server. net/http writes ALPN
// protocols into its transport's TLS config, so the upstream must keep
// the caller's config as it was, and each upstream must still speak its
// own protocol.
func TestSharedTLSConfig(t *testing.T) {
	checkLeaks(t)
	protos := make(chan int, 1)
	be := newBackend(t, tlsH2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		send(r, protos, r.ProtoMajor)
		io.WriteString(w, "ok")
	}))
	shared := be.clientTLS()
	h2 := newUpstream(t, UpstreamOptions{Name: "h2", Protocol: ProtoH2, Targets: []*url.URL{be.target(t)}, TLSConfig: shared})
	h1 := newUpstream(t, UpstreamOptions{Name: "h1", Protocol: ProtoHTTP1, Targets: []*url.URL{be.target(t)}, TLSConfig: shared})
	gw := serveHandler(t, newHandler(t, Options{Routes: []RouteOptions{
		{Path: "/h2", Upstream: h2},
		{Path: "/h1", Upstream: h1},
	}}))
	c := newClient(t)
	for _, tt := range []struct {
		path  string
		proto int
	}{{"/h2", 2}, {"/h1", 1}, {"/h2", 2}} {
		if code, body := get(t, c, gw.URL+tt.path); code != http.StatusOK || body != "ok" {
			t.Fatalf("GET %s: got %d %q; want 200 \"ok\"", tt.path, code, body)
		}
		if got := waitFor(t, protos, "the upstream request"); got != tt.proto {
			t.Errorf("GET %s: upstream saw HTTP/%d; want HTTP/%d", tt.path, got, tt.proto)
		}
	}
	if len(shared.NextProtos) != 0 {
		t.Errorf("caller's TLSConfig.NextProtos: got %q; want none", shared.NextProtos)
	}
}

// TestH2WarmUpAfterFailedDial: while an HTTP/2 target has no connection,
// requests wait for the one that dials. When that dial fails, the
// waiters must get their 502 rather than wait on, and once the target
// is up a request must dial again, alone.
func TestH2WarmUpAfterFailedDial(t *testing.T) {
	checkLeaks(t)
	dead, release := reservePort(t)
	t.Cleanup(release)
	u := newUpstream(t, UpstreamOptions{Protocol: ProtoH2C, Targets: []*url.URL{mustURL(t, "http://"+dead)}})
	gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{})
	c := newClient(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := c.Get(gw.URL)
			if err != nil {
				t.Errorf("GET: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("GET to a dead h2c target: got %d; want 502", resp.StatusCode)
			}
		})
	}
	wg.Wait()

	// The same address comes alive: the gate must let a request dial.
	release()
	ln, err := net.Listen("tcp", dead)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", dead, err)
	}
	be := newBackendOn(t, ln, cleartextH2C, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	hammer(t, c, gw.URL, 200, 20)
	if n := be.accepted.Load(); n != 1 {
		t.Errorf("upstream accepted %d connections; want 1", n)
	}
}
