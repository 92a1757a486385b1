package acme

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"

	"gateway/internal/fielderr"
)

// Validate reports every problem with the options, each an
// *fielderr.Error naming its field.
func (o *Options) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fielderr.New("acme", field, fmt.Sprintf(format, args...)))
	}
	if o.Storage == "" {
		bad("Storage", "missing (want a directory for certificates, keys and the account, e.g. /var/lib/gateway/acme)")
	}
	if len(o.Domains) == 0 && o.OnDemand == nil {
		bad("Domains", "no domains (want at least one name, or on_demand)")
	}
	seen := map[string]int{}
	for i, d := range o.Domains {
		if err := CheckDomain(d); err != nil {
			errs = append(errs, fielderr.At("acme", "Domains", i, err.Error()))
			continue
		}
		if j, ok := seen[strings.ToLower(d)]; ok {
			e := fielderr.At("acme", "Domains", i, fmt.Sprintf("%q is listed twice", d))
			e.Also = j
			errs = append(errs, e)
			continue
		}
		seen[strings.ToLower(d)] = i
	}
	if o.Email != "" {
		if a, err := mail.ParseAddress(o.Email); err != nil || a.Address != o.Email {
			bad("Email", "%q is not an email address", o.Email)
		}
	}
	if o.CA != "" {
		if u, err := url.Parse(o.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("CA", "%q is not an https:// URL (want the CA's directory, e.g. %s)", o.CA, LetsEncrypt)
		}
	}
	if e := o.EAB; e != nil {
		if e.KeyID == "" {
			bad("EAB.KeyID", "missing (the CA gives it with the MAC key)")
		}
		if e.MACKey == "" {
			bad("EAB.MACKey", "missing (the CA gives it with the key id)")
		} else if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e.MACKey, "=")); err != nil {
			bad("EAB.MACKey", "not base64url: %v", err)
		}
	}
	if o.RenewalWindow < 0 || o.RenewalWindow >= 1 {
		bad("RenewalWindow", "%g: want a fraction from 0 to below 1", o.RenewalWindow)
	}
	if o.HTTPAddress == "" && o.TLSAddress == "" {
		bad("HTTPAddress", "no challenge can be answered (want HTTP-01 on a cleartext address, TLS-ALPN-01 on the listener, or both)")
	}
	if od := o.OnDemand; od != nil {
		if u, err := url.Parse(od.Ask); od.Ask == "" {
			bad("OnDemand.Ask", "missing (want the URL that approves a name, e.g. http://127.0.0.1:5555/check)")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("OnDemand.Ask", "%q is not an http:// or https:// URL", od.Ask)
		}
		if od.Burst < 0 {
			bad("OnDemand.Burst", "%d: at least 1", od.Burst)
		}
		if od.Rate < 0 {
			bad("OnDemand.Rate", "%g: must be positive", od.Rate)
		}
	}
	return errors.Join(errs...)
}

// CheckDomain reports why name cannot have a certificate from an ACME
// CA through the challenges the gateway answers: it must be a DNS name
// (letters, digits and hyphens in dot-separated labels of 1 to 63, 253
// in all), not an IP address, and not a wildcard (which only DNS-01
// proves).
func CheckDomain(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case strings.HasPrefix(name, "*."):
		return fmt.Errorf("%q is a wildcard, which needs the DNS-01 challenge (not supported; list the names)", name)
	case len(name) > 253:
		return fmt.Errorf("%q is longer than 253 characters", name)
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("%q is an IP address, not a DNS name", name)
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(name, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return fmt.Errorf("%q is not a DNS name (each dot-separated label has 1 to 63 characters)", name)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a DNS name (a label cannot start or end with a hyphen)", name)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q is not a DNS name (%q is not a letter, digit or hyphen; write an IDN in its xn-- form)", name, c)
			}
		}
	}
	return nil
}
