package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of the HTTP/1.1 upstream transport through the whole gateway:
// what a client sees of 1xx responses, of oversized response headers and
// of its own stalled body.

// h1Gateway is a gateway on loopback with one route to an HTTP/1.1
// upstream at target, served by the gateway's own h1Transport.
func h1Gateway(t *testing.T, target string) string {
	t.Helper()
	u := newUpstream(t, UpstreamOptions{Protocol: ProtoHTTP1, Targets: []*url.URL{mustURL(t, target)}})
	if u.h1 == nil {
		t.Fatalf("upstream %s: got net/http's transport; want h1Transport", target)
	}
	return gatewayTo(t, RouteOptions{Upstream: u}, Options{}).URL
}

// interim is one 1xx response a client saw.
type interim struct {
	code int
	link string
}

// TestH1ForwardsInterimResponses: a 103 Early Hints from the upstream
// reaches the client, with its Link header and before the final
// response, as RFC 9110 requires of a proxy; but a 100 Continue to a
// request whose body the gateway sends anyway does not, as the client
// has had one already, from the gateway's own server.
func TestH1ForwardsInterimResponses(t *testing.T) {
	checkLeaks(t)
	const hints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
	s := newH1RawServer(t, func(_ *h1RawServer, c net.Conn, br *bufio.Reader) {
		h1KeepAlive(c, br, func(req *http.Request) string {
			reply := hints + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			if req.Header.Get("Expect") == "100-continue" {
				// Late, once the body is here, so that it comes after the
				// 100 the gateway's server sent the client: an early one
				// may overtake it, and the client would see one 100
				// whether the gateway forwards it or not.
				reply = "HTTP/1.1 100 Continue\r\n\r\n" + reply
			}
			return reply
		})
	})
	gw := h1Gateway(t, s.url)

	t.Run("GET", func(t *testing.T) {
		var seen []interim
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			seen = append(seen, interim{code, h.Get("Link")})
			return nil
		}}
		ctx := httptrace.WithClientTrace(context.Background(), trace)
		req := h1NewRequest(t, ctx, http.MethodGet, gw+"/page", nil)
		resp, err := newClient(t).Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(b) != "ok" {
			t.Fatalf("GET: got %d %q, error %v; want 200 \"ok\"", resp.StatusCode, b, err)
		}
		// The trace runs before Do returns the final response.
		if want := []interim{{103, "</style.css>; rel=preload"}}; !slices.Equal(seen, want) {
			t.Errorf("1xx responses before the 200: got %v; want %v", seen, want)
		}
	})

	t.Run("POST with Expect", func(t *testing.T) {
		// A raw client, to see every response head the gateway writes.
		c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		io.WriteString(c, "POST /form HTTP/1.1\r\nHost: gw.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusContinue {
			t.Fatalf("before sending the body: got %v, error %v; want 100 Continue", resp, err)
		}
		io.WriteString(c, "data")
		var seen []interim
		for {
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading the responses after %v: %v", seen, err)
			}
			if resp.StatusCode >= 200 {
				break
			}
			seen = append(seen, interim{resp.StatusCode, resp.Header.Get("Link")})
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK || string(b) != "ok" {
			t.Fatalf("POST: got %d %q, error %v; want 200 \"ok\"", resp.StatusCode, b, err)
		}
		if want := []interim{{103, "</style.css>; rel=preload"}}; !slices.Equal(seen, want) {
			t.Errorf("1xx responses after the body: got %v; want %v (the upstream's 100 is not the client's)", seen, want)
		}
	})
}

// TestWriteHeadWithProxyTrace: the trace ReverseProxy puts on every
// outbound request, with Got1xxResponse alone, leaves the common GET on
// writeHead's fast path; only hooks that watch the write take it off.
func TestWriteHeadWithProxyTrace(t *testing.T) {
	for _, tt := range []struct {
		name  string
		trace *httptrace.ClientTrace
		fast  bool
	}{
		{"Got1xxResponse", &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error { return nil }}, true},
		{"WroteHeaders", &httptrace.ClientTrace{WroteHeaders: func() {}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := httptrace.WithClientTrace(context.Background(), tt.trace)
			req := h1NewRequest(t, ctx, http.MethodGet, "http://upstream.test/x", nil)
			var buf bytes.Buffer
			bw := bufio.NewWriter(&buf)
			if got := writeHead(bw, req); got != tt.fast {
				t.Errorf("writeHead: got %v; want %v", got, tt.fast)
			}
		})
	}
}

// TestH1ResponseHeaderTooLarge: a response whose header is larger than
// maxResponseHeaderBytes is a 502, and its connection is closed, not
// reused; a large header within the bound and a body beyond it pass.
func TestH1ResponseHeaderTooLarge(t *testing.T) {
	checkLeaks(t)
	reused := make(chan bool, 1) // whether the oversized response's connection carried another request
	s := newH1RawServer(t, func(s *h1RawServer, c net.Conn, br *bufio.Reader) {
		h1KeepAlive(c, br, func(req *http.Request) string {
			switch req.URL.Path {
			case "/huge":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Huge: "+strings.Repeat("a", 2*maxResponseHeaderBytes)+"\r\nContent-Length: 2\r\n\r\nok")
				// The gateway must close this connection, which fails
				// this read; a request read here is one it sent on the
				// connection again.
				_, err := http.ReadRequest(br)
				select {
				case reused <- err == nil:
				case <-s.done:
				}
				return ""
			case "/large":
				body := strings.Repeat("b", 2*maxResponseHeaderBytes)
				return "HTTP/1.1 200 OK\r\nX-Large: " + strings.Repeat("a", maxResponseHeaderBytes/2) +
					"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
			}
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		})
	})
	gw := h1Gateway(t, s.url)
	c := newClient(t)

	if code, body := get(t, c, gw+"/huge"); code != http.StatusBadGateway {
		t.Fatalf("GET /huge: got %d %q; want 502", code, body)
	}
	if waitFor(t, reused, "the gateway to close the connection") {
		t.Fatalf("the oversized response's connection carried another request; want it closed")
	}
	if code, body := get(t, c, gw+"/small"); code != http.StatusOK || body != "ok" {
		t.Errorf("GET /small: got %d %q; want 200 \"ok\"", code, body)
	}
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("upstream connections: got %d; want 2", n)
	}

	resp, err := c.Get(gw + "/large")
	if err != nil {
		t.Fatalf("GET /large: %v", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(resp.Header.Get("X-Large")) != maxResponseHeaderBytes/2 || n != 2*maxResponseHeaderBytes {
		t.Errorf("GET /large: got %d, header of %d bytes, body of %d bytes, error %v; want 200, %d, %d, nil",
			resp.StatusCode, len(resp.Header.Get("X-Large")), n, err, maxResponseHeaderBytes/2, 2*maxResponseHeaderBytes)
	}
}

// TestH1StalledBodyIs408: a client that sends part of its body and then
// nothing gets 408 once the listener's read timeout passes, not a
// dropped connection: the body's failure, not the canceled request, is
// what the transport reports.
func TestH1StalledBodyIs408(t *testing.T) {
	checkLeaks(t)
	upstreamErr := make(chan error, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		// Not send: the request's context is done by now too, and send
		// might take that instead.
		select {
		case upstreamErr <- err:
		default: // a request the test did not expect
		}
	}))
	u := newUpstream(t, UpstreamOptions{Protocol: ProtoHTTP1, Targets: []*url.URL{be.target(t)}})
	if u.h1 == nil {
		t.Fatal("got net/http's transport; want h1Transport")
	}
	h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
	addr := startServer(t, h, ListenerOptions{ReadTimeout: 200 * time.Millisecond}).addr

	// 5 of the 10 bytes announced, then nothing.
	resp, _ := rawRequest(t, addr, "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n\r\n01234")
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("got %d; want 408", resp.StatusCode)
	}
	if err := waitFor(t, upstreamErr, "the upstream request to end"); err == nil {
		t.Errorf("upstream reading the body: got error nil; want an error")
	}
}

// TestH1NoReplayStorm: an upstream that takes requests and then drops the
// connection without answering gets a replayable request at most twice
// (once on the reused connection, once on a new one, the idle ones
// dropped), not once per idle connection, and a DELETE, which it may
// have run, only once.
func TestH1NoReplayStorm(t *testing.T) {
	checkLeaks(t)
	const idle = 8
	var dropping atomic.Bool
	var mu sync.Mutex
	seen := map[string]int{}
	arrived := make(chan struct{}, idle)
	release := make(chan struct{})
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !dropping.Load() {
			arrived <- struct{}{}
			<-release
			return
		}
		mu.Lock()
		seen[r.Method]++
		mu.Unlock()
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}, MaxIdlePerTarget: 2 * idle})
	gw := gatewayTo(t, RouteOptions{Name: "r", Path: "/", Upstream: u}, Options{})
	cl := newClient(t)

	// idle requests at once leave idle connections in the pool.
	var wg sync.WaitGroup
	for range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := get(t, cl, gw.URL+"/warm"); code != http.StatusOK {
				t.Errorf("warming: got %d; want 200", code)
			}
		}()
	}
	for range idle {
		<-arrived
	}
	close(release)
	wg.Wait()

	dropping.Store(true)
	for _, m := range []string{http.MethodDelete, http.MethodGet} {
		req, _ := http.NewRequest(m, gw.URL+"/x", nil)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: got %d; want 502", m, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[http.MethodDelete] != 1 || seen[http.MethodGet] != 2 {
		t.Errorf("upstream got DELETE %d times and GET %d times; want 1 and 2", seen[http.MethodDelete], seen[http.MethodGet])
	}
}

// TestH2ResponseHeaderTooLarge: an HTTP/2 upstream's response head has
// the same 1 MiB bound as an HTTP/1.1 one's (net/http's default is 10 MiB).
func TestH2ResponseHeaderTooLarge(t *testing.T) {
	checkLeaks(t)
	be := newBackend(t, cleartextH2C, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/huge" {
			w.Header().Set("X-Huge", strings.Repeat("a", 2*maxResponseHeaderBytes))
		}
		io.WriteString(w, "ok")
	}))
	be.Config.MaxHeaderBytes = 8 * maxResponseHeaderBytes
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}, Protocol: ProtoH2C})
	gw := gatewayTo(t, RouteOptions{Name: "r", Path: "/", Upstream: u}, Options{})
	c := newClient(t)
	if code, body := get(t, c, gw.URL+"/huge"); code != http.StatusBadGateway {
		t.Errorf("GET /huge: got %d (%d bytes); want 502", code, len(body))
	}
	if code, body := get(t, c, gw.URL+"/small"); code != http.StatusOK || body != "ok" {
		t.Errorf("GET /small: got %d %q; want 200 \"ok\"", code, body)
	}
}
