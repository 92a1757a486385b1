package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"gateway/internal/h3test"
	"gateway/internal/testcert"
)

// TestReadmeHTTP3Edge runs the README's edge listener with TLS and
// HTTP/3 (its certificate files and port swapped for the test's) in the
// gateway binary: a cache miss then a hit over HTTP/3, the Alt-Svc of
// HTTP/2 naming the port, and a clean exit on SIGTERM.
func TestReadmeHTTP3Edge(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "### An edge listener with TLS and HTTP/3")
	if !ok {
		t.Fatal("README.md has no HTTP/3 edge listener section")
	}
	_, block, _ := strings.Cut(sec, "```yaml\n")
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("the README's HTTP/3 section has no closed ```yaml block")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "static "+r.URL.Path)
	}))
	defer up.Close()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	roots := x509.NewCertPool()
	roots.AddCert(testcert.Write(t, certFile, keyFile, 1, "edge"))
	conf := strings.NewReplacer(
		`":443"`, `"127.0.0.1:0"`,
		"/etc/gateway/cert.pem", certFile,
		"/etc/gateway/key.pem", keyFile,
		"http://127.0.0.1:3000", up.URL,
	).Replace(block) + "admin:\n  address: \"127.0.0.1:0\"\n"
	c := startChild(t, "run", "-config", writeConfig(t, conf))
	gw, _ := c.waitAddrs(t, true)
	h3 := &http.Client{Transport: h3test.Transport(t, roots)}
	for i, want := range []string{"fwd=uri-miss", "hit"} {
		resp, err := h3.Get("https://" + gw + "/static/a.css")
		if err != nil {
			t.Fatalf("GET over HTTP/3: %v; log:\n%s", err, c.logs())
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if st := resp.Header.Get("Cache-Status"); resp.ProtoMajor != 3 || string(b) != "static /static/a.css" || !strings.Contains(st, want) {
			t.Errorf("request %d: %s %q, Cache-Status %q; want HTTP/3.0, the origin's body, %s", i+1, resp.Proto, b, st, want)
		}
	}
	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer h2.CloseIdleConnections()
	resp, err := (&http.Client{Transport: h2}).Get("https://" + gw + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(gw)
	if got, want := resp.Header.Get("Alt-Svc"), `h3=":`+port+`"; ma=86400`; resp.ProtoMajor != 2 || got != want {
		t.Errorf("over %s: Alt-Svc %q; want HTTP/2.0 and %q", resp.Proto, got, want)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, c.logs())
	}
}
