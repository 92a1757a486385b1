package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// handshake dials addr over TLS and returns the leaf certificate the
// listener presented, checking that ALPN still offers HTTP/2.
func handshake(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn := dialTLS(t, addr, "h2", "http/1.1")
	defer conn.Close()
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN: got %q; want h2", st.NegotiatedProtocol)
	}
	return st.PeerCertificates[0]
}

func dialTLS(t *testing.T, addr string, protos ...string) *tls.Conn {
	t.Helper()
	// The test reads whichever certificate is presented, so it does not
	// verify it.
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: protos})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	return conn
}

// certIn parses the certificate in a PEM file.
func certIn(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func copyFile(t *testing.T, dst, src string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLoadCertificatesRenewsInPlace: a certificate renewed in the
// listener's own files is served by new handshakes once LoadCertificates'
// install runs, and not before; a connection made earlier keeps its
// certificate and keeps serving; files that no longer load are an error
// naming the listener and the file, and the listener keeps the
// certificate it had.
func TestLoadCertificatesRenewsInPlace(t *testing.T) {
	checkLeaks(t)
	certFile, keyFile, _ := writeCert(t, t.TempDir())
	certB, keyB, _ := writeCert(t, t.TempDir())
	a, b := certIn(t, certFile), certIn(t, certB)
	r := startServer(t, okGateway(t), ListenerOptions{CertFile: certFile, KeyFile: keyFile})

	if got := handshake(t, r.addr); !got.Equal(a) {
		t.Fatalf("first handshake: got certificate %x; want A", got.SubjectKeyId)
	}
	old := dialTLS(t, r.addr, "http/1.1")
	defer old.Close()

	// Renewed on disk: nothing changes until the reload installs it.
	copyFile(t, certFile, certB)
	copyFile(t, keyFile, keyB)
	if got := handshake(t, r.addr); !got.Equal(a) {
		t.Fatal("files replaced, no reload: got certificate B; want A still")
	}
	install, err := r.LoadCertificates()
	if err != nil {
		t.Fatalf("LoadCertificates: %v", err)
	}
	if got := handshake(t, r.addr); !got.Equal(a) {
		t.Fatal("loaded, not installed: got certificate B; want A still")
	}
	install()
	if got := handshake(t, r.addr); !got.Equal(b) {
		t.Fatal("after install: got certificate A; want B")
	}

	// The connection made before the reload keeps A and still serves.
	if got := old.ConnectionState().PeerCertificates[0]; !got.Equal(a) {
		t.Error("earlier connection: certificate changed")
	}
	old.SetDeadline(time.Now().Add(clientTimeout))
	if _, err := old.Write([]byte("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(old), nil)
	if err != nil {
		t.Fatalf("request on the earlier connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("request on the earlier connection: %s; want 200", resp.Status)
	}

	// Garbage, and a key that is not the certificate's: refused, B stays.
	for _, tt := range []struct {
		name  string
		write func()
	}{
		{"garbage", func() { copyFile(t, certFile, writeFile(t, "renewal went wrong\n")) }},
		{"mismatch", func() { copyFile(t, certFile, certB); copyFile(t, keyFile, keyFileOf(t)) }},
	} {
		name := tt.name
		tt.write()
		install, err := r.LoadCertificates()
		if err == nil || install != nil {
			t.Fatalf("%s: LoadCertificates: got (%v, %v); want (nil, error)", name, install != nil, err)
		}
		// The listener is named by its configured address.
		for _, w := range []string{"listener 127.0.0.1:0: ", certFile} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q; want it to name %q", name, err, w)
			}
		}
		if got := handshake(t, r.addr); !got.Equal(b) {
			t.Fatalf("%s: after the failed load: got another certificate; want B", name)
		}
	}
}

// writeFile writes text to a new file and returns its name.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	f := t.TempDir() + "/file"
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// keyFileOf writes a fresh pair and returns its key file: a key that
// matches no other certificate.
func keyFileOf(t *testing.T) string {
	t.Helper()
	_, key, _ := writeCert(t, t.TempDir())
	return key
}

// TestLoadCertificatesAllOrNothing: with two TLS listeners, a pair that
// fails to load on the second leaves the first on its old certificate
// too; handshakes racing installs always get a whole certificate.
func TestLoadCertificatesAllOrNothing(t *testing.T) {
	checkLeaks(t)
	c1, k1, _ := writeCert(t, t.TempDir())
	c2, k2, _ := writeCert(t, t.TempDir())
	s, err := newServer(okGateway(t), []ListenerOptions{
		{Address: "127.0.0.1:0", CertFile: c1, KeyFile: k1},
		{Address: "127.0.0.1:0"},
		{Address: "127.0.0.1:0", CertFile: c2, KeyFile: k2},
	}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addr1, addr2 := s.Addrs()[0].String(), s.Addrs()[2].String()
	old := map[string]*x509.Certificate{addr1: certIn(t, c1), addr2: certIn(t, c2)}

	// Renew the first listener's pair, break the second's.
	nc, nk, _ := writeCert(t, t.TempDir())
	copyFile(t, c1, nc)
	copyFile(t, k1, nk)
	if err := os.WriteFile(k2, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	install, err := s.LoadCertificates()
	if err == nil {
		t.Fatal("LoadCertificates with a broken key: got nil error")
	}
	if !strings.Contains(err.Error(), "listener 127.0.0.1:0: ") || !strings.Contains(err.Error(), k2) {
		t.Errorf("error %q; want it to name the listener and %s", err, k2)
	}
	if install != nil {
		t.Error("got an install function with the error")
	}
	if got := handshake(t, addr1); !got.Equal(old[addr1]) {
		t.Fatal("first listener: renewed although the second listener's pair failed")
	}

	// Repaired: both renew; handshakes during repeated installs succeed.
	copyFile(t, c2, nc)
	copyFile(t, k2, nk)
	renewed := certIn(t, nc)
	install, err = s.LoadCertificates()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				install()
			}
		}()
	}
	for _, addr := range []string{addr1, addr2} {
		if got := handshake(t, addr); !got.Equal(old[addr]) && !got.Equal(renewed) {
			t.Errorf("%s: handshake during installs: unknown certificate", addr)
		}
	}
	wg.Wait()
	for _, addr := range []string{addr1, addr2} {
		if got := handshake(t, addr); !got.Equal(renewed) {
			t.Errorf("%s: got the old certificate; want the renewed one", addr)
		}
	}
}
