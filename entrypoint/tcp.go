package entrypoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"golang.org/x/net/http2"
)

// TCP is an entrypoint on a TCP socket: HTTP/1.1, and HTTP/2 over TLS
// (by ALPN) or, with H2C, in cleartext. net/http's server speaks HTTP/1;
// x/net/http2's speaks HTTP/2, and connListener hands it the HTTP/2
// connections through h2Guard. net/http's own HTTP/2 server takes its
// connections from net/http alone, so nothing could stand between it
// and a TLS connection's plaintext, and a connection error it could be
// told of is not a type outside net/http; x/net/http2 answers a read
// that fails with its ConnectionError with that GOAWAY. x/net marks the
// server deprecated in favour of net/http's, which from Go 1.27 it
// wraps; TestRapidResetFlood tells if the GOAWAY's code is then lost.
type TCP struct {
	srv *http.Server
	//lint:ignore SA1019 x/net/http2's server is the one that serves a connection handed to it, as h2Guard needs (see TCP)
	h2  *http2.Server
	tls *tls.Config // nil: cleartext
	h2c bool
	// h2Handler is srv's handler behind withStack, for HTTP/2 streams.
	h2Handler http.Handler
	base      context.Context
	log       *slog.Logger

	mu    sync.Mutex // guards the fields below
	ln    net.Listener
	conns *connListener // set by Serve
}

var _ Entrypoint = (*TCP)(nil)

// NewTCP builds the servers of one entrypoint; every request's context
// descends from base. It binds nothing yet.
func NewTCP(h http.Handler, o Options, base context.Context, log *slog.Logger) (*TCP, error) {
	if o.ReadHeaderTimeout < 0 || o.ReadTimeout < 0 || o.WriteTimeout < 0 || o.IdleTimeout < 0 || o.MaxHeaderBytes < 0 {
		return nil, errors.New("timeouts and sizes must not be negative")
	}
	if base == nil {
		base = context.Background()
	}
	if log == nil {
		log = slog.Default()
	}
	// net/http speaks HTTP/1 only: connListener has already sent every
	// HTTP/2 connection to the HTTP/2 server.
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Addr:              o.Address,
		Handler:           checkFraming(withIOTimeouts(withHooks(h, o), o.ReadTimeout, o.WriteTimeout), log),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		// net/http arms this deadline for each request before the
		// handler runs (see withIOTimeouts, which then moves it forward
		// while the response makes progress); the HTTP/2 server does so
		// for each stream.
		WriteTimeout:   o.WriteTimeout,
		IdleTimeout:    o.IdleTimeout,
		MaxHeaderBytes: o.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Protocols:      &protos,
		BaseContext:    func(net.Listener) context.Context { return base },
		ConnContext:    connContext,
		// An HTTP/2 client may have this many requests in flight on one
		// connection, each served on its own goroutine. It is net/http's
		// default, said here so that a change of default cannot
		// serialize clients that multiplex (100 is the least RFC 9113
		// recommends). The HTTP/2 server reads it from here.
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 250},
	}
	if o.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = 1 << 20
	}
	//lint:ignore SA1019 x/net/http2's server is the one that serves a connection handed to it, as h2Guard needs (see TCP)
	t := &TCP{srv: srv, h2: &http2.Server{}, h2c: o.H2C, h2Handler: withStack(srv.Handler), base: base, log: log}
	if o.Certs != nil {
		if o.H2C {
			return nil, errors.New("h2c is for cleartext listeners, not TLS")
		}
		// The certificate comes from the source at every handshake, so
		// that it can be renewed in place.
		t.tls = &tls.Config{GetCertificate: o.Certs.GetCertificate, MinVersion: tls.VersionTLS12}
		srv.TLSConfig = t.tls
	}
	// ConfigureServer hooks the HTTP/2 server's graceful GOAWAY into
	// srv.Shutdown and adds h2 and http/1.1 to the TLS config's ALPN
	// protocols (it makes a TLS config for a cleartext listener too,
	// which nothing then uses).
	//lint:ignore SA1019 x/net/http2's server is the one that serves a connection handed to it, as h2Guard needs (see TCP)
	if err := http2.ConfigureServer(srv, t.h2); err != nil {
		return nil, err
	}
	// Last, so that a client offering h2 or http/1.1 never lands on it:
	// the server's order decides, and only a CA's validator offers it.
	if t.tls != nil && o.ALPNChallenge {
		t.tls.NextProtos = append(t.tls.NextProtos, ALPNChallengeProtocol)
	}
	return t, nil
}

// serveH2 serves one HTTP/2 connection until it ends.
func (t *TCP) serveH2(c net.Conn) {
	//lint:ignore SA1019 x/net/http2's server is the one that serves a connection handed to it, as h2Guard needs (see TCP)
	t.h2.ServeConn(c, &http2.ServeConnOpts{Context: t.base, BaseConfig: t.srv, Handler: t.h2Handler})
}

// Listen binds the socket.
func (t *TCP) Listen() error {
	ln, err := net.Listen("tcp", t.srv.Addr)
	if err != nil {
		return fmt.Errorf("entrypoint: %w", err)
	}
	t.mu.Lock()
	t.ln = ln
	t.mu.Unlock()
	return nil
}

// Addr is the bound address; nil before Listen and after a Shutdown
// that came before Serve.
func (t *TCP) Addr() net.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln == nil {
		return nil
	}
	return t.ln.Addr()
}

// Serve serves until Shutdown.
func (t *TCP) Serve() error {
	t.mu.Lock()
	if t.ln == nil {
		t.mu.Unlock()
		return errors.New("entrypoint: Serve before Listen")
	}
	if t.conns == nil {
		t.conns = newConnListener(t.ln, t.tls, t.h2c, t.srv.ReadHeaderTimeout, t.serveH2, t.log)
	}
	cl := t.conns
	t.mu.Unlock()
	t.log.Info("listening", "address", cl.Addr().String(), "tls", t.tls != nil, "h2c", t.h2c)
	err := t.srv.Serve(cl)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Shutdown drains HTTP/1 connections through net/http and HTTP/2 ones
// through the GOAWAY the HTTP/2 server sends on srv.Shutdown, then
// closes what is left when ctx ends.
func (t *TCP) Shutdown(ctx context.Context) error {
	// srv.Shutdown closes the connListener once net/http knows it is
	// shutting down (closed earlier, net/http would take the accept
	// error for a failure).
	err := t.srv.Shutdown(ctx)
	if err != nil {
		t.srv.Close()
	}
	t.mu.Lock()
	cl, ln := t.conns, t.ln
	if cl == nil {
		t.ln = nil // never served: only the socket, if bound, is left
	}
	t.mu.Unlock()
	if cl == nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	cl.Close() // if Serve had not yet passed it to net/http
	if derr := cl.drain(ctx); derr != nil && err == nil {
		err = derr
	}
	return err
}
