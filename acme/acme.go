// Package acme obtains and renews a TLS listener's certificates from an
// ACME CA (RFC 8555: Let's Encrypt, its staging, or any CA by its
// directory URL), through certmagic.
//
// A Manager is the listener's entrypoint.CertSource: every handshake
// takes the certificate from its in-memory cache. It answers the CA's
// challenges on the gateway's own sockets: HTTP-01 through
// HandleHTTPChallenge, which the cleartext challenge entrypoint offers
// (entrypoint.Options.Challenge), and TLS-ALPN-01 in GetCertificate,
// when the TLS entrypoint offers the acme-tls/1 protocol
// (entrypoint.Options.ALPNChallenge). Certificates, their keys and the
// ACME account live in the storage directory (files 0600, directories
// 0700), where certmagic's lock files let several replicas share one
// directory: one of them asks the CA, the others load what it stored.
//
// Start begins obtaining the configured names, each on a goroutine of
// its own that retries with backoff until it has a certificate;
// certmagic's cache then renews them ahead of expiry and staples OCSP.
// Whatever fails is logged, counted (Status) and retried, and the
// current certificate keeps being served meanwhile. With OnDemand, a
// name that arrives by SNI gets a certificate at its first handshake,
// once the operator's ask endpoint approves it and within a rate.
// Close stops every goroutine the Manager started.
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"

	"gateway/entrypoint"
)

// LetsEncrypt is the directory of Let's Encrypt's production CA, the
// default; LetsEncryptStaging is its staging CA, for trying a setup
// without its rate limits (its certificates are not trusted).
const (
	LetsEncrypt        = certmagic.LetsEncryptProductionCA
	LetsEncryptStaging = certmagic.LetsEncryptStagingCA
)

// Options configure a Manager.
type Options struct {
	// Email is the ACME account's contact; the CA writes about expiring
	// certificates and problems. Empty: an account with no contact.
	Email string
	// Domains are the names the Manager obtains certificates for at
	// Start (one certificate each).
	Domains []string
	// CA is the directory URL of the CA; empty means LetsEncrypt.
	CA string
	// CARoot, when set, is a PEM file of the certificates trusted for the
	// CA's directory (HTTPS), for a private or test CA; empty means the
	// system's roots.
	CARoot string
	// Storage is the directory certificates, keys and the account are
	// kept in; created (0700) when missing.
	Storage string
	// EAB is the external account binding a CA may require (ZeroSSL,
	// Google Trust Services, a private CA); nil: none.
	EAB *EAB
	// HTTPAddress, when set, is the address of the cleartext entrypoint
	// whose Challenge hook is HandleHTTPChallenge: HTTP-01 is offered to
	// the CA, answered there. Empty: no HTTP-01.
	HTTPAddress string
	// TLSAddress, when set, is the address of the TLS entrypoint this
	// Manager serves, with ALPNChallenge on: TLS-ALPN-01 is offered to
	// the CA, answered in GetCertificate. Empty: no TLS-ALPN-01.
	TLSAddress string
	// OnDemand, when set, obtains certificates for names that are not in
	// Domains at their first handshake, as it approves. Nil: only
	// Domains get certificates.
	OnDemand *OnDemand
	// Logger receives the Manager's and certmagic's events; nil means
	// slog.Default().
	Logger *slog.Logger

	// RenewCheckInterval is how often the cache looks for certificates
	// to renew, and OCSPCheckInterval for staples to refresh (0:
	// certmagic's 10 minutes and 1 hour).
	RenewCheckInterval, OCSPCheckInterval time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to obtain
	// a configured name's first certificate (0: 10s and 10 minutes).
	// Renewals follow certmagic's own schedule (1 minute, rising to
	// hours, for up to 30 days), the certificate served all along.
	RetryMin, RetryMax time.Duration
	// RenewalWindow is the fraction of a certificate's lifetime left when
	// its renewal begins (0: a third; Let's Encrypt's 90 days renew with
	// 30 left). It must be below 1.
	RenewalWindow float64
	// DisableARI stops asking the CA's renewal information (RFC 9773)
	// for when to renew: renewal then comes at the last third of a
	// certificate's life.
	DisableARI bool
}

// EAB is an external account binding (RFC 8555 section 7.3.4): the key
// id and the base64url MAC key the CA gave the operator.
type EAB struct {
	KeyID, MACKey string
}

// Manager obtains, renews and serves the certificates of one TLS
// listener. It is an entrypoint.CertSource.
type Manager struct {
	o       Options
	log     *slog.Logger
	cache   *certmagic.Cache
	magic   *certmagic.Config // the configured names'
	issuer  *certmagic.ACMEIssuer
	issuers []*certmagic.ACMEIssuer // magic's and onDemand's
	// onDemand, when OnDemand is set, serves every handshake and manages
	// the names that came by SNI; nil otherwise.
	onDemand *certmagic.Config
	// names are the configured domains, read by handshakes and by the
	// cache's maintenance, which must not wait on mu (SetDomains holds
	// it while it calls into the cache).
	names atomic.Pointer[[]string]
	stats stats // status.go
	ask   *asker

	ctx    context.Context // ends at Close: every attempt and retry
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines of Start and SetDomains

	mu      sync.Mutex // guards the fields below
	domains map[string]context.CancelFunc
	started bool
	closed  bool
}

var _ entrypoint.CertSource = (*Manager)(nil)

// New checks the options, opens the storage directory and builds the
// certificate cache; nothing is asked of the CA before Start.
func New(o Options) (*Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CA == "" {
		o.CA = LetsEncrypt
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 10 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 10 * time.Minute
	}
	var roots *x509.CertPool
	if o.CARoot != "" {
		var err error
		if roots, err = readRoots(o.CARoot); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Storage, 0o700); err != nil {
		return nil, fmt.Errorf("acme: storage: %w", err)
	}
	m := &Manager{o: o, log: o.Logger, domains: map[string]context.CancelFunc{}}
	initial := slices.Clone(o.Domains)
	m.names.Store(&initial)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	zl := zapLogger(o.Logger)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   m.configFor,
		RenewCheckInterval: o.RenewCheckInterval,
		OCSPCheckInterval:  o.OCSPCheckInterval,
		Logger:             zl,
	})
	tmpl := certmagic.ACMEIssuer{
		CA:                      o.CA,
		Email:                   o.Email,
		Agreed:                  true,
		TrustedRoots:            roots,
		Logger:                  zl,
		DisableHTTPChallenge:    o.HTTPAddress == "",
		DisableTLSALPNChallenge: o.TLSAddress == "",
	}
	if o.EAB != nil {
		tmpl.ExternalAccount = &acme.EAB{KeyID: o.EAB.KeyID, MACKey: o.EAB.MACKey}
	}
	newConfig := func() (*certmagic.Config, *certmagic.ACMEIssuer) {
		cfg := certmagic.New(m.cache, certmagic.Config{
			Storage:    &certmagic.FileStorage{Path: o.Storage},
			Logger:     zl,
			OnEvent:    m.onEvent,
			DisableARI: o.DisableARI,
			// The zero value is certmagic's default third.
			RenewalWindowRatio: o.RenewalWindow,
		})
		iss := certmagic.NewACMEIssuer(cfg, tmpl)
		cfg.Issuers = []certmagic.Issuer{iss}
		m.issuers = append(m.issuers, iss)
		return cfg, iss
	}
	m.magic, m.issuer = newConfig()
	// certmagic's maintenance skips every certificate of a config with
	// OnDemand (it renews them at handshakes instead): the configured
	// names get a config without it, so that they renew in the
	// background whatever arrives by SNI.
	if o.OnDemand != nil {
		m.ask = newAsker(o.OnDemand, o.Logger)
		m.onDemand, _ = newConfig()
		m.onDemand.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: m.decide}
	}
	m.Bound(o.HTTPAddress, o.TLSAddress)
	m.stats.init(o.Domains)
	return m, nil
}

// Bound gives the addresses the challenge entrypoints are bound to,
// when the options' had port 0; call it before Start. certmagic binds a
// challenge server of its own when it can: with the entrypoints holding
// these addresses, it finds them taken, and they answer.
func (m *Manager) Bound(httpAddr, tlsAddr string) {
	for _, iss := range m.issuers {
		if host, port, ok := splitPort(httpAddr); ok && !iss.DisableHTTPChallenge {
			iss.ListenHost, iss.AltHTTPPort = host, port
		}
		if host, port, ok := splitPort(tlsAddr); ok && !iss.DisableTLSALPNChallenge {
			iss.ListenHost, iss.AltTLSALPNPort = host, port
		}
	}
}

// splitPort is addr's host and port; ok is false for an empty or
// unusable address.
func splitPort(addr string) (host string, port int, ok bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(p)
	return h, n, err == nil && n > 0
}

// readRoots reads the PEM certificates of file into a pool.
func readRoots(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("acme: ca_root: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("acme: ca_root %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// GetCertificate returns the certificate for hello's server name from
// the cache, or the TLS-ALPN-01 challenge certificate when the CA's
// validator asks; with OnDemand, a name not yet cached is obtained now,
// if approved.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		// A client with no SNI (one that dialed an IP address) gets the
		// first configured name's.
		if names := *m.names.Load(); len(names) > 0 {
			h := *hello
			h.ServerName = names[0]
			hello = &h
		}
	}
	if m.onDemand != nil {
		return m.onDemand.GetCertificate(hello)
	}
	return m.magic.GetCertificate(hello)
}

// configured reports whether name is one of the configured domains.
func (m *Manager) configured(name string) bool {
	return slices.Contains(*m.names.Load(), name)
}

// configFor is the config that manages cert: the on-demand one for a
// certificate of none of the configured names.
func (m *Manager) configFor(cert certmagic.Certificate) (*certmagic.Config, error) {
	if m.onDemand != nil && !slices.ContainsFunc(cert.Names, m.configured) {
		return m.onDemand, nil
	}
	return m.magic, nil
}

// HandleHTTPChallenge answers an HTTP-01 challenge request of this
// Manager's (or of a replica sharing its storage) and reports true;
// anything else it leaves alone and reports false. It is
// entrypoint.Options.Challenge's shape.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return m.issuer.HandleHTTPChallenge(w, r)
}

// Start begins obtaining the configured names (loading them from the
// storage when they are there): each on a goroutine that retries until
// it has a certificate. Call it once the entrypoints are bound, so that
// the challenges reach them.
func (m *Manager) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return
	}
	m.started = true
	for _, d := range m.o.Domains {
		m.manageLocked(d)
	}
}

// SetDomains makes names the configured domains (a reload): new ones
// are obtained as Start does (at once, if started), removed ones are no
// longer renewed nor served by name.
func (m *Manager) SetDomains(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	var gone []certmagic.SubjectIssuer
	for d, stop := range m.domains {
		if !slices.Contains(names, d) {
			stop()
			delete(m.domains, d)
			gone = append(gone, certmagic.SubjectIssuer{Subject: d})
		}
	}
	if len(gone) > 0 {
		m.cache.RemoveManaged(gone)
	}
	for _, d := range m.o.Domains {
		if !slices.Contains(names, d) {
			m.stats.forget(d)
		}
	}
	m.o.Domains = slices.Clone(names)
	current := slices.Clone(names)
	m.names.Store(&current)
	m.stats.init(names)
	if m.started {
		for _, d := range names {
			if _, ok := m.domains[d]; !ok {
				m.manageLocked(d)
			}
		}
	}
	m.log.Info("acme domains set", "domains", names, "removed", len(gone))
}

// Domains are the configured names.
func (m *Manager) Domains() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.o.Domains)
}

// manageLocked starts the goroutine that brings name under management.
func (m *Manager) manageLocked(name string) {
	ctx, cancel := context.WithCancel(m.ctx)
	m.domains[name] = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.obtain(ctx, name)
	}()
}

// obtain tries until name is managed (loaded from storage or obtained)
// or ctx ends, waiting longer after each failure. Once managed, the
// cache's maintenance renews it.
func (m *Manager) obtain(ctx context.Context, name string) {
	wait := m.o.RetryMin
	for {
		err := m.magic.ManageSync(ctx, []string{name})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		m.stats.lastError(name, err)
		m.log.Warn("acme: no certificate yet; retrying", "domain", name, "retry_in", wait.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, m.o.RetryMax)
	}
}

// Close stops obtaining and renewing and waits for every goroutine the
// Manager started; certificates stay in the storage for the next start
// (or a replica).
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	m.cache.Stop()
	if m.ask != nil {
		m.ask.close()
	}
}

// onEvent follows certmagic's events into the counters and the status.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtained":
		m.stats.obtained(name, renewal)
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		m.stats.failed(name, err)
	case "cached_managed_cert":
		if sans, ok := data["sans"].([]string); ok {
			m.stats.seen(sans)
		}
	}
	return nil
}
