package entrypoint

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// CertSource gives a TLS entrypoint the certificate for each handshake.
// Files serves the pair an operator configured; a source that obtains
// and renews certificates itself (ACME) serves the same way.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// Files is a CertSource of one certificate and key read from PEM files.
// Handshakes read it with one atomic load, so renewing it (Load) never
// stalls or blocks a client; a connection keeps the certificate it shook
// hands with.
type Files struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

var _ CertSource = (*Files)(nil)

// NewFiles reads the pair and serves it.
func NewFiles(certFile, keyFile string) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile}
	cert, err := f.read()
	if err != nil {
		return nil, err
	}
	f.cur.Store(cert)
	return f, nil
}

// read reads the pair from disk. The error names both files: crypto/tls
// says only which input was bad ("certificate input", "key input"), and
// an operator with several listeners needs to know which files.
func (f *Files) read() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls cert_file %s, key_file %s: %w", f.certFile, f.keyFile, err)
	}
	return &cert, nil
}

// GetCertificate returns the pair last installed.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// Load reads the files again. Nothing changes until install is called,
// so that several sources can be renewed together or not at all.
func (f *Files) Load() (install func(), cert *tls.Certificate, err error) {
	cert, err = f.read()
	if err != nil {
		return nil, nil, err
	}
	return func() { f.cur.Store(cert) }, cert, nil
}
