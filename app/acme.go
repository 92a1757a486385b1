package app

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"time"

	"gateway/acme"
	"gateway/admin"
	"gateway/config"
	"gateway/entrypoint"
	"gateway/metrics"
)

// acmeListener is a TLS listener whose certificates come from an ACME
// CA: its Manager lives as long as the listener (from New to the end of
// Serve), across reloads, which may change its domains only.
type acmeListener struct {
	index  int    // in cfg.Listeners
	addr   string // the listener's address
	httpEP int    // the challenge listener's entrypoint index; -1: none
	m      *acme.Manager
}

// acmeOptions maps a listener's tls.acme to the Manager's options: the
// challenges it lists answered on the listener itself (TLS-ALPN-01) and
// on http_address (HTTP-01).
func acmeOptions(l config.Listener, log *slog.Logger) acme.Options {
	a := l.TLS.ACME
	o := acme.Options{
		Email: a.Email, Domains: slices.Clone(a.Domains), CA: a.CA, CARoot: a.CARoot, Storage: a.Storage,
		Logger: log,
	}
	if a.EAB != nil {
		o.EAB = &acme.EAB{KeyID: a.EAB.KeyID, MACKey: a.EAB.MACKey}
	}
	if slices.Contains(a.Challenges, config.ChallengeHTTP01) {
		o.HTTPAddress = a.HTTPAddress
	}
	if slices.Contains(a.Challenges, config.ChallengeTLSALPN01) {
		o.TLSAddress = l.Address
	}
	if od := a.OnDemand; od != nil {
		o.OnDemand = &acme.OnDemand{Ask: od.Ask, AskTimeout: od.AskTimeout.D(), Rate: float64(od.Rate), Burst: od.Burst}
	}
	return o
}

// checkACME reports what acme.Options.Validate finds in each listener's
// tls.acme, at its field; what the file alone tells (challenges,
// http_address, storage, ca_root) config checks.
func checkACME(c *config.Config, r *config.Reporter) {
	for i, l := range c.Listeners {
		if l.TLS.ACME == nil {
			continue
		}
		o := acmeOptions(l, nil)
		report(r, config.IndexPath("listeners", i)+".tls.acme", o.Validate(), map[string]string{
			"Domains": "domains", "Email": "email", "CA": "ca", "Storage": "storage",
			"EAB.KeyID": "eab.key_id", "EAB.MACKey": "eab.mac_key", "OnDemand.Ask": "on_demand.ask",
			// config reports these in the file's terms.
			"HTTPAddress": "", "OnDemand.Burst": "", "OnDemand.Rate": "", "RenewalWindow": "",
		})
	}
}

// CheckPorts reports each ACME http_address that cannot be bound now
// (another process has it, or port 80 needs a privilege the user
// lacks). gateway validate runs it; a reload does not, as the running
// gateway holds those ports itself.
func CheckPorts(c *config.Config, r *config.Reporter) {
	for i, l := range c.Listeners {
		a := l.TLS.ACME
		if a == nil || a.HTTPAddress == "" {
			continue
		}
		p := config.IndexPath("listeners", i) + ".tls.acme.http_address"
		if r.Rejected(p) {
			continue
		}
		ln, err := net.Listen("tcp", a.HTTPAddress)
		if err != nil {
			r.Report(p, "%q cannot be bound: %v", a.HTTPAddress, err)
			continue
		}
		ln.Close()
	}
}

// openACME makes the Managers of cfg's ACME listeners and returns the
// entrypoint options they add: each listener's certificates and
// TLS-ALPN-01, and an HTTP-01 challenge listener that redirects the rest
// to HTTPS; fields name the config field of each added one's address.
func (a *App) openACME(cfg *config.Config, ls []entrypoint.Options) (_ []entrypoint.Options, fields []string, err error) {
	for i, l := range cfg.Listeners {
		if l.TLS.ACME == nil {
			continue
		}
		o := acmeOptions(l, a.log.With("listener", l.Address))
		m, err := acme.New(o)
		if err != nil {
			return nil, nil, err
		}
		al := &acmeListener{index: i, addr: l.Address, httpEP: -1, m: m}
		a.acme = append(a.acme, al)
		ls[i].Certs = m
		ls[i].ALPNChallenge = o.TLSAddress != ""
		if o.HTTPAddress != "" {
			_, port, _ := net.SplitHostPort(l.Address)
			al.httpEP = len(ls)
			ls = append(ls, entrypoint.Options{
				Address:           o.HTTPAddress,
				Challenge:         m.HandleHTTPChallenge,
				Handler:           acme.Redirect(port),
				ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
				ReadTimeout:       l.ReadTimeout.D(),
				WriteTimeout:      l.WriteTimeout.D(),
				IdleTimeout:       l.IdleTimeout.D(),
			})
			fields = append(fields, config.IndexPath("listeners", i)+".tls.acme.http_address")
		}
	}
	if m := a.shared.Metrics(); m != nil && len(a.acme) > 0 {
		srcs := map[string]metrics.ACMESource{}
		for _, al := range a.acme {
			srcs[al.addr] = al.m
		}
		m.SetACME(srcs)
	}
	return ls, fields, nil
}

// startACME begins obtaining certificates, once the challenge sockets
// are bound (and their ports known, for an address with port 0).
func (a *App) startACME() {
	addrs := a.server.Addrs()
	at := func(i int) string {
		if i < 0 || i >= len(addrs) {
			return ""
		}
		return addrs[i].String()
	}
	for _, al := range a.acme {
		al.m.Bound(at(al.httpEP), at(al.index))
		al.m.Start()
	}
}

// closeACME stops every Manager's goroutines.
func (a *App) closeACME() {
	for _, al := range a.acme {
		al.m.Close()
	}
}

// setACMEDomains gives each Manager the domains of cfg (a reload).
func (a *App) setACMEDomains(cfg *config.Config) {
	for _, al := range a.acme {
		want := cfg.Listeners[al.index].TLS.ACME.Domains
		if !slices.Equal(al.m.Domains(), want) {
			al.m.SetDomains(want)
		}
	}
}

// withoutDomains is ls with every tls.acme's domains left out: what a
// reload may not change of the listeners.
func withoutDomains(ls []config.Listener) []config.Listener {
	out := slices.Clone(ls)
	for i := range out {
		if a := out[i].TLS.ACME; a != nil {
			c := *a
			c.Domains = nil
			out[i].TLS.ACME = &c
		}
	}
	return out
}

// Certificates reports the ACME listeners' certificates for the admin
// endpoints; admin.ErrDisabled when no listener uses ACME.
func (a *App) Certificates(context.Context) (admin.Certificates, error) {
	if len(a.acme) == 0 {
		return admin.Certificates{}, admin.ErrDisabled
	}
	now := time.Now()
	out := admin.Certificates{Certificates: []admin.Certificate{}}
	for _, al := range a.acme {
		st := al.m.Status()
		out.Obtained += st.Obtained
		out.Renewed += st.Renewed
		out.Failures += st.Failures
		for _, c := range st.Certificates {
			ac := admin.Certificate{
				Listener: al.addr, Name: c.Name, OnDemand: c.OnDemand, NotAfter: c.NotAfter,
				Serial: c.Serial, Issuer: c.Issuer, OCSPStapled: c.OCSPStapled,
				Failures: c.Failures, LastError: c.LastError, LastErrorAt: c.LastErrorAt,
			}
			if !c.NotAfter.IsZero() {
				days := c.NotAfter.Sub(now).Hours() / 24
				ac.DaysLeft = &days
			}
			out.Certificates = append(out.Certificates, ac)
		}
	}
	return out, nil
}

// acmeHTTPAddress is the address of the i-th challenge listener.
func (a *App) acmeHTTPAddress(i int) string {
	for _, al := range a.acme {
		if h := a.cfg.Listeners[al.index].TLS.ACME.HTTPAddress; h != "" && slices.Contains(a.cfg.Listeners[al.index].TLS.ACME.Challenges, config.ChallengeHTTP01) {
			if i == 0 {
				return h
			}
			i--
		}
	}
	return ""
}
