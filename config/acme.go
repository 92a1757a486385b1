package config

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// validateACME checks what the file alone can tell of a listener's
// tls.acme (package acme's Options.Validate, through app's Check, checks
// the names, URLs and the rest): that it is not mixed with files, that
// its challenges can be answered, that its files and directory can be
// used, and that its http_address can be bound beside the others. It
// returns binds with the http_address added.
func validateACME(d *decoder, p string, l Listener, binds []bind) []bind {
	a := l.TLS.ACME
	ap := p + ".tls.acme"
	if l.TLS.CertFile != "" || l.TLS.KeyFile != "" {
		d.report(ap, "cannot be used with cert_file and key_file (a listener's certificates come from files or from ACME, not both)")
	}
	for i, c := range a.Challenges {
		oneOf(d, indexPath(ap+".challenges", i), c, ChallengeHTTP01, ChallengeTLSALPN01)
	}
	hasHTTP := slices.Contains(a.Challenges, ChallengeHTTP01)
	switch {
	case len(a.Challenges) == 0:
		d.report(ap+".challenges", "empty (want http-01, tls-alpn-01 or both)")
	case hasHTTP && a.HTTPAddress == "":
		d.report(ap+".challenges", "http-01 needs http_address (a cleartext listener the CA can reach on port 80, e.g. \":80\")")
	case !hasHTTP && a.HTTPAddress != "":
		d.report(ap+".http_address", "set, but challenges does not list http-01")
	}
	if a.HTTPAddress != "" {
		hp := ap + ".http_address"
		if host, port, err := parseBind(a.HTTPAddress); err != nil {
			d.report(hp, "invalid address %q: %v (want host:port, e.g. :80)", a.HTTPAddress, err)
		} else {
			b := bind{path: hp, addr: a.HTTPAddress, host: host, port: port}
			reportConflict(d, b, binds)
			binds = append(binds, b)
		}
	}
	if checkFile(d, ap+".ca_root", a.CARoot) {
		if b, err := os.ReadFile(a.CARoot); err == nil && !x509.NewCertPool().AppendCertsFromPEM(b) {
			d.report(ap+".ca_root", "%q holds no PEM certificate", a.CARoot)
		}
	}
	checkStorage(d, ap+".storage", a.Storage)
	if od := a.OnDemand; od != nil {
		op := ap + ".on_demand"
		if od.Burst < 1 {
			d.report(op+".burst", "%d: at least 1", od.Burst)
		}
		if od.Rate <= 0 {
			d.report(op+".rate", "%s: must be positive (e.g. 10/m)", od.Rate)
		}
		if od.AskTimeout <= 0 {
			d.report(op+".ask_timeout", "%s: must be positive", od.AskTimeout)
		}
	}
	return binds
}

// checkStorage reports a storage directory the gateway could not write
// certificates into: not a directory, or not writable (or, when it does
// not exist yet, its nearest existing parent is not). It creates and
// removes a file to know, as permissions alone do not tell (read-only
// mounts, ACLs).
func checkStorage(d *decoder, path, dir string) {
	if dir == "" {
		return
	}
	at := dir
	for {
		fi, err := os.Stat(at)
		if err == nil {
			if !fi.IsDir() {
				d.report(path, "%q is not a directory", at)
				return
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			d.report(path, "%v", err)
			return
		}
		parent := filepath.Dir(at)
		if parent == at {
			d.report(path, "%v", err)
			return
		}
		at = parent
	}
	f, err := os.CreateTemp(at, ".gateway-write-check-*")
	if err != nil {
		if at != dir {
			d.report(path, "%q cannot be created: %v", dir, err)
		} else {
			d.report(path, "%q is not writable: %v", dir, err)
		}
		return
	}
	f.Close()
	os.Remove(f.Name())
}
