package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// ListenerOptions describe one client-facing socket.
type ListenerOptions struct {
	Address string
	// CertFile and KeyFile, both set, serve TLS with HTTP/2 by ALPN.
	CertFile, KeyFile string
	// H2C also accepts HTTP/2 with prior knowledge on a cleartext socket.
	H2C bool
	// ReadHeaderTimeout bounds reading the request line and headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout is the longest pause between two reads of a request
	// body, and WriteTimeout the longest a response write may block.
	// Unlike http.Server's, they do not cap the whole exchange, so long
	// uploads, downloads and event streams are fine while stalled
	// clients are cut off (nginx's client_body_timeout and send_timeout).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections with no request.
	IdleTimeout time.Duration
	// MaxHeaderBytes limits request line and headers (0: 1 MiB).
	MaxHeaderBytes int
}

// Server runs the listeners over one handler and drains them on
// Shutdown.
type Server struct {
	log *slog.Logger
	// tunnels are the WebSocket (upgraded) connections of every
	// listener, which http.Server stops tracking once hijacked. The
	// handler finds the set in the request's context.
	tunnels *tunnelSet
	// certs are the TLS listeners' certificates, in listener order
	// (skipping cleartext ones); fixed after NewServer.
	certs     []*listenerCert
	mu        sync.Mutex // guards the fields below
	listeners []*listener
	lns       []net.Listener
	conns     []*connListener // set by Serve, in listener order
}

// listener is the serving side of one ListenerOptions: net/http's server
// for HTTP/1, and x/net/http2's for HTTP/2, which connListener hands the
// HTTP/2 connections to through h2Guard. net/http's own HTTP/2 server
// takes its connections from net/http alone, so nothing could stand
// between it and a TLS connection's plaintext, and a connection error it
// could be told of is not a type outside net/http; x/net/http2 answers a
// read that fails with its ConnectionError with that GOAWAY. x/net marks
// the server deprecated in favour of net/http's, which from Go 1.27 it
// wraps; TestRapidResetFlood tells if the GOAWAY's code is then lost.
type listener struct {
	srv *http.Server
	//lint:ignore SA1019 x/net/http2's server is the one that serves a connection handed to it, as h2Guard needs (see listener)
	h2  *http2.Server
	tls *tls.Config // nil: cleartext
	h2c bool
}

// NewServer checks the listener options and loads certificates; it does
// not bind yet.
func NewServer(h http.Handler, ls []ListenerOptions, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	if len(ls) == 0 {
		return nil, errors.New("proxy: no listeners")
	}
	s := &Server{log: log, tunnels: newTunnelSet()}
	base := context.WithValue(context.Background(), tunnelSetKey{}, s.tunnels)
	for _, l := range ls {
		sl, lc, err := newListener(h, l, log)
		if err != nil {
			return nil, fmt.Errorf("proxy: listener %s: %w", l.Address, err)
		}
		sl.srv.BaseContext = func(net.Listener) context.Context { return base }
		s.listeners = append(s.listeners, sl)
		if lc != nil {
			s.certs = append(s.certs, lc)
		}
	}
	return s, nil
}

// listenerCert is the certificate a TLS listener presents. Handshakes
// read it with one atomic load, so renewing it (LoadCertificates) never
// stalls or blocks a client; a connection keeps the certificate it
// shook hands with.
type listenerCert struct {
	address           string
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// load reads the pair from disk. The error names both files: crypto/tls
// says only which input was bad ("certificate input", "key input"), and
// an operator with several listeners needs to know which files.
func (c *listenerCert) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls cert_file %s, key_file %s: %w", c.certFile, c.keyFile, err)
	}
	return &cert, nil
}

func (c *listenerCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// LoadCertificates reads every TLS listener's cert_file and key_file
// again, so that certificates renewed in place are served without a
// restart. Nothing changes until the returned install is called, which
// makes new handshakes present the new certificates while established
// connections keep theirs. If any pair fails to load, the error names
// the listener and its files and no certificate is installed: one
// reload either renews all of them or none.
func (s *Server) LoadCertificates() (install func(), err error) {
	loaded := make([]*tls.Certificate, len(s.certs))
	for i, c := range s.certs {
		if loaded[i], err = c.load(); err != nil {
			return nil, fmt.Errorf("listener %s: %w", c.address, err)
		}
	}
	return func() {
		for i, c := range s.certs {
			c.cur.Store(loaded[i])
			var notAfter time.Time
			if leaf := loaded[i].Leaf; leaf != nil {
				notAfter = leaf.NotAfter
			}
			s.log.Info("listener certificate loaded", "address", c.address, "cert_file", c.certFile, "not_after", notAfter)
		}
	}, nil
}

// newListener builds the servers of one listener and, for a TLS one,
// the certificate it serves from.
func newListener(h http.Handler, l ListenerOptions, log *slog.Logger) (*listener, *listenerCert, error) {
	if (l.CertFile == "") != (l.KeyFile == "") {
		return nil, nil, errors.New("tls needs both cert_file and key_file")
	}
	if l.ReadHeaderTimeout < 0 || l.ReadTimeout < 0 || l.WriteTimeout < 0 || l.IdleTimeout < 0 || l.MaxHeaderBytes < 0 {
		return nil, nil, errors.New("timeouts and sizes must not be negative")
	}
	// net/http speaks HTTP/1 only: connListener has already sent every
	// HTTP/2 connection to the HTTP/2 server.
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Addr:              l.Address,
		Handler:           checkFraming(withIOTimeouts(h, l.ReadTimeout, l.WriteTimeout), log),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		// net/http arms this deadline for each request before the
		// handler runs (see withIOTimeouts, which then moves it forward
		// while the response makes progress); the HTTP/2 server does so
		// for each stream.
		WriteTimeout:   l.WriteTimeout,
		IdleTimeout:    l.IdleTimeout,
		MaxHeaderBytes: l.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Protocols:      &protos,
		ConnContext:    connContext,
		// An HTTP/2 client may have this many requests in flight on one
		// connection, each served on its own goroutine. It is net/http's
		// default, said here so that a change of default cannot
		// serialize clients that multiplex (100 is the least RFC 9113
		// recommends). The HTTP/2 server reads it from here.
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 250},
	}
	if l.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = 1 << 20
	}
	//lint:ignore SA1019 x/net/http2's server is the one that serves a connection handed to it, as h2Guard needs (see listener)
	sl := &listener{srv: srv, h2: &http2.Server{}, h2c: l.H2C}
	var lc *listenerCert
	if l.CertFile != "" {
		if l.H2C {
			return nil, nil, errors.New("h2c is for cleartext listeners, not TLS")
		}
		lc = &listenerCert{address: l.Address, certFile: l.CertFile, keyFile: l.KeyFile}
		cert, err := lc.load()
		if err != nil {
			return nil, nil, err
		}
		lc.cur.Store(cert)
		// The certificate comes from GetCertificate rather than
		// Certificates so that a reload can renew it in place.
		sl.tls = &tls.Config{GetCertificate: lc.get, MinVersion: tls.VersionTLS12}
		srv.TLSConfig = sl.tls
	}
	// ConfigureServer hooks the HTTP/2 server's graceful GOAWAY into
	// srv.Shutdown and adds h2 and http/1.1 to the TLS config's ALPN
	// protocols (it makes a TLS config for a cleartext listener too,
	// which nothing then uses).
	//lint:ignore SA1019 x/net/http2's server is the one that serves a connection handed to it, as h2Guard needs (see listener)
	if err := http2.ConfigureServer(srv, sl.h2); err != nil {
		return nil, nil, err
	}
	return sl, lc, nil
}

// serveH2 serves one HTTP/2 connection until it ends.
func (sl *listener) serveH2(base context.Context) func(net.Conn) {
	return func(c net.Conn) {
		//lint:ignore SA1019 x/net/http2's server is the one that serves a connection handed to it, as h2Guard needs (see listener)
		sl.h2.ServeConn(c, &http2.ServeConnOpts{Context: base, BaseConfig: sl.srv, Handler: sl.srv.Handler})
	}
}

// Listen binds every listener, so an address in use fails before any
// traffic is served.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.listeners {
		ln, err := net.Listen("tcp", sl.srv.Addr)
		if err != nil {
			for _, l := range s.lns {
				l.Close()
			}
			s.lns = nil
			return fmt.Errorf("proxy: %w", err)
		}
		s.lns = append(s.lns, ln)
	}
	return nil
}

// Addrs are the bound addresses, in listener order (after Listen).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.lns))
	for i, l := range s.lns {
		out[i] = l.Addr()
	}
	return out
}

// Serve serves every bound listener until Shutdown; it returns the first
// error that is not the normal end of serving.
func (s *Server) Serve() error {
	s.mu.Lock()
	listeners, lns := s.listeners, s.lns
	if len(lns) == len(listeners) && s.conns == nil {
		for i, sl := range listeners {
			base := sl.srv.BaseContext(lns[i])
			s.conns = append(s.conns, newConnListener(lns[i], sl.tls, sl.h2c, sl.srv.ReadHeaderTimeout, sl.serveH2(base), s.log))
		}
	}
	conns := s.conns
	s.mu.Unlock()
	if len(lns) != len(listeners) {
		return errors.New("proxy: Serve before Listen")
	}
	errc := make(chan error, len(listeners))
	for i, sl := range listeners {
		go func() {
			s.log.Info("listening", "address", lns[i].Addr().String(), "tls", sl.tls != nil, "h2c", sl.h2c)
			err := sl.srv.Serve(conns[i])
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	var first error
	for range listeners {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Shutdown stops accepting, lets in-flight requests and open WebSocket
// tunnels finish until ctx ends, then closes what is left. It returns
// ctx's error when something had to be closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	listeners, conns := s.listeners, s.conns
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(listeners))
	for i, sl := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// This also sends every HTTP/2 connection a GOAWAY, through
			// the hook ConfigureServer registered, and closes the
			// connListener, once net/http knows it is shutting down
			// (closed earlier, it would take the accept error for a
			// failure).
			if err := sl.srv.Shutdown(ctx); err != nil {
				errs[i] = err
				sl.srv.Close()
			}
			if i < len(conns) {
				conns[i].Close() // if Serve had not yet passed it to net/http
				if err := conns[i].drain(ctx); err != nil && errs[i] == nil {
					errs[i] = err
				}
			}
		}()
	}
	wg.Wait()
	// Tunnels run until ctx ends; a listener's error comes first.
	terr := s.tunnels.shutdown(ctx)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return terr
}

// withIOTimeouts enforces ReadTimeout and WriteTimeout as limits on
// stalls rather than on whole requests. Deadlines are pushed forward
// at most every quarter of the timeout, so a small response sets none.
//
// The first write deadline is the server's own WriteTimeout, which
// net/http arms before the handler runs: on an HTTP/1.1 connection when
// it reads the request, on an HTTP/2 stream as the connection's
// goroutine opens it. Setting it from the handler instead would cost
// every HTTP/2 request a message to that goroutine and a second timer.
func withIOTimeouts(h http.Handler, rt, wt time.Duration) http.Handler {
	if rt <= 0 && wt <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if rt > 0 && r.Body != nil && r.Body != http.NoBody {
			// On a copy: net/http keeps its own Request, and must still
			// find its body there. With Expect: 100-continue, a body it
			// no longer recognises is drained before an early answer (a
			// 413) while the client waits for the 100 that never comes.
			r = r.WithContext(r.Context())
			r.Body = &stallReader{ReadCloser: r.Body, rc: rc, d: rt}
		}
		if wt > 0 {
			w = &stallWriter{ResponseWriter: w, rc: rc, d: wt, last: time.Now()}
		}
		h.ServeHTTP(w, r)
	})
}

type stallReader struct {
	io.ReadCloser
	rc   *http.ResponseController
	d    time.Duration
	last time.Time
	done bool
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.done {
		return s.ReadCloser.Read(p)
	}
	if now := time.Now(); now.Sub(s.last) > s.d/4 {
		s.last = now
		_ = s.rc.SetReadDeadline(now.Add(s.d))
	}
	n, err := s.ReadCloser.Read(p)
	if err != nil {
		s.done = true
		// Once the body is read, net/http keeps reading in the
		// background to notice a client that hangs up; a deadline left
		// behind would fire there and cancel a request still waiting on
		// its upstream. After any other error the deadline must stay:
		// net/http drains the rest of the body when the handler ends,
		// and without it a stalled client would hold that read forever.
		if err == io.EOF {
			_ = s.rc.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

type stallWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	d    time.Duration
	last time.Time
}

func (s *stallWriter) extend() {
	if now := time.Now(); now.Sub(s.last) > s.d/4 {
		s.last = now
		_ = s.rc.SetWriteDeadline(now.Add(s.d))
	}
}

func (s *stallWriter) WriteHeader(code int) { s.extend(); s.ResponseWriter.WriteHeader(code) }

func (s *stallWriter) Write(p []byte) (int, error) { s.extend(); return s.ResponseWriter.Write(p) }

func (s *stallWriter) Flush() { s.extend(); _ = s.rc.Flush() }

// Unwrap lets http.ResponseController reach Hijack and the deadlines.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
