// Package pebbletest runs pebble, Let's Encrypt's test ACME CA,
// in-process on loopback for tests: its directory over HTTPS and its
// validation authority, which reaches the gateway's challenge ports on
// 127.0.0.1 for any name through a DNS server of its own.
package pebbletest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"gateway/internal/testcert"
)

// CA is pebble, run in-process on loopback: its directory over HTTPS (a
// certificate of testcert's CA, which CARoot names), and its validation
// authority reaching the gateway's challenge ports on 127.0.0.1 through
// a DNS server of the test's that answers 127.0.0.1 for every name.
type CA struct {
	URL    string // the directory
	CARoot string // PEM file trusted for the directory's HTTPS
	srv    *httptest.Server
	ca     *ca.CAImpl

	handler atomic.Pointer[http.Handler]
	// Orders and Finalized count new-order and finalize requests: one
	// finalize is one certificate issued.
	Orders, Finalized atomic.Int64
}

// Options are what a test chooses of the CA.
type Options struct {
	// HTTPPort and TLSPort are where the validation authority connects
	// for HTTP-01 and TLS-ALPN-01.
	HTTPPort, TLSPort int
	// Validity is the certificates' lifetime in seconds (0: 90 days).
	Validity uint64
	// EAB, when set, makes the CA require this key id and MAC key.
	EAB *[2]string
}

// NewServer starts the HTTPS listener, so that its URL is known before
// the gateway's ports are; Start makes it a CA. It sets the environment
// pebble reads (no validation sleeps, real validation, no bad nonces),
// so the test cannot be parallel.
func NewServer(t *testing.T) *CA {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "0")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	dir := t.TempDir()
	caFile, certFile, keyFile := testcert.WriteCA(t, dir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	p := &CA{CARoot: caFile}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/order-plz":
			p.Orders.Add(1)
		case strings.HasPrefix(r.URL.Path, "/finalize-order/"):
			p.Finalized.Add(1)
		}
		h := p.handler.Load()
		if h == nil {
			http.Error(w, "not started", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.URL = p.srv.URL + wfe.DirectoryPath
	return p
}

// Start makes the listener a CA whose validation authority connects to
// o's ports.
func (p *CA) Start(t *testing.T, o Options) {
	t.Helper()
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(testWriter{t}, "pebble ", 0)
	}
	store := db.NewMemoryStore()
	p.ca = ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "test", ValidityPeriod: o.Validity},
	})
	v := va.New(logger, o.HTTPPort, o.TLSPort, false, startDNS(t), store)
	if o.EAB != nil {
		if err := store.AddExternalAccountKeyByID(o.EAB[0], o.EAB[1]); err != nil {
			t.Fatal(err)
		}
	}
	w := wfe.New(logger, store, v, p.ca, []string{"pebble.letsencrypt.org"}, false, o.EAB != nil, 0, 0)
	h := w.Handler()
	p.handler.Store(&h)
}

// Stop takes the CA away: its socket is closed, every connection
// refused.
func (p *CA) Stop() { p.srv.Close() }

// Roots is a pool of the CA's issuing root, for a client to verify the
// certificates it issued.
func (p *CA) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.GetRootCert(0).Cert)
	return pool
}

// startDNS serves A 127.0.0.1 (and no AAAA) for every name, over TCP
// (as pebble's validation authority asks) on loopback, and returns its
// address.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		for _, q := range req.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		_ = srv.Shutdown()
		wg.Wait()
	})
	return ln.Addr().String()
}

// testWriter sends a log to the test's.
type testWriter struct{ t *testing.T }

// Writer is an io.Writer into t's log, for a logger in a verbose run.
func Writer(t *testing.T) io.Writer { return testWriter{t} }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// Port is addr's port.
func Port(t *testing.T, addr net.Addr) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}
