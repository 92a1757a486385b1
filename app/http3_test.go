package app

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"gateway/config"
	"gateway/internal/h3test"
	"gateway/internal/testcert"
)

const http3YAML = `
access_log: {format: json, output: %q}
listeners:
  - address: "127.0.0.1:0"
    tls: {cert_file: %q, key_file: %q}
    http3: true
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
routes:
  - name: early
    path: /early/
    upstream: app
    allow_0rtt: true
  - name: main
    path: /
    upstream: app
    cache: {enabled: true}
    compress: {enabled: true}
`

// bigBody is the 10 MiB the origin sends for /big: not the same byte
// over and over, so that a byte out of place shows.
var bigBody = func() []byte {
	b := make([]byte, 10<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>13)
	}
	return b
}()

// textBody is what the origin sends for /text/: long enough to compress.
var textBody = strings.Repeat("HTTP/3 goes through the same handler. ", 100)

// h3Origin is the upstream of the HTTP/3 tests. /c/ is cacheable, /text/
// compressible, /big 10 MiB, /upload answers the length and SHA-256 of
// the body, /gather/ holds every request until n have arrived, and
// /slow/ until release is closed (arrived is closed when the first
// comes).
type h3Origin struct {
	*httptest.Server
	n       int
	mu      sync.Mutex
	waiting int
	all     chan struct{}
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
	hits    atomic.Int64
}

func newH3Origin(t *testing.T, n int) *h3Origin {
	o := &h3Origin{n: n, all: make(chan struct{}), arrived: make(chan struct{}), release: make(chan struct{})}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *h3Origin) serve(w http.ResponseWriter, r *http.Request) {
	o.hits.Add(1)
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/c/"), strings.HasPrefix(p, "/early/"):
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "cached "+p)
	case strings.HasPrefix(p, "/text/"):
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, textBody)
	case p == "/big":
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(bigBody)
	case p == "/upload":
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	case strings.HasPrefix(p, "/gather/"):
		o.mu.Lock()
		o.waiting++
		if o.waiting == o.n {
			close(o.all)
		}
		o.mu.Unlock()
		select {
		case <-o.all:
		case <-time.After(20 * time.Second):
			http.Error(w, "not all requests arrived together", http.StatusGatewayTimeout)
			return
		}
		io.WriteString(w, p)
	case strings.HasPrefix(p, "/slow/"):
		o.once.Do(func() { close(o.arrived) })
		<-o.release
		io.WriteString(w, "slow done")
	default:
		io.WriteString(w, "ok "+p)
	}
}

// startH3App runs a gateway with an HTTP/3 listener in front of origin;
// it returns the app, the pool that trusts its certificate and the
// access log's file.
func startH3App(t *testing.T, origin string) (*App, *x509.CertPool, string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	roots := x509.NewCertPool()
	roots.AddCert(testcert.Write(t, certFile, keyFile, 1, "h3"))
	logFile := filepath.Join(dir, "access.log")
	cfg, err := config.Parse("test.yaml", fmt.Appendf(nil, http3YAML, logFile, certFile, keyFile, origin))
	if err != nil {
		t.Fatal(err)
	}
	return serveApp(t, cfg, ""), roots, logFile
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, b
}

// TestHTTP3 goes through a gateway over HTTP/3: the cache (a miss, then
// a hit), compression, 10 MiB each way byte for byte, 100 requests at
// once on one connection; the TCP listener advertises the UDP port over
// HTTP/1.1 and HTTP/2; the access log and the metrics name HTTP/3.
func TestHTTP3(t *testing.T) {
	origin := newH3Origin(t, 100)
	a, roots, logFile := startH3App(t, origin.URL)
	addr := a.server.Addrs()[0].String()
	base := "https://" + addr
	c := &http.Client{Transport: h3test.Transport(t, roots)}

	t.Run("cache", func(t *testing.T) {
		for i, want := range []string{"fwd=uri-miss", "hit"} {
			resp, b := get(t, c, base+"/c/x")
			if st := resp.Header.Get("Cache-Status"); resp.ProtoMajor != 3 || string(b) != "cached /c/x" || !strings.Contains(st, want) {
				t.Errorf("request %d: %s %q, Cache-Status %q; want HTTP/3.0, the origin's body, %s", i+1, resp.Proto, b, st, want)
			}
		}
	})
	t.Run("gzip", func(t *testing.T) {
		resp, b := get(t, c, base+"/text/a", "Accept-Encoding", "gzip")
		if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("Content-Encoding %q; want gzip", ce)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if d, err := io.ReadAll(zr); err != nil || string(d) != textBody {
			t.Errorf("decoded body: %d bytes, %v; want the origin's %d", len(d), err, len(textBody))
		}
	})
	t.Run("10MiB", func(t *testing.T) {
		if _, b := get(t, c, base+"/big"); !bytes.Equal(b, bigBody) {
			t.Errorf("download: %d bytes, not the origin's %d", len(b), len(bigBody))
		}
		resp, err := c.Post(base+"/upload", "application/octet-stream", bytes.NewReader(bigBody))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(bigBody)
		if want := strconv.Itoa(len(bigBody)) + " " + hex.EncodeToString(sum[:]); string(b) != want {
			t.Errorf("upload: the origin got %q; want %q", b, want)
		}
	})
	t.Run("100 streams", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, addr, &tls.Config{RootCAs: roots, NextProtos: []string{http3.NextProtoH3}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseWithError(0, "")
		cc := (&http3.Transport{}).NewClientConn(conn)
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Go(func() {
				path := "/gather/" + strconv.Itoa(i)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
				resp, err := cc.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && (resp.StatusCode != 200 || string(b) != path) {
					err = fmt.Errorf("%s: %d %q", path, resp.StatusCode, b)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("Alt-Svc", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(addr)
		want := `h3=":` + port + `"; ma=86400`
		for _, alpn := range []string{"http/1.1", "h2"} {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{alpn}}, ForceAttemptHTTP2: alpn == "h2"}
			t.Cleanup(tr.CloseIdleConnections)
			resp, _ := get(t, &http.Client{Transport: tr}, base+"/x")
			if got := resp.Header.Get("Alt-Svc"); got != want {
				t.Errorf("over %s: Alt-Svc %q; want %q", resp.Proto, got, want)
			}
		}
	})
	t.Run("access log and metrics", func(t *testing.T) {
		// The line is written once the response has ended, which the
		// client may see first.
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(logFile)
			if bytes.Contains(b, []byte(`"path":"/c/x","proto":"HTTP/3.0"`)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no access log line for /c/x with proto HTTP/3.0 in:\n%s", b)
			}
			time.Sleep(10 * time.Millisecond)
		}
		resp, err := http.Get("http://" + a.adminLn.Addr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(b, []byte(`gateway_requests_by_protocol_total{protocol="HTTP/3.0"} `)) {
			t.Errorf("/metrics has no HTTP/3.0 requests:\n%s", b)
		}
	})
}

// TestHTTP3EarlyData: over HTTP/3 0-RTT (a resumed connection whose
// handshake cannot complete before the answer), a GET on a route with
// allow_0rtt is served, while a POST there and a GET on a route without
// it are answered 425 Too Early, and reach no upstream.
func TestHTTP3EarlyData(t *testing.T) {
	if h3test.WithoutRace(t) {
		return
	}
	origin := newH3Origin(t, 0)
	a, roots, _ := startH3App(t, origin.URL)
	base := "https://" + a.server.Addrs()[0].String()
	e := h3test.Resume(t, a.server.Addrs()[0].String(), roots, base+"/ticket")
	for _, tt := range []struct {
		method, path string
		want         int
		body         string
	}{
		{http.MethodGet, "/early/x", http.StatusOK, "cached /early/x"},
		{http.MethodPost, "/early/x", http.StatusTooEarly, ""},
		{http.MethodGet, "/c/y", http.StatusTooEarly, ""},
		{http.MethodPost, "/_jobs/nothing", http.StatusTooEarly, ""},
	} {
		before := origin.hits.Load()
		status, body, err := e.Do(tt.method, base+tt.path, []byte("x"))
		if err != nil {
			t.Fatalf("%s %s in 0-RTT: %v", tt.method, tt.path, err)
		}
		if status != tt.want || (tt.body != "" && string(body) != tt.body) {
			t.Errorf("%s %s in 0-RTT: %d %q; want %d %q", tt.method, tt.path, status, body, tt.want, tt.body)
		}
		if tt.want == http.StatusTooEarly && origin.hits.Load() != before {
			t.Errorf("%s %s in 0-RTT reached the upstream", tt.method, tt.path)
		}
	}
}

// TestHTTP3Drain: a request in flight over HTTP/3 when the gateway shuts
// down is answered in full, and a new HTTP/3 connection is refused once
// it is down.
func TestHTTP3Drain(t *testing.T) {
	origin := newH3Origin(t, 0)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	roots := x509.NewCertPool()
	roots.AddCert(testcert.Write(t, certFile, keyFile, 1, "h3"))
	cfg, err := config.Parse("test.yaml", fmt.Appendf(nil, http3YAML, filepath.Join(dir, "access.log"), certFile, keyFile, origin.URL))
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(context.Background()) }()
	base := "https://" + a.Addrs()[0].String()
	c := &http.Client{Transport: h3test.Transport(t, roots)}
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := c.Get(base + "/slow/1")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-origin.arrived
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- a.Shutdown(ctx)
	}()
	// The drain has begun once the gateway says it is not ready (polled:
	// nothing else tells).
	for deadline := time.Now().Add(10 * time.Second); !a.draining.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the shutdown did not begin")
		}
	}
	close(origin.release)
	if r := <-got; r.err != nil || r.body != "slow done" {
		t.Errorf("request in flight: %q, %v; want slow done", r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/x", nil)
	if resp, err := (&http.Client{Transport: h3test.Transport(t, roots)}).Do(req); err == nil {
		resp.Body.Close()
		t.Error("a new HTTP/3 connection was served after the shutdown")
	}
}

// TestHTTP3ReloadNeedsRestart: turning http3 off (or on) is a listener
// change, which a reload refuses as for any other: a restart applies it,
// and HTTP/3 keeps being served meanwhile.
func TestHTTP3ReloadNeedsRestart(t *testing.T) {
	origin := newH3Origin(t, 0)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	roots := x509.NewCertPool()
	roots.AddCert(testcert.Write(t, certFile, keyFile, 1, "h3"))
	path := filepath.Join(dir, "gateway.yaml")
	conf := fmt.Sprintf(http3YAML, filepath.Join(dir, "access.log"), certFile, keyFile, origin.URL)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAppFile(t, path)
	if err := os.WriteFile(path, []byte(strings.Replace(conf, "http3: true", "http3: false", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.reloadConfig(); err == nil || !strings.Contains(err.Error(), "listeners/admin changed: restart to apply") {
		t.Errorf("reload turning http3 off: %v; want listeners/admin changed: restart to apply", err)
	}
	c := &http.Client{Transport: h3test.Transport(t, roots)}
	if resp, b := get(t, c, "https://"+a.server.Addrs()[0].String()+"/x"); resp.ProtoMajor != 3 || string(b) != "ok /x" {
		t.Errorf("after the refused reload: %s %q; want HTTP/3.0 ok /x", resp.Proto, b)
	}
}
