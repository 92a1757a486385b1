package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gateway/admin"
	"gateway/internal/h3test"
	"gateway/internal/leakcheck"
	"gateway/internal/pebbletest"
)

const acmeYAML = `
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
    http3: true
    tls:
      acme:
        domains: [%s]
        ca: %q
        ca_root: %q
        storage: %q
        http_address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
routes:
  - upstream: app
`

// TestACME: a gateway whose listener has tls.acme gets its certificate
// from a real ACME CA (pebble) and serves the routes with it; its
// challenge listener redirects the rest to HTTPS; the admin listener
// shows the certificate's days left (GET /api/v1/certificates) and
// /metrics its expiry; a reload adds a domain, which is obtained without
// a restart, and refuses any other change of tls.acme; nothing is left
// running after the shutdown.
func TestACME(t *testing.T) {
	leakcheck.Check(t, "gateway/acme.", "certmagic.(*Cache)", "certmagic.(*jobManager)")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }))
	t.Cleanup(origin.Close)
	p := pebbletest.NewServer(t)
	dir := t.TempDir()
	storage := filepath.Join(dir, "acme")
	path := filepath.Join(dir, "gateway.yaml")
	write := func(domains, storage string) {
		t.Helper()
		if err := os.WriteFile(path, fmt.Appendf(nil, acmeYAML, domains, p.URL, p.CARoot, storage, origin.URL), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.test", storage)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(pebbletest.Writer(t), nil))
	}
	a, err := New(cfg, Options{Logger: log, ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	// The CA learns the challenge ports once they are bound.
	addrs := a.Addrs()
	gw, challenge := addrs[0].String(), addrs[1].String()
	p.Start(t, pebbletest.Options{HTTPPort: pebbletest.Port(t, addrs[1]), TLSPort: pebbletest.Port(t, addrs[0])})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	adm := "http://" + a.AdminAddr().String()

	get := func(name string) (string, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: name, RootCAs: p.Roots()}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + gw + "/x")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	served := func(name string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			body, err := get(name)
			if err == nil && body == "up" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET https as %s: %q, %v; want up within 30s", name, body, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	served("a.test")

	// HTTP/3 on the same port, with the certificate the CA issued.
	h3 := h3test.Transport(t, p.Roots())
	h3.TLSClientConfig.ServerName = "a.test"
	if resp, err := (&http.Client{Transport: h3, Timeout: 10 * time.Second}).Get("https://" + gw + "/x"); err != nil {
		t.Errorf("GET over HTTP/3: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != "HTTP/3.0" || string(b) != "up" {
			t.Errorf("GET over HTTP/3: %s %q; want HTTP/3.0 and up", resp.Proto, b)
		}
	}

	req, _ := http.NewRequest("GET", "http://"+challenge+"/x?y=1", nil)
	req.Host = "a.test"
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://a.test:0/x?y=1" {
		t.Errorf("challenge listener: %d %q; want 301 to https://a.test:0/x?y=1 (the configured port)", resp.StatusCode, resp.Header.Get("Location"))
	}

	var certs admin.Certificates
	adminJSON(t, adm+"/api/v1/certificates", &certs)
	if len(certs.Certificates) != 1 || certs.Obtained != 1 {
		t.Fatalf("certificates: %+v; want a.test, obtained 1", certs)
	}
	if c := certs.Certificates[0]; c.Name != "a.test" || c.DaysLeft == nil || *c.DaysLeft < 89 || c.Serial == "" {
		t.Errorf("a.test: %+v; want about 90 days left and a serial", c)
	}
	metrics := adminText(t, adm+"/metrics")
	if !strings.Contains(metrics, `gateway_tls_certificate_expiry_seconds{listener="127.0.0.1:0",name="a.test"} 7.7`) ||
		!strings.Contains(metrics, `gateway_acme_certificates_obtained_total{listener="127.0.0.1:0"} 1`) ||
		!strings.Contains(metrics, `gateway_acme_failures_total{listener="127.0.0.1:0"} 0`) {
		t.Errorf("/metrics lacks the ACME series:\n%s", grepLines(metrics, "acme", "tls_certificate"))
	}

	write("a.test, b.test", storage)
	if code := adminPost(t, adm+"/api/v1/reload"); code != http.StatusOK {
		t.Fatalf("reload adding b.test: %d; want 200", code)
	}
	served("b.test")
	served("a.test")

	write("a.test, b.test", filepath.Join(dir, "elsewhere"))
	if code := adminPost(t, adm+"/api/v1/reload"); code == http.StatusOK {
		t.Errorf("reload changing storage: 200; want it refused (restart to apply)")
	}
}

func adminJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func adminText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func adminPost(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// grepLines are the lines of s that contain any of subs.
func grepLines(s string, subs ...string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestACMENoListener: without an ACME listener the certificates
// endpoint is a 404 that says why.
func TestACMENoListener(t *testing.T) {
	a := startApp(t, `
access_log: {enabled: false}
listeners: [{address: "127.0.0.1:0"}]
admin: {address: "127.0.0.1:0"}
upstreams: {app: {targets: ["http://127.0.0.1:9"]}}
routes: [{upstream: app}]
`)
	resp, err := http.Get("http://" + a.AdminAddr().String() + "/api/v1/certificates")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "no listener obtains certificates by ACME") {
		t.Errorf("got %d %s; want 404 naming the reason", resp.StatusCode, b)
	}
}

// TestACMEChallengeListenerInUse: a challenge listener whose address is
// taken fails Listen with a ListenError naming its field, and nothing is
// left bound or running.
func TestACMEChallengeListenerInUse(t *testing.T) {
	leakcheck.Check(t, "gateway/acme.", "certmagic.(*Cache)")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg, err := Parse("t.yaml", fmt.Appendf(nil, `
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
    tls:
      acme: {domains: [a.test], storage: %q, http_address: %q}
admin: {address: "127.0.0.1:0"}
upstreams: {app: {targets: ["http://127.0.0.1:9"]}}
routes: [{upstream: app}]
`, t.TempDir(), busy.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Listen()
	var le *ListenError
	if !errors.As(err, &le) || le.Field != "listeners[0].tls.acme.http_address" || le.Address != busy.Addr().String() || !le.InUse() {
		t.Errorf("Listen: %v (%+v); want a ListenError for listeners[0].tls.acme.http_address in use", err, le)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
