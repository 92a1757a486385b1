package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// okGateway is a handler proxying everything to an upstream that answers
// "ok", after reading any body.
func okGateway(t *testing.T) http.Handler {
	t.Helper()
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	return newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
}

// TestListenerProtocols: a TLS listener offers HTTP/2 by ALPN and still
// serves HTTP/1.1 clients; an h2c listener takes HTTP/2 with prior
// knowledge and HTTP/1.1 on the same port.
func TestListenerProtocols(t *testing.T) {
	checkLeaks(t)
	h := okGateway(t)
	certFile, keyFile, roots := writeCert(t, t.TempDir())
	tlsAddr := startServer(t, h, ListenerOptions{CertFile: certFile, KeyFile: keyFile}).addr
	h2cAddr := startServer(t, h, ListenerOptions{H2C: true}).addr

	transport := func(tlsConf *tls.Config, set func(*http.Protocols)) *http.Client {
		var p http.Protocols
		set(&p)
		tr := &http.Transport{TLSClientConfig: tlsConf, Protocols: &p}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: clientTimeout}
	}
	for _, tt := range []struct {
		name   string
		url    string
		client *http.Client
		want   int
	}{
		{"TLS, HTTP/2 client", "https://" + tlsAddr, transport(&tls.Config{RootCAs: roots}, func(p *http.Protocols) { p.SetHTTP1(true); p.SetHTTP2(true) }), 2},
		{"TLS, HTTP/1.1-only client", "https://" + tlsAddr, transport(&tls.Config{RootCAs: roots}, func(p *http.Protocols) { p.SetHTTP1(true) }), 1},
		{"h2c client", "http://" + h2cAddr, transport(nil, func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }), 2},
		{"h2c listener, HTTP/1.1 client", "http://" + h2cAddr, transport(nil, func(p *http.Protocols) { p.SetHTTP1(true) }), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.client.Get(tt.url + "/x")
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "ok" {
				t.Errorf("GET: got %d %q; want 200 \"ok\"", resp.StatusCode, b)
			}
			if resp.ProtoMajor != tt.want {
				t.Errorf("protocol: got HTTP/%d; want HTTP/%d", resp.ProtoMajor, tt.want)
			}
		})
	}
}

// TestMaxHeaderBytes: a request whose headers exceed the limit gets 431;
// one under it passes.
func TestMaxHeaderBytes(t *testing.T) {
	checkLeaks(t)
	addr := startServer(t, okGateway(t), ListenerOptions{MaxHeaderBytes: 1 << 10}).addr
	c := newClient(t)
	// net/http allows 4 KiB over the limit for the request line and
	// framing; 16 KiB is over by any reading.
	for _, tt := range []struct {
		size int
		want int
	}{{100, 200}, {16 << 10, 431}} {
		t.Run(strconv.Itoa(tt.size), func(t *testing.T) {
			req, err := http.NewRequest("GET", "http://"+addr+"/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Big", strings.Repeat("a", tt.size))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET with a %d-byte header: got %d; want %d", tt.size, resp.StatusCode, tt.want)
			}
		})
	}
}

// TestReadHeaderTimeout: a client that sends half a request line and
// stalls is disconnected.
func TestReadHeaderTimeout(t *testing.T) {
	checkLeaks(t)
	addr := startServer(t, okGateway(t), ListenerOptions{ReadHeaderTimeout: 200 * time.Millisecond}).addr
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /x HT"); err != nil {
		t.Fatal(err)
	}
	// Far longer than the timeout: only the server closing ends the read
	// early. net/http may say why before it closes.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: got %v after %q; want the server to close the connection", err, b)
	}
	t.Logf("server sent %q and closed", b)
}

// TestReadStall: with ReadTimeout, a client that stops sending its body
// is cut off with a 408 and the upstream request is ended too, while a client that uploads slowly but steadily is not.
func TestReadStall(t *testing.T) {
	checkLeaks(t)
	var active atomic.Int64
	received := make(chan int64, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer active.Add(-1)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		send(r, received, n)
		io.WriteString(w, strconv.FormatInt(n, 10))
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})

	t.Run("stalled", func(t *testing.T) {
		addr := startServer(t, h, ListenerOptions{ReadTimeout: 200 * time.Millisecond}).addr
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// 10 of the 100 bytes announced, then nothing.
		io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100\r\n\r\n0123456789")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		switch {
		case isTimeout(err):
			t.Fatalf("got no reply and no close within 10s; want 408")
		case err != nil:
			t.Fatalf("got %v; want a 408", err)
		default:
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("got %d; want 408", resp.StatusCode)
			}
		}
		// The upstream request must end, not wait for the rest.
		deadline := time.Now().Add(5 * time.Second)
		for active.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("upstream handlers still running: got %d; want 0", active.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("slow but steady", func(t *testing.T) {
		const timeout = time.Second
		addr := startServer(t, h, ListenerOptions{ReadTimeout: timeout}).addr
		pr, pw := io.Pipe()
		go func() {
			// Ten 10-byte chunks, a tenth of the timeout apart: 1s in
			// all, so a timeout on the whole body would cut it off.
			tick := time.NewTicker(timeout / 10)
			defer tick.Stop()
			for i := range 10 {
				<-tick.C
				if _, err := fmt.Fprintf(pw, "%010d", i); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, err := http.NewRequest("POST", "http://"+addr+"/upload", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 100
		resp, err := newClient(t).Do(req)
		if err != nil {
			pr.CloseWithError(err)
			t.Fatalf("POST: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "100" {
			t.Errorf("POST: got %d %q; want 200 \"100\"", resp.StatusCode, b)
		}
		if n := waitFor(t, received, "the upstream to get the body"); n != 100 {
			t.Errorf("upstream received %d bytes; want 100", n)
		}
	})
}

// TestShutdownDrains: Shutdown stops accepting at once but lets a request
// in flight finish with its whole body, then returns nil; over HTTP/1.1,
// h2c and HTTP/2 over TLS, whose connections the HTTP/2 server drains
// with a GOAWAY.
func TestShutdownDrains(t *testing.T) {
	checkLeaks(t)
	certFile, keyFile, roots := writeCert(t, t.TempDir())
	h2tls := func(t testing.TB) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: clientTimeout}
	}
	for _, tt := range []struct {
		name   string
		lo     ListenerOptions
		client func(testing.TB) *http.Client
		scheme string
		proto  int
	}{
		{"HTTP/1.1", ListenerOptions{}, newClient, "http", 1},
		{"h2c", ListenerOptions{H2C: true}, newH2CClient, "http", 2},
		{"HTTP/2 over TLS", ListenerOptions{CertFile: certFile, KeyFile: keyFile}, h2tls, "https", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			arrived := make(chan struct{})
			release := make(chan struct{})
			body := strings.Repeat("drained ", 1<<12)
			be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(arrived)
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, body)
			}))
			u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
			srv := startServer(t, newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}}), tt.lo)
			var once atomicOnce
			t.Cleanup(func() { once.do(func() { close(release) }) })

			type result struct {
				code  int
				proto int
				body  string
				err   error
			}
			done := make(chan result, 1)
			c := tt.client(t)
			go func() {
				resp, err := c.Get(tt.scheme + "://" + srv.addr + "/slow")
				if err != nil {
					done <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				done <- result{resp.StatusCode, resp.ProtoMajor, string(b), err}
			}()
			waitFor(t, arrived, "the request to reach the upstream")

			shutdown := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				shutdown <- srv.Shutdown(ctx)
			}()

			// Wait until the listener is gone.
			deadline := time.Now().Add(5 * time.Second)
			for {
				conn, err := net.Dial("tcp", srv.addr)
				if err != nil {
					break
				}
				conn.Close()
				if time.Now().After(deadline) {
					t.Fatalf("still accepting connections 5s after Shutdown")
				}
				time.Sleep(10 * time.Millisecond)
			}
			select {
			case err := <-shutdown:
				t.Fatalf("Shutdown returned %v with a request in flight; want it to wait", err)
			default:
			}

			once.do(func() { close(release) })
			r := waitFor(t, done, "the in-flight request")
			if r.err != nil || r.code != http.StatusOK || r.body != body {
				t.Errorf("in-flight request: got %d, %d bytes, %v; want 200, %d bytes, nil", r.code, len(r.body), r.err, len(body))
			}
			if err := waitFor(t, shutdown, "Shutdown to return"); err != nil {
				t.Errorf("Shutdown: got %v; want nil", err)
			}
			select {
			case <-srv.done:
				if srv.served != nil {
					t.Errorf("Serve: got %v; want nil", srv.served)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Serve did not return after Shutdown")
			}
		})
	}
}

// atomicOnce is sync.Once by another name, so cleanup and test body can
// both release the upstream.
type atomicOnce struct{ done atomic.Bool }

func (o *atomicOnce) do(f func()) {
	if o.done.CompareAndSwap(false, true) {
		f()
	}
}

// TestNewServerRejects covers the listener checks.
func TestNewServerRejects(t *testing.T) {
	h := http.NotFoundHandler()
	certFile, keyFile, _ := writeCert(t, t.TempDir())
	for _, tt := range []struct {
		name string
		ls   []ListenerOptions
	}{
		{"no listeners", nil},
		{"cert without key", []ListenerOptions{{Address: "127.0.0.1:0", CertFile: certFile}}},
		{"h2c with TLS", []ListenerOptions{{Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, H2C: true}}},
		{"negative timeout", []ListenerOptions{{Address: "127.0.0.1:0", ReadTimeout: -1}}},
		{"missing cert file", []ListenerOptions{{Address: "127.0.0.1:0", CertFile: certFile + ".x", KeyFile: keyFile}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := newServer(h, tt.ls, quiet()); err == nil || s != nil {
				t.Errorf("newServer: got (%v, %v); want (nil, error)", s, err)
			}
		})
	}
	// Serve before Listen is an error, not a hang.
	s, err := newServer(h, []ListenerOptions{{Address: "127.0.0.1:0"}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err == nil {
		t.Errorf("Serve before Listen: got nil; want an error")
	}
	// An address in use fails Listen.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err = newServer(h, []ListenerOptions{{Address: "127.0.0.1:0"}, {Address: ln.Addr().String()}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Listen on a used address: got %v; want address in use", err)
	}
	if n := len(s.Addrs()); n != 0 {
		t.Errorf("Addrs after a failed Listen: got %d; want 0 (all released)", n)
	}
}

// TestShutdownGraceEndsHTTP2: an HTTP/2 request still running when the
// shutdown grace ends is cut off with its connection, and Shutdown
// returns the context's error without waiting for it.
func TestShutdownGraceEndsHTTP2(t *testing.T) {
	checkLeaks(t)
	arrived := make(chan struct{})
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	s, err := newServer(newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}}), []ListenerOptions{{Address: "127.0.0.1:0", H2C: true}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	failed := make(chan error, 1)
	go func() {
		resp, err := newH2CClient(t).Get("http://" + s.Addrs()[0].String() + "/hang")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		failed <- err
	}()
	waitFor(t, arrived, "the request at the upstream")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: got %v; want the context's deadline", err)
	}
	if err := waitFor(t, failed, "the request to end"); err == nil {
		t.Error("the request cut off by the shutdown got no error")
	}
	if err := waitFor(t, served, "Serve to return"); err != nil {
		t.Errorf("Serve: got %v; want nil", err)
	}
}
