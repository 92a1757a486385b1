package entrypoint

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"gateway/internal/leakcheck"
	"gateway/internal/testcert"
)

// serve runs a group of the given entrypoints over h until the test
// ends.
func serve(t testing.TB, h http.Handler, os ...Options) *Group {
	t.Helper()
	g, err := NewGroup(h, os, GroupOptions{Logger: quiet()})
	if err != nil {
		t.Fatalf("NewGroup: %v", err)
	}
	if err := g.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return g
}

func fetch(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestHooks: the challenge hook answers the paths under ChallengePath
// it knows, before the handler, and the rest reach the handler; the
// Alt-Svc hook's value is on every response, over HTTP/1.1 and h2c.
func TestHooks(t *testing.T) {
	leakcheck.Check(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "handler "+r.URL.Path) })
	challenge := func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != ChallengePath+"known-token" {
			return false
		}
		io.WriteString(w, "key-authorization")
		return true
	}
	g := serve(t, h, Options{
		Address:   "127.0.0.1:0",
		H2C:       true,
		Challenge: challenge,
		AltSvc:    func() string { return `h3=":443"; ma=86400` },
	})
	base := "http://" + g.Addrs()[0].String()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Transport{Protocols: &p}
	t.Cleanup(h2c.CloseIdleConnections)
	h1 := &http.Transport{}
	t.Cleanup(h1.CloseIdleConnections)
	for _, c := range []*http.Client{{Transport: h1}, {Transport: h2c}} {
		for _, tt := range []struct{ path, want string }{
			{ChallengePath + "known-token", "key-authorization"},
			{ChallengePath + "other", "handler " + ChallengePath + "other"},
			{"/x", "handler /x"},
		} {
			resp, body := fetch(t, c, base+tt.path)
			if body != tt.want {
				t.Errorf("%s over HTTP/%d: got %q; want %q", tt.path, resp.ProtoMajor, body, tt.want)
			}
			if got := resp.Header.Get("Alt-Svc"); got != `h3=":443"; ma=86400` {
				t.Errorf("%s over HTTP/%d: Alt-Svc %q; want the hook's value", tt.path, resp.ProtoMajor, got)
			}
		}
	}
}

// certSource is a CertSource that is not Files, as an ACME one is not.
type certSource struct{ cert *tls.Certificate }

func (s certSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert, nil
}

// TestCertSource: a TLS entrypoint serves the certificate of any
// CertSource, over HTTP/1.1 and HTTP/2, and sets the request's TLS
// state either way.
func TestCertSource(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	roots := x509.NewCertPool()
	roots.AddCert(testcert.Write(t, certFile, keyFile, 1, "source test"))
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "no TLS state", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, r.Proto)
	})
	g := serve(t, h, Options{Address: "127.0.0.1:0", Certs: certSource{&cert}})
	base := "https://" + g.Addrs()[0].String()
	for _, tt := range []struct {
		alpn []string
		want string
	}{{[]string{"http/1.1"}, "HTTP/1.1"}, {[]string{"h2"}, "HTTP/2.0"}} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: tt.alpn}, ForceAttemptHTTP2: tt.alpn[0] == "h2"}
		t.Cleanup(tr.CloseIdleConnections)
		resp, body := fetch(t, &http.Client{Transport: tr}, base+"/")
		if resp.StatusCode != http.StatusOK || body != tt.want {
			t.Errorf("ALPN %v: got %d %q; want 200 %q", tt.alpn, resp.StatusCode, body, tt.want)
		}
	}
}

// TestALPNChallenge: with ALPNChallenge, a handshake that offers only
// acme-tls/1 negotiates it, gets the source's certificate and is closed
// right after, never served as HTTP; clients offering h2 or http/1.1
// never land on it. Without ALPNChallenge the protocol is not offered.
func TestALPNChallenge(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	roots := x509.NewCertPool()
	roots.AddCert(testcert.Write(t, certFile, keyFile, 1, "alpn test"))
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan string, 10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served <- r.Proto })
	g := serve(t, h,
		Options{Address: "127.0.0.1:0", Certs: certSource{&cert}, ALPNChallenge: true},
		Options{Address: "127.0.0.1:0", Certs: certSource{&cert}})
	on, off := g.Addrs()[0].String(), g.Addrs()[1].String()

	c, err := tls.Dial("tcp", on, &tls.Config{RootCAs: roots, NextProtos: []string{ALPNChallengeProtocol}})
	if err != nil {
		t.Fatalf("challenge handshake: %v", err)
	}
	if got := c.ConnectionState().NegotiatedProtocol; got != ALPNChallengeProtocol {
		t.Errorf("negotiated %q; want %q", got, ALPNChallengeProtocol)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("challenge connection: read %d bytes; want it closed", n)
	}
	c.Close()
	select {
	case p := <-served:
		t.Errorf("challenge connection reached the handler as %s", p)
	default:
	}

	for _, alpn := range [][]string{{"h2", "http/1.1", ALPNChallengeProtocol}, {"http/1.1", ALPNChallengeProtocol}} {
		c, err := tls.Dial("tcp", on, &tls.Config{RootCAs: roots, NextProtos: alpn})
		if err != nil {
			t.Fatalf("ALPN %v: %v", alpn, err)
		}
		if got := c.ConnectionState().NegotiatedProtocol; got != alpn[0] {
			t.Errorf("ALPN %v: negotiated %q; want %q", alpn, got, alpn[0])
		}
		c.Close()
	}

	c, err = tls.Dial("tcp", off, &tls.Config{RootCAs: roots, NextProtos: []string{ALPNChallengeProtocol}})
	if err == nil {
		if got := c.ConnectionState().NegotiatedProtocol; got == ALPNChallengeProtocol {
			t.Errorf("listener without ALPNChallenge negotiated %q", got)
		}
		c.Close()
	}
}

// TestEntrypointHandler: an entrypoint with a Handler of its own serves
// it, and the others the group's.
func TestEntrypointHandler(t *testing.T) {
	leakcheck.Check(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "group") })
	own := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "own") })
	g := serve(t, h, Options{Address: "127.0.0.1:0"}, Options{Address: "127.0.0.1:0", Handler: own})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	for i, want := range []string{"group", "own"} {
		if _, body := fetch(t, &http.Client{Transport: tr}, "http://"+g.Addrs()[i].String()+"/"); body != want {
			t.Errorf("entrypoint %d: got %q; want %q", i, body, want)
		}
	}
}

// TestAltSvcValues: the Alt-Svc list is made once per value, and a
// response that appends to it leaves the shared list as it was.
func TestAltSvcValues(t *testing.T) {
	var a altSvcField
	first := a.values("h3=\":443\"")
	if got := a.values("h3=\":443\""); &got[0] != &first[0] {
		t.Error("the same value got a new list")
	}
	h := http.Header{"Alt-Svc": first}
	h.Add("Alt-Svc", "h3=\":8443\"")
	if len(first) != 1 || cap(first) != 1 || first[0] != "h3=\":443\"" {
		t.Errorf("the shared list became %q (cap %d)", first, cap(first))
	}
	if got := a.values("h3=\":8443\""); len(got) != 1 || got[0] != "h3=\":8443\"" {
		t.Errorf("a new value: %q", got)
	}
}
