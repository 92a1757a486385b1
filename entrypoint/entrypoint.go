package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Entrypoint is one socket the gateway serves clients on. TCP serves
// HTTP/1.1 and HTTP/2; a QUIC entrypoint for HTTP/3 is another.
type Entrypoint interface {
	// Listen binds the socket, so that an address in use fails before
	// any traffic is served.
	Listen() error
	// Serve serves until Shutdown; the normal end is a nil error.
	Serve() error
	// Shutdown stops accepting, lets requests in flight finish until
	// ctx ends, then closes what is left and returns ctx's error.
	Shutdown(ctx context.Context) error
	// Addr is the bound address, after Listen.
	Addr() net.Addr
}

// Options describe one entrypoint.
type Options struct {
	Address string
	// CertFile and KeyFile, both set, serve TLS from those files (a
	// Files source), with HTTP/2 by ALPN.
	CertFile, KeyFile string
	// Certs, when set, serves TLS with its certificates instead of
	// CertFile and KeyFile.
	Certs CertSource
	// H2C also accepts HTTP/2 with prior knowledge on a cleartext socket.
	H2C bool
	// ReadHeaderTimeout bounds reading the request line and headers, and
	// the TLS handshake (10s when 0).
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

	// HTTP3, on a TLS listener, also serves HTTP/3 over QUIC on the same
	// port (UDP), and has the TCP listener advertise it in Alt-Svc once
	// the UDP socket is bound (unless AltSvc is set). The timeouts and
	// MaxHeaderBytes apply to it as to TCP; ReadHeaderTimeout bounds the
	// QUIC handshake, IdleTimeout a connection without requests.
	HTTP3 bool
	// HTTP3MaxStreams is how many requests one HTTP/3 connection may
	// have in flight (0: DefaultHTTP3MaxStreams, as for HTTP/2), and
	// HTTP3MaxConnections how many QUIC connections may be open at once,
	// handshakes included (0: DefaultHTTP3MaxConnections).
	HTTP3MaxStreams     int
	HTTP3MaxConnections int
	// EarlyData, when set, is asked as each QUIC connection begins
	// whether it may carry requests in 0-RTT; nil means never. The
	// handler still decides for each such request (see QUIC).
	EarlyData func() bool

	// Challenge, when set, is offered every request for a path under
	// ChallengePath before the handler; it answers those it knows (an
	// ACME HTTP-01 challenge, say) and reports true, and the rest go on
	// to the handler.
	Challenge func(http.ResponseWriter, *http.Request) bool
	// ALPNChallenge, on a TLS entrypoint, also offers the ACME TLS-ALPN-01
	// protocol (ALPNChallengeProtocol): the CertSource answers such a
	// handshake with its challenge certificate, and the connection is
	// closed once it is done, as RFC 8737 says, never served as HTTP.
	ALPNChallenge bool
	// Handler, when set, serves this entrypoint instead of the group's
	// handler: the ACME challenge listener, whose requests that are not
	// challenges are redirected to HTTPS rather than proxied.
	Handler http.Handler
	// AltSvc, when set, gives the Alt-Svc field added to every response
	// (to advertise HTTP/3); an empty value adds none.
	AltSvc func() string
}

// ChallengePath is where ACME HTTP-01 challenges are asked (RFC 8555
// section 8.3).
const ChallengePath = "/.well-known/acme-challenge/"

// ALPNChallengeProtocol is the ALPN protocol of ACME's TLS-ALPN-01
// challenge (RFC 8737).
const ALPNChallengeProtocol = "acme-tls/1"

// GroupOptions configure a Group.
type GroupOptions struct {
	// BaseContext is the context every request starts from; nil means
	// context.Background(). The proxy's registry of upgraded tunnels
	// rides on it.
	BaseContext context.Context
	// Drain, when set, runs after every entrypoint has drained, with
	// Shutdown's ctx: it ends what the HTTP servers no longer track
	// (the proxy's upgraded tunnels).
	Drain func(context.Context) error
	// Logger receives listener events; nil means slog.Default().
	Logger *slog.Logger
}

// Group is the entrypoints of one configuration, served together over
// one handler: Listen binds all or none, Shutdown drains all.
type Group struct {
	eps   []Entrypoint
	files []*Files // the Files sources, for LoadCertificates
	names []string // the address of each Files source
	drain func(context.Context) error
	log   *slog.Logger
}

// NewGroup checks the options and loads certificates; it binds nothing
// yet.
func NewGroup(h http.Handler, os []Options, g GroupOptions) (*Group, error) {
	if g.Logger == nil {
		g.Logger = slog.Default()
	}
	if g.BaseContext == nil {
		g.BaseContext = context.Background()
	}
	if len(os) == 0 {
		return nil, errors.New("entrypoint: no listeners")
	}
	grp := &Group{drain: g.Drain, log: g.Logger}
	for _, o := range os {
		if o.Certs == nil && o.CertFile != "" {
			if o.KeyFile == "" {
				return nil, fmt.Errorf("entrypoint: listener %s: tls needs both cert_file and key_file", o.Address)
			}
			f, err := NewFiles(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("entrypoint: listener %s: %w", o.Address, err)
			}
			o.Certs = f
			grp.files = append(grp.files, f)
			grp.names = append(grp.names, o.Address)
		}
		eh := h
		if o.Handler != nil {
			eh = o.Handler
		}
		ep, err := newEntrypoint(eh, o, g)
		if err != nil {
			return nil, fmt.Errorf("entrypoint: listener %s: %w", o.Address, err)
		}
		grp.eps = append(grp.eps, ep)
	}
	return grp, nil
}

// newEntrypoint is a TCP entrypoint, paired with a QUIC one when o asks
// for HTTP/3.
func newEntrypoint(h http.Handler, o Options, g GroupOptions) (Entrypoint, error) {
	if !o.HTTP3 {
		return NewTCP(h, o, g.BaseContext, g.Logger)
	}
	if o.Certs == nil {
		return nil, errors.New("http3 needs tls (cert_file and key_file, or acme): HTTP/3 is always encrypted")
	}
	q, err := NewQUIC(h, o, g.BaseContext, g.Logger)
	if err != nil {
		return nil, err
	}
	if o.AltSvc == nil {
		o.AltSvc = q.AltSvc
	}
	t, err := NewTCP(h, o, g.BaseContext, g.Logger)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, err
	}
	return &pair{tcp: t, quic: q, host: host}, nil
}

// Add puts another entrypoint (one NewGroup does not build, such as a
// QUIC one) in the group; call it before Listen.
func (g *Group) Add(ep Entrypoint) { g.eps = append(g.eps, ep) }

// Listen binds every entrypoint; if one fails, those bound are closed
// and the error is a *ListenError naming it.
func (g *Group) Listen() error {
	for i, ep := range g.eps {
		if err := ep.Listen(); err != nil {
			for _, done := range g.eps[:i] {
				_ = done.Shutdown(canceled)
			}
			return &ListenError{Index: i, Err: err}
		}
	}
	return nil
}

// ListenError is the failure of the entrypoint at Index (in the order of
// NewGroup's options, then of Add) to bind.
type ListenError struct {
	Index int
	Err   error
}

func (e *ListenError) Error() string { return e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// canceled is a context already done: Shutdown with it closes at once.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Addrs are the bound addresses, in configuration order: all of them
// after Listen, none before or after a Listen that failed.
func (g *Group) Addrs() []net.Addr {
	out := make([]net.Addr, 0, len(g.eps))
	for _, ep := range g.eps {
		if a := ep.Addr(); a != nil {
			out = append(out, a)
		}
	}
	return out
}

// Serve serves every entrypoint until Shutdown and returns the first
// error that is not the normal end of serving.
func (g *Group) Serve() error {
	errc := make(chan error, len(g.eps))
	for _, ep := range g.eps {
		go func() { errc <- ep.Serve() }()
	}
	var first error
	for range g.eps {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Shutdown drains every entrypoint at once, then runs Drain. It returns
// ctx's error when something had to be closed; an entrypoint's error
// comes first.
func (g *Group) Shutdown(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(g.eps))
	for i, ep := range g.eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ep.Shutdown(ctx)
		}()
	}
	wg.Wait()
	var derr error
	if g.drain != nil {
		derr = g.drain(ctx)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return derr
}

// LoadCertificates reads every Files source's cert_file and key_file
// again, so that certificates renewed in place are served without a
// restart. Nothing changes until the returned install is called, which
// makes new handshakes present the new certificates while established
// connections keep theirs. If any pair fails to load, the error names
// the listener and its files and no certificate is installed: one
// reload either renews all of them or none.
func (g *Group) LoadCertificates() (install func(), err error) {
	installs := make([]func(), len(g.files))
	notAfter := make([]time.Time, len(g.files))
	for i, f := range g.files {
		in, cert, err := f.Load()
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", g.names[i], err)
		}
		installs[i] = in
		if cert.Leaf != nil {
			notAfter[i] = cert.Leaf.NotAfter
		}
	}
	return func() {
		for i, in := range installs {
			in()
			g.log.Info("listener certificate loaded", "address", g.names[i], "cert_file", g.files[i].certFile, "not_after", notAfter[i])
		}
	}, nil
}

// altSvcField hands out the Alt-Svc field's value list, made once per
// value rather than once per response: the value changes only as the
// HTTP/3 socket is bound and shut down. The list is shared by every
// response: made full (length = capacity), so that an append copies it,
// and nothing edits a response's header values in place (as with the
// proxy's shared Via lists).
type altSvcField struct{ last atomic.Pointer[[]string] }

func (a *altSvcField) values(v string) []string {
	if p := a.last.Load(); p != nil && (*p)[0] == v {
		return *p
	}
	vv := []string{v}
	a.last.Store(&vv)
	return vv
}

// withHooks puts the ACME challenge and the Alt-Svc field in front of h,
// when o asks for them.
func withHooks(h http.Handler, o Options) http.Handler {
	if o.Challenge == nil && o.AltSvc == nil {
		return h
	}
	var alt altSvcField
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.AltSvc != nil {
			if v := o.AltSvc(); v != "" {
				w.Header()["Alt-Svc"] = alt.values(v)
			}
		}
		if o.Challenge != nil && strings.HasPrefix(r.URL.Path, ChallengePath) && o.Challenge(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})
}
