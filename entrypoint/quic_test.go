package entrypoint

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gateway/internal/h3test"
	"gateway/internal/leakcheck"
	"gateway/internal/testcert"
)

// tlsFiles writes a certificate for 127.0.0.1 and returns its files and
// a pool that trusts it.
func tlsFiles(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	roots = x509.NewCertPool()
	roots.AddCert(testcert.Write(t, certFile, keyFile, 1, "h3 test"))
	return certFile, keyFile, roots
}

// TestHTTP3: a TLS listener with HTTP3 serves the handler over HTTP/3 on
// its port (UDP), 100 requests at once on one connection, and its
// HTTP/1.1 and HTTP/2 responses advertise that port in Alt-Svc.
func TestHTTP3(t *testing.T) {
	leakcheck.Check(t)
	certFile, keyFile, roots := tlsFiles(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto+" "+r.URL.Path)
	})
	g := serve(t, h, Options{Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, HTTP3: true})
	addr := g.Addrs()[0].String()
	_, port, _ := net.SplitHostPort(addr)
	base := "https://" + addr
	wantAltSvc := `h3=":` + port + `"; ma=86400`
	for _, alpn := range []string{"http/1.1", "h2"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{alpn}}, ForceAttemptHTTP2: alpn == "h2"}
		t.Cleanup(tr.CloseIdleConnections)
		resp, _ := fetch(t, &http.Client{Transport: tr}, base+"/")
		if got := resp.Header.Get("Alt-Svc"); got != wantAltSvc {
			t.Errorf("over %s: Alt-Svc %q; want %q", resp.Proto, got, wantAltSvc)
		}
	}
	c := &http.Client{Transport: h3test.Transport(t, roots)}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			path := "/" + strconv.Itoa(i)
			resp, err := c.Get(base + path)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil && string(b) != "HTTP/3.0 "+path {
				err = fmt.Errorf("%s: got %q; want %q", path, b, "HTTP/3.0 "+path)
			}
			if err == nil && resp.Header.Get("Alt-Svc") != "" {
				err = fmt.Errorf("an HTTP/3 response advertises HTTP/3: %q", resp.Header.Get("Alt-Svc"))
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
}

// TestHTTP3NeedsTLS: HTTP3 on a cleartext listener is refused.
func TestHTTP3NeedsTLS(t *testing.T) {
	_, err := NewGroup(http.NotFoundHandler(), []Options{{Address: "127.0.0.1:0", HTTP3: true}}, GroupOptions{Logger: quiet()})
	if err == nil {
		t.Fatal("NewGroup accepted http3 without tls")
	}
}

// TestHTTP3Shutdown: a request in flight when Shutdown begins is
// answered in full over HTTP/3; Alt-Svc stops at once, and a new QUIC
// connection is refused.
func TestHTTP3Shutdown(t *testing.T) {
	leakcheck.Check(t)
	certFile, keyFile, roots := tlsFiles(t)
	arrived, finish := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-finish
		}
		io.WriteString(w, "done")
	})
	g, err := NewGroup(h, []Options{{Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, HTTP3: true}}, GroupOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve() }()
	base := "https://" + g.Addrs()[0].String()
	c := &http.Client{Transport: h3test.Transport(t, roots)}
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := c.Get(base + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-arrived
	q := g.eps[0].(*pair).quic
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- g.Shutdown(ctx)
	}()
	// Shutdown has begun once Alt-Svc is withdrawn (polled: nothing
	// else tells, and it is a matter of a goroutine starting).
	for deadline := time.Now().Add(10 * time.Second); q.AltSvc() != ""; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Shutdown did not withdraw Alt-Svc")
		}
	}
	close(finish)
	if r := <-got; r.err != nil || r.body != "done" {
		t.Errorf("request in flight: got %q, %v; want done", r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	if resp, err := (&http.Client{Transport: h3test.Transport(t, roots)}).Do(req); err == nil {
		resp.Body.Close()
		t.Error("a new HTTP/3 request was answered after Shutdown")
	}
}

// TestHTTP3EarlyData: while EarlyData allows it, a connection may use
// 0-RTT, and a request sent in it reaches the handler before the
// handshake has completed, which r.TLS tells; once EarlyData says no,
// new connections' 0-RTT is refused (the client sends again after the
// handshake).
func TestHTTP3EarlyData(t *testing.T) {
	if h3test.WithoutRace(t) {
		return
	}
	leakcheck.Check(t)
	certFile, keyFile, roots := tlsFiles(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s early=%t", r.Method, !r.TLS.HandshakeComplete)
	})
	var allow atomic.Bool
	allow.Store(true)
	g := serve(t, h, Options{Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, HTTP3: true, EarlyData: allow.Load})
	addr := g.Addrs()[0].String()
	e := h3test.Resume(t, addr, roots, "https://"+addr+"/")
	if ok, err := e.Accepted(); err != nil || !ok {
		t.Errorf("0-RTT while allowed: accepted %t, %v; want accepted", ok, err)
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		status, body, err := e.Do(m, "https://"+addr+"/", []byte("x"))
		if want := m + " early=true"; err != nil || status != 200 || string(body) != want {
			t.Errorf("%s in 0-RTT: got %d %q, %v; want 200 %q", m, status, body, err, want)
		}
	}
	allow.Store(false)
	if ok, err := e.Accepted(); err != nil || ok {
		t.Errorf("0-RTT once refused: accepted %t, %v; want refused", ok, err)
	}
}
