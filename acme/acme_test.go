package acme_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gateway/acme"
	"gateway/entrypoint"
	"gateway/internal/leakcheck"
	"gateway/internal/pebbletest"
)

// gateway is the part of the gateway ACME needs: a TLS entrypoint and,
// for HTTP-01, a cleartext one whose challenge hook is the Manager's,
// bound before the Manager exists (the CA must know their ports first).
type gateway struct {
	grp               *entrypoint.Group
	tlsAddr, httpAddr string
	m                 atomic.Pointer[acme.Manager]
	tlsPort, httpPort int
	served            atomic.Int64 // requests that reached the handler
}

func (g *gateway) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m := g.m.Load()
	if m == nil {
		return nil, errors.New("no manager yet")
	}
	return m.GetCertificate(h)
}

func (g *gateway) challenge(w http.ResponseWriter, r *http.Request) bool {
	m := g.m.Load()
	return m != nil && m.HandleHTTPChallenge(w, r)
}

// startGateway serves the entrypoints until the test ends.
func startGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.served.Add(1)
		io.WriteString(w, "hello "+r.TLS.ServerName)
	})
	grp, err := entrypoint.NewGroup(h, []entrypoint.Options{
		{Address: "127.0.0.1:0", Certs: g, ALPNChallenge: true},
		{Address: "127.0.0.1:0", Challenge: g.challenge, Handler: acme.Redirect("")},
	}, entrypoint.GroupOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := grp.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- grp.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = grp.Shutdown(ctx)
		<-done
	})
	g.grp = grp
	g.tlsAddr, g.httpAddr = grp.Addrs()[0].String(), grp.Addrs()[1].String()
	g.tlsPort, g.httpPort = pebbletest.Port(t, grp.Addrs()[0]), pebbletest.Port(t, grp.Addrs()[1])
	return g
}

// manage makes a Manager of o for the gateway, closed when the test
// ends, and starts it.
func (g *gateway) manage(t *testing.T, o acme.Options) *acme.Manager {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	if o.RetryMin == 0 {
		o.RetryMin = 50 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = time.Second
	}
	o.DisableARI = true // renewal by RenewalWindow alone, as the tests time it
	m, err := acme.New(o)
	if err != nil {
		t.Fatalf("acme.New: %v", err)
	}
	t.Cleanup(m.Close)
	g.m.Store(m)
	m.Start()
	return m
}

// leakMarkers are the goroutines a Manager starts, directly or through
// certmagic. (certmagic's rate limiter per CA account is global to the
// process and lives on, by its design, and is not among them.)
var leakMarkers = []string{"gateway/acme.", "certmagic.(*Cache)", "certmagic.(*jobManager)", "certmagic.(*httpSolver)", "certmagic.(*tlsALPNSolver)"}

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(pebbletest.Writer(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// issued waits for name's certificate and returns its state.
func issued(t *testing.T, m *acme.Manager, name string, within time.Duration) acme.Certificate {
	t.Helper()
	var c acme.Certificate
	waitFor(t, within, "certificate for "+name, func() bool {
		for _, c = range m.Status().Certificates {
			if c.Name == name && !c.NotAfter.IsZero() {
				return true
			}
		}
		return false
	})
	return c
}

// handshake connects to addr as a client of name that trusts only
// roots, and returns the leaf it verified.
func handshake(t *testing.T, addr, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		t.Fatalf("handshake with %s as %s: %v", addr, name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// TestIssue: a certificate is obtained by each challenge alone, from a
// real ACME CA (pebble) validating on the gateway's ports; a TLS client
// then verifies it against the CA's root and reaches the handler; the
// certificate and its key are in the storage, private.
func TestIssue(t *testing.T) {
	leakcheck.Check(t, leakMarkers...)
	for _, ch := range []string{"http-01", "tls-alpn-01"} {
		t.Run(ch, func(t *testing.T) {
			p := pebbletest.NewServer(t)
			g := startGateway(t)
			po := pebbletest.Options{HTTPPort: 1, TLSPort: 1} // nothing listens on port 1
			o := acme.Options{Domains: []string{"a.test"}, CA: p.URL, CARoot: p.CARoot, Storage: t.TempDir(), Email: "ops@example.com"}
			if ch == "http-01" {
				po.HTTPPort, o.HTTPAddress = g.httpPort, g.httpAddr
			} else {
				po.TLSPort, o.TLSAddress = g.tlsPort, g.tlsAddr
			}
			p.Start(t, po)
			m := g.manage(t, o)
			c := issued(t, m, "a.test", 30*time.Second)
			leaf := handshake(t, g.tlsAddr, "a.test", p.Roots())
			if got := leaf.SerialNumber.Text(16); got != c.Serial {
				t.Errorf("served serial %s; status says %s", got, c.Serial)
			}
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "a.test" {
				t.Errorf("DNS names %v; want [a.test]", leaf.DNSNames)
			}
			// A client with no SNI (it dialed the address) gets the
			// first configured name's certificate.
			c0, err := tls.Dial("tcp", g.tlsAddr, &tls.Config{RootCAs: p.Roots(), VerifyConnection: func(cs tls.ConnectionState) error {
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: "a.test", Roots: p.Roots(), Intermediates: pool(cs.PeerCertificates[1:])})
				return err
			}, InsecureSkipVerify: true})
			if err != nil {
				t.Errorf("handshake without SNI: %v", err)
			} else {
				c0.Close()
			}
			st := m.Status()
			if st.Obtained != 1 || st.Failures != 0 {
				t.Errorf("status: obtained %d, failures %d; want 1, 0", st.Obtained, st.Failures)
			}
			tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "a.test", RootCAs: p.Roots()}}
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := (&http.Client{Transport: tr}).Get("https://" + g.tlsAddr + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "hello a.test" {
				t.Errorf("body %q; want %q", body, "hello a.test")
			}
			checkPrivate(t, o.Storage)
		})
	}
}

func pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// checkPrivate: every file under dir is 0600 but lock files, every
// directory 0700, and a key is among them.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	keys := 0
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		perm := fi.Mode().Perm()
		switch {
		case fi.IsDir() && perm != 0o700:
			t.Errorf("%s: mode %o; want 700", path, perm)
		case !fi.IsDir() && filepath.Ext(path) == ".key":
			keys++
			fallthrough
		case !fi.IsDir() && filepath.Ext(path) != ".lock" && perm != 0o600:
			if perm != 0o600 {
				t.Errorf("%s: mode %o; want 600", path, perm)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if keys == 0 {
		t.Errorf("no .key file under %s", dir)
	}
}

// TestChallengeListenerRedirects: what is not a challenge on the
// cleartext listener is redirected to HTTPS, keeping host, path and
// query.
func TestChallengeListenerRedirects(t *testing.T) {
	for _, tt := range []struct{ port, method, target, want string }{
		{"", "GET", "http://a.test/x?y=1", "https://a.test/x?y=1"},
		{"443", "GET", "http://a.test:80/x", "https://a.test/x"},
		{"8443", "POST", "http://a.test:8080/x", "https://a.test:8443/x"},
	} {
		rec := httptest.NewRecorder()
		acme.Redirect(tt.port).ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
		wantCode := http.StatusMovedPermanently
		if tt.method != "GET" {
			wantCode = http.StatusPermanentRedirect
		}
		if rec.Code != wantCode || rec.Header().Get("Location") != tt.want {
			t.Errorf("%s %s (port %q): got %d %q; want %d %q", tt.method, tt.target, tt.port, rec.Code, rec.Header().Get("Location"), wantCode, tt.want)
		}
	}
}

// TestRenewAndCAGone: short-lived certificates are renewed in the
// background (a new serial is served, no restart); then, with the CA
// gone, renewals fail, are counted, and the current certificate keeps
// being served.
func TestRenewAndCAGone(t *testing.T) {
	leakcheck.Check(t, leakMarkers...)
	p := pebbletest.NewServer(t)
	g := startGateway(t)
	p.Start(t, pebbletest.Options{HTTPPort: g.httpPort, TLSPort: g.tlsPort, Validity: 30})
	// certmagic backs renewals off per name, process-wide: a name of its
	// own keeps a run with -count from waiting on the last one's backoff.
	name := "renew" + strconv.FormatInt(renewRuns.Add(1), 10) + ".test"
	m := g.manage(t, acme.Options{
		Domains: []string{name}, CA: p.URL, CARoot: p.CARoot, Storage: t.TempDir(),
		HTTPAddress: g.httpAddr, TLSAddress: g.tlsAddr,
		RenewCheckInterval: 200 * time.Millisecond, RenewalWindow: 0.9, // renew 3s into a 30s life
		// On-demand names renew only at handshakes: the configured ones
		// must renew in the background all the same.
		OnDemand: &acme.OnDemand{Ask: "http://127.0.0.1:1/never"},
	})
	first := issued(t, m, name, 30*time.Second)
	waitFor(t, 30*time.Second, "a renewed certificate", func() bool {
		return handshake(t, g.tlsAddr, name, p.Roots()).SerialNumber.Text(16) != first.Serial
	})
	if st := m.Status(); st.Renewed == 0 {
		t.Errorf("renewed %d; want at least 1", st.Renewed)
	}

	p.Stop()
	waitFor(t, 30*time.Second, "a failed renewal counted", func() bool { return m.Status().Failures > 0 })
	st := m.Status()
	c := st.Certificates[0]
	if c.LastError == "" || c.Failures == 0 {
		t.Errorf("%s: failures %d, last error %q; want both set", name, c.Failures, c.LastError)
	}
	leaf := handshake(t, g.tlsAddr, name, p.Roots())
	if got := leaf.SerialNumber.Text(16); got != c.Serial {
		t.Errorf("with the CA gone, served serial %s; want the current one, %s", got, c.Serial)
	}
}

// renewRuns numbers TestRenewAndCAGone's runs.
var renewRuns atomic.Int64

// TestSharedStorage: two gateways sharing one storage directory, started
// together, get ONE certificate from the CA (one order finalized), and
// both serve it. The CA validates on the first one's port: whichever
// replica asked, the other answers from the shared storage.
func TestSharedStorage(t *testing.T) {
	leakcheck.Check(t, leakMarkers...)
	p := pebbletest.NewServer(t)
	g1, g2 := startGateway(t), startGateway(t)
	p.Start(t, pebbletest.Options{HTTPPort: g1.httpPort, TLSPort: 1})
	storage := t.TempDir()
	o := func(g *gateway) acme.Options {
		return acme.Options{Domains: []string{"a.test"}, CA: p.URL, CARoot: p.CARoot, Storage: storage, HTTPAddress: g.httpAddr}
	}
	m1, m2 := g1.manage(t, o(g1)), g2.manage(t, o(g2))
	c1, c2 := issued(t, m1, "a.test", 60*time.Second), issued(t, m2, "a.test", 60*time.Second)
	if c1.Serial != c2.Serial {
		t.Errorf("serials %s and %s; want one certificate", c1.Serial, c2.Serial)
	}
	if n := p.Finalized.Load(); n != 1 {
		t.Errorf("orders finalized at the CA: %d; want 1", n)
	}
	if a, b := handshake(t, g1.tlsAddr, "a.test", p.Roots()), handshake(t, g2.tlsAddr, "a.test", p.Roots()); !a.Equal(b) {
		t.Errorf("the two gateways serve different certificates")
	}
}

// TestOnDemand: a name that is not configured gets a certificate at its
// first handshake only when the ask endpoint approves it (asked with
// ?domain=); refused, the handshake fails and nothing is asked of the
// CA; past the rate, approved names are refused too.
func TestOnDemand(t *testing.T) {
	leakcheck.Check(t, leakMarkers...)
	var asked atomic.Int64
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if r.URL.Query().Get("domain") == "ok.test" || r.URL.Query().Get("domain") == "ok2.test" {
			return
		}
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(ask.Close)
	p := pebbletest.NewServer(t)
	g := startGateway(t)
	p.Start(t, pebbletest.Options{HTTPPort: g.httpPort, TLSPort: g.tlsPort})
	m := g.manage(t, acme.Options{
		CA: p.URL, CARoot: p.CARoot, Storage: t.TempDir(), HTTPAddress: g.httpAddr, TLSAddress: g.tlsAddr,
		OnDemand: &acme.OnDemand{Ask: ask.URL + "/check", Burst: 1, Rate: 1.0 / 3600},
	})

	_, err := tls.Dial("tcp", g.tlsAddr, &tls.Config{ServerName: "evil.test", RootCAs: p.Roots()})
	if err == nil {
		t.Fatal("handshake for a refused name succeeded")
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("ask endpoint asked %d times; want 1", n)
	}
	if n := p.Orders.Load(); n != 0 {
		t.Errorf("orders at the CA after a refusal: %d; want 0", n)
	}

	leaf := handshake(t, g.tlsAddr, "ok.test", p.Roots())
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "ok.test" {
		t.Errorf("DNS names %v; want [ok.test]", leaf.DNSNames)
	}
	if n := p.Finalized.Load(); n != 1 {
		t.Errorf("finalized %d; want 1", n)
	}
	// Served from the cache now: not asked again.
	before := asked.Load()
	handshake(t, g.tlsAddr, "ok.test", p.Roots())
	if n := asked.Load(); n != before {
		t.Errorf("ask endpoint asked again for a cached name")
	}

	// The rate (1 per hour) is spent: an approved name is refused.
	if _, err := tls.Dial("tcp", g.tlsAddr, &tls.Config{ServerName: "ok2.test", RootCAs: p.Roots()}); err == nil {
		t.Error("handshake past the rate succeeded")
	}
	if n := p.Finalized.Load(); n != 1 {
		t.Errorf("finalized %d after the rate was spent; want 1", n)
	}
	var names []string
	for _, c := range m.Status().Certificates {
		if c.OnDemand && !c.NotAfter.IsZero() {
			names = append(names, c.Name)
		}
	}
	if len(names) != 1 || names[0] != "ok.test" {
		t.Errorf("on-demand certificates in status %v; want [ok.test]", names)
	}
}

// TestEAB: a CA that requires an external account binding issues to a
// Manager that has the right one.
func TestEAB(t *testing.T) {
	leakcheck.Check(t, leakMarkers...)
	const kid, mac = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	p := pebbletest.NewServer(t)
	g := startGateway(t)
	p.Start(t, pebbletest.Options{HTTPPort: g.httpPort, TLSPort: 1, EAB: &[2]string{kid, mac}})
	m := g.manage(t, acme.Options{
		Domains: []string{"a.test"}, CA: p.URL, CARoot: p.CARoot, Storage: t.TempDir(), HTTPAddress: g.httpAddr,
		EAB: &acme.EAB{KeyID: kid, MACKey: mac},
	})
	issued(t, m, "a.test", 30*time.Second)
}

// TestSetDomains: a domain added (a reload) is obtained while the others
// keep being served; a removed one is no longer served by name.
func TestSetDomains(t *testing.T) {
	leakcheck.Check(t, leakMarkers...)
	p := pebbletest.NewServer(t)
	g := startGateway(t)
	p.Start(t, pebbletest.Options{HTTPPort: g.httpPort, TLSPort: 1})
	m := g.manage(t, acme.Options{Domains: []string{"a.test"}, CA: p.URL, CARoot: p.CARoot, Storage: t.TempDir(), HTTPAddress: g.httpAddr})
	issued(t, m, "a.test", 30*time.Second)
	m.SetDomains([]string{"b.test"})
	issued(t, m, "b.test", 30*time.Second)
	handshake(t, g.tlsAddr, "b.test", p.Roots())
	for _, c := range m.Status().Certificates {
		if c.Name == "a.test" {
			t.Errorf("a.test still in the status after it was removed")
		}
	}
	// A client asking for a.test gets the default name's certificate
	// (b.test's), which does not verify for a.test.
	if c, err := tls.Dial("tcp", g.tlsAddr, &tls.Config{ServerName: "a.test", RootCAs: p.Roots()}); err == nil {
		c.Close()
		t.Error("a removed domain still verifies")
	}
}

// TestValidate: every problem of the options is reported, by field.
func TestValidate(t *testing.T) {
	o := acme.Options{
		Domains: []string{"ok.test", "*.wild.test", "10.0.0.1", "bad_name.test", "ok.test", "-x.test"},
		Email:   "not an email", CA: "http://insecure/dir",
		EAB:      &acme.EAB{MACKey: "!!"},
		OnDemand: &acme.OnDemand{Ask: "ftp://x"},
	}
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"acme: Storage: missing", "Domains[1]: \"*.wild.test\" is a wildcard", "Domains[2]: \"10.0.0.1\" is an IP address",
		"Domains[3]: \"bad_name.test\" is not a DNS name", "Domains[4]: \"ok.test\" is listed twice (also Domains[0])",
		"Domains[5]", "Email:", "CA:", "EAB.KeyID: missing", "EAB.MACKey: not base64url", "HTTPAddress: no challenge", "OnDemand.Ask:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	for _, name := range []string{"a.test", "xn--bcher-kva.example", "localhost", "a-b.c.d."} {
		if err := acme.CheckDomain(name); err != nil {
			t.Errorf("CheckDomain(%q): %v", name, err)
		}
	}
}
