package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestACMEErrors: tls.acme's problems the file shows are reported with
// their line and field, all at once: mixed with cert_file, challenges
// that cannot be answered, http_address conflicting with a listener,
// ca_root and storage that cannot be used, on-demand bounds.
func TestACMEErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, acme string
		want       []string
	}{
		{"with cert_file", `      cert_file: /nonexistent/c
      key_file: /nonexistent/k
      acme:
        domains: [a.example]
        storage: ` + dir + "\n",
			[]string{"t.yaml:6: listeners[0].tls.acme: cannot be used with cert_file and key_file"}},
		{"http-01 without http_address", `      acme:
        domains: [a.example]
        storage: ` + dir + `
        challenges: [http-01, dns-01]
`, []string{
			`t.yaml:7: listeners[0].tls.acme.challenges[1]: invalid value "dns-01" (want http-01 or tls-alpn-01)`,
			"t.yaml:7: listeners[0].tls.acme.challenges: http-01 needs http_address"}},
		{"http_address conflicts", `      acme:
        domains: [a.example]
        storage: ` + dir + `
        http_address: 127.0.0.1:8080
`, []string{`t.yaml:7: listeners[0].tls.acme.http_address: "127.0.0.1:8080" conflicts with listeners[0].address "127.0.0.1:8080" (line 2)`}},
		{"http_address without http-01", `      acme:
        domains: [a.example]
        storage: ` + dir + `
        challenges: [tls-alpn-01]
        http_address: ":80"
`, []string{"t.yaml:8: listeners[0].tls.acme.http_address: set, but challenges does not list http-01"}},
		{"files", `      acme:
        domains: [a.example]
        storage: ` + notDir + `
        ca_root: ` + notPEM + `
`, []string{
			`t.yaml:6: listeners[0].tls.acme.storage: "` + notDir + `" is not a directory`,
			`t.yaml:7: listeners[0].tls.acme.ca_root: "` + notPEM + `" holds no PEM certificate`}},
		{"storage not creatable", `      acme:
        domains: [a.example]
        storage: ` + notDir + `/sub
`, []string{`t.yaml:6: listeners[0].tls.acme.storage: stat ` + notDir + `/sub: not a directory`}},
		{"on_demand bounds", `      acme:
        storage: ` + dir + `
        on_demand:
          ask: http://127.0.0.1:5555/check
          burst: 0
          rate: 0
`, []string{
			"t.yaml:8: listeners[0].tls.acme.on_demand.burst: 0: at least 1",
			"t.yaml:9: listeners[0].tls.acme.on_demand.rate: 0/s: must be positive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(minimal, "8080\n", "8080\n    tls:\n"+tc.acme, 1)
			_, err := Parse("t.yaml", []byte(in))
			if err == nil {
				t.Fatalf("no error for\n%s", in)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got\n%v\nwant it to contain\n%s", err, w)
				}
			}
		})
	}
}

// TestACMEDefaults: challenges follow http_address, ca defaults to Let's
// Encrypt (letsencrypt-staging names its staging directory), on_demand
// gets its rate, and the EAB MAC key is redacted.
func TestACMEDefaults(t *testing.T) {
	dir := t.TempDir()
	in := strings.Replace(minimal, "8080\n", `8080
    tls:
      acme:
        domains: [a.example]
        storage: `+dir+`
        http_address: ":80"
        eab: {key_id: k, mac_key: c2VjcmV0}
        on_demand: {ask: "http://127.0.0.1:5555/check"}
  - address: 127.0.0.1:8443
    tls:
      acme:
        domains: [b.example]
        storage: `+dir+`
        ca: letsencrypt-staging
`, 1)
	cfg, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Listeners[0].TLS.ACME, cfg.Listeners[1].TLS.ACME
	if strings.Join(a.Challenges, ",") != "http-01,tls-alpn-01" || strings.Join(b.Challenges, ",") != "tls-alpn-01" {
		t.Errorf("challenges %v and %v; want [http-01 tls-alpn-01] and [tls-alpn-01]", a.Challenges, b.Challenges)
	}
	if a.CA != LetsEncryptDirectory || b.CA != LetsEncryptStagingDirectory {
		t.Errorf("ca %q and %q; want Let's Encrypt's and its staging", a.CA, b.CA)
	}
	if od := a.OnDemand; od.Burst != 10 || od.Rate.String() != "10/m" || od.AskTimeout.D().String() != "10s" {
		t.Errorf("on_demand %+v; want burst 10, rate 10/m, ask_timeout 10s", od)
	}
	if r := cfg.Redacted(); r.Listeners[0].TLS.ACME.EAB.MACKey != "REDACTED" || a.EAB.MACKey != "c2VjcmV0" {
		t.Errorf("redacted mac_key %q, original %q", r.Listeners[0].TLS.ACME.EAB.MACKey, a.EAB.MACKey)
	}
}
