package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gateway/internal/testcert"
)

const tlsReloadYAML = `
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
    tls:
      cert_file: %q
      key_file: %q
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
routes:
  - upstream: app
`

// TestReloadRenewsListenerCertificate: a certificate renewed in place is
// served to new handshakes after POST /reload; files that no longer make
// a certificate fail the reload (400, and on the SIGHUP path an error)
// naming the file, and the listener keeps serving the last good one, as
// it does when a reload fails for another reason after the certificate
// was read.
func TestReloadRenewsListenerCertificate(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }))
	t.Cleanup(origin.Close)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testcert.Write(t, certFile, keyFile, 1, "A")
	path := filepath.Join(dir, "gateway.yaml")
	good := fmt.Sprintf(tlsReloadYAML, certFile, keyFile, origin.URL)
	writeConf := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf(good)
	a := startAppFile(t, path)
	gw := a.server.Addrs()[0].String()
	adm := "http://" + a.adminLn.Addr().String()

	// leaf handshakes anew and returns the certificate presented, after
	// checking that HTTP/2 is still negotiated and a request is served.
	leaf := func() *x509.Certificate {
		t.Helper()
		tr := &http.Transport{
			// The test reads whichever certificate is presented.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			ForceAttemptHTTP2: true,
			DisableKeepAlives: true,
		}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + gw + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "up" || resp.ProtoMajor != 2 {
			t.Fatalf("GET over TLS: %s %s %q; want 200 HTTP/2 up", resp.Status, resp.Proto, b)
		}
		return resp.TLS.PeerCertificates[0]
	}
	reload := func() (int, string) {
		t.Helper()
		resp, err := http.Post(adm+"/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	want := func(when string, serial int64, name string) {
		t.Helper()
		if c := leaf(); c.SerialNumber.Int64() != serial || c.Subject.CommonName != name {
			t.Fatalf("%s: got certificate %s (serial %d); want %s (serial %d)", when, c.Subject.CommonName, c.SerialNumber, name, serial)
		}
	}

	want("at start", 1, "A")
	testcert.Write(t, certFile, keyFile, 2, "B")
	if code, body := reload(); code != http.StatusOK {
		t.Fatalf("reload with certificate B: %d %s", code, body)
	}
	want("after reloading B", 2, "B")

	// A renewal gone wrong: the reload fails naming the file, B stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN GARBAGE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := reload()
	if code != http.StatusBadRequest || !strings.Contains(body, certFile) || !strings.Contains(body, "listeners[0].tls.cert_file") {
		t.Fatalf("reload with a garbage certificate: %d %q; want 400 naming listeners[0].tls.cert_file and %s", code, body, certFile)
	}
	want("after the failed reload", 2, "B")
	if err := a.reloadSignal(); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("SIGHUP reload with a garbage certificate: got %v; want an error naming %s", err, certFile)
	}
	want("after the failed SIGHUP reload", 2, "B")

	// A good certificate with a config that fails to build (no access
	// log can be created under /proc): no certificate is swapped either.
	testcert.Write(t, certFile, keyFile, 3, "C")
	writeConf(strings.Replace(good, "access_log: {enabled: false}", "access_log: {output: /proc/gateway-test-access.log}", 1))
	if code, body := reload(); code != http.StatusBadRequest {
		t.Fatalf("reload with a bad access log: %d %s; want 400", code, body)
	}
	want("after the reload that failed to build", 2, "B")
	writeConf(good)
	if code, body := reload(); code != http.StatusOK {
		t.Fatalf("reload with certificate C: %d %s", code, body)
	}
	want("after reloading C", 3, "C")
}
