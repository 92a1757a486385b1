package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"gateway/entrypoint"
	"gateway/internal/leakcheck"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gateway/internal/testcert"
)

// Shared test plumbing: real upstream servers on loopback, the gateway on
// a real socket, clients that keep connections alive, and a check that a
// test leaves no server, transport or proxy goroutine behind.

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// checkLeaks fails t if goroutines of net/http or this module are still
// running once t's other cleanups have closed everything; see
// leakcheck.Check.
func checkLeaks(t *testing.T) {
	t.Helper()
	leakcheck.Check(t, "net/http.", "crypto/tls.", "gateway/proxy")
}

// fakeClock only moves when told to; it is what UpstreamOptions.Now reads.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// serverKind is how an upstream test server speaks.
type serverKind int

const (
	plainHTTP1   serverKind = iota // cleartext HTTP/1.1 only
	tlsH2                          // TLS with HTTP/2 and HTTP/1.1 by ALPN
	cleartextH2C                   // cleartext HTTP/1.1 and h2c prior knowledge
)

// backend is an upstream test server that counts the TCP connections it
// accepts and closes.
type backend struct {
	*httptest.Server
	accepted atomic.Int64
	closed   atomic.Int64
}

func newBackend(t testing.TB, kind serverKind, h http.Handler) *backend {
	t.Helper()
	return newBackendOn(t, nil, kind, h)
}

// newBackendOn is newBackend on a given listener (nil: a new one).
func newBackendOn(t testing.TB, ln net.Listener, kind serverKind, h http.Handler) *backend {
	t.Helper()
	b := &backend{Server: httptest.NewUnstartedServer(h)}
	if ln != nil {
		b.Listener.Close()
		b.Listener = ln
	}
	b.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.accepted.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.closed.Add(1)
		}
	}
	switch kind {
	case plainHTTP1:
		b.Start()
	case tlsH2:
		b.EnableHTTP2 = true
		b.StartTLS()
	case cleartextH2C:
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		b.Config.Protocols = &p
		b.Start()
	}
	t.Cleanup(b.Close)
	return b
}

// URL is the server's base URL, parsed.
func (b *backend) target(t testing.TB) *url.URL {
	t.Helper()
	return mustURL(t, b.Server.URL)
}

// clientTLS trusts the backend's certificate, for UpstreamOptions.TLSConfig.
func (b *backend) clientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(b.Certificate())
	return &tls.Config{RootCAs: pool}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", s, err)
	}
	return u
}

// deadAddr is a loopback address where connections are refused. The port
// is held by a socket that is bound but not listening, so no listener of
// this or another test process can take it while the test runs, as could
// happen with a port merely closed after use.
func deadAddr(t testing.TB) string {
	t.Helper()
	addr, release := reservePort(t)
	t.Cleanup(release)
	return addr
}

// reservePort binds a TCP socket to a loopback port without listening:
// a connection to it is refused until release, and no one else can bind
// the port before.
func reservePort(t testing.TB) (addr string, release func()) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		t.Fatalf("getsockname: %v", err)
	}
	var once sync.Once
	release = func() { once.Do(func() { syscall.Close(fd) }) }
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)), release
}

func newUpstream(t testing.TB, o UpstreamOptions) *Upstream {
	t.Helper()
	if o.Name == "" {
		o.Name = "test"
	}
	if o.Logger == nil {
		o.Logger = quiet()
	}
	u, err := NewUpstream(o)
	if err != nil {
		t.Fatalf("NewUpstream: got error %v; want nil", err)
	}
	t.Cleanup(u.Close)
	return u
}

func newHandler(t testing.TB, o Options) *Handler {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	h, err := New(o)
	if err != nil {
		t.Fatalf("New: got error %v; want nil", err)
	}
	return h
}

// serveHandler puts h on a real loopback socket speaking HTTP/1.1.
func serveHandler(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// gatewayTo is the common case: one route for every request, proxied to
// one upstream, served on a loopback socket.
func gatewayTo(t testing.TB, ro RouteOptions, o Options) *httptest.Server {
	t.Helper()
	o.Routes = append(o.Routes, ro)
	return serveHandler(t, newHandler(t, o))
}

// clientTimeout bounds every request a test client makes, so a gateway
// that never answers fails the test instead of hanging it.
const clientTimeout = time.Minute

// newClient keeps up to 64 idle connections per host, so a concurrent
// test reuses its connections to the gateway.
func newClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: clientTimeout}
}

// newH2CClient speaks HTTP/2 with prior knowledge over cleartext.
func newH2CClient(t testing.TB) *http.Client {
	t.Helper()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: clientTimeout}
}

// get sends a GET and returns the status and the body.
func get(t testing.TB, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", u, err)
	}
	return resp.StatusCode, string(b)
}

// rawRequest writes req verbatim on a new connection to addr and reads
// one response. Go's client cleans paths, so dot segments and malformed
// requests need this.
func rawRequest(t testing.TB, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", req, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	return resp, string(b)
}

// send reports v from an upstream handler to the test. It gives up when
// the request ends, so a request the test did not expect (a retry, say)
// cannot block the handler, and with it the server's Close, for ever.
func send[T any](r *http.Request, ch chan<- T, v T) {
	select {
	case ch <- v:
	case <-r.Context().Done():
	}
}

// waitFor receives from ch, failing t after a generous deadline, so an
// event that never comes fails the test instead of hanging it.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1 and
// localhost to dir and returns the PEM file names and a pool that trusts
// the certificate.
func writeCert(t testing.TB, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	roots = x509.NewCertPool()
	roots.AddCert(testcert.Write(t, certFile, keyFile, 1, "gateway test"))
	return certFile, keyFile, roots
}

// ListenerOptions are an entrypoint's options, under the name these
// tests have always used.
type ListenerOptions = entrypoint.Options

// newServer is an entrypoint group with the tunnel registry, as the
// gateway builds it.
func newServer(h http.Handler, ls []ListenerOptions, log *slog.Logger) (*entrypoint.Group, error) {
	tunnels := NewTunnels()
	return entrypoint.NewGroup(h, ls, entrypoint.GroupOptions{
		BaseContext: tunnels.Context(context.Background()),
		Drain:       tunnels.Shutdown,
		Logger:      log,
	})
}

// running is an entrypoint group serving one listener in a goroutine,
// with the tunnel registry the gateway gives its entrypoints.
type running struct {
	*entrypoint.Group
	addr   string
	done   chan struct{} // closed when Serve has returned
	served error         // what Serve returned, once done is closed
}

// startServer serves h on one listener on a loopback port, as the
// gateway does. Cleanup shuts it down and checks that Serve ended
// without error.
func startServer(t testing.TB, h http.Handler, lo ListenerOptions) *running {
	t.Helper()
	if lo.Address == "" {
		lo.Address = "127.0.0.1:0"
	}
	s, err := newServer(h, []ListenerOptions{lo}, quiet())
	if err != nil {
		t.Fatalf("NewGroup: got error %v; want nil", err)
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: got error %v; want nil", err)
	}
	r := &running{Group: s, addr: s.Addrs()[0].String(), done: make(chan struct{})}
	go func() {
		r.served = s.Serve()
		close(r.done)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: got %v; want nil", err)
		}
		select {
		case <-r.done:
			if r.served != nil {
				t.Errorf("Serve: got %v; want nil", r.served)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return r
}

// isTimeout reports whether err is a deadline the test itself set.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
