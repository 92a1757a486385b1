package entrypoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// Limits of an HTTP/3 entrypoint when its Options leave them 0.
const (
	// DefaultHTTP3MaxStreams is the requests one connection may have in
	// flight: the HTTP/2 server's MaxConcurrentStreams (see NewTCP), so
	// that a client multiplexes as much over either.
	DefaultHTTP3MaxStreams = 250
	// DefaultHTTP3MaxConnections caps the QUIC connections open at once,
	// those still in their handshake included. Each holds its crypto
	// state and buffers; past the cap, new ones are refused
	// (CONNECTION_REFUSED) while the established keep being served.
	DefaultHTTP3MaxConnections = 10000
)

// altSvcMaxAge is how long, in seconds, a client may remember that
// HTTP/3 is offered (ma=86400, one day, as Caddy and Cloudflare send).
const altSvcMaxAge = 86400

// QUIC is an entrypoint for HTTP/3 on a UDP socket, served by quic-go's
// http3 server. A TLS listener with Options.HTTP3 gets one on its own
// port, beside its TCP entrypoint (NewGroup pairs them); NewQUIC builds
// one alone, for Group.Add.
//
// Requests sent in 0-RTT (early data, which an attacker can replay)
// reach the handler before the handshake has completed:
// r.TLS.HandshakeComplete is false for them, and the handler decides
// whether to serve them or answer 425 Too Early (RFC 8470). Whether a
// connection may use 0-RTT at all is Options.EarlyData's to say, when
// it begins.
//
// Extended CONNECT (WebSocket over HTTP/3, RFC 9220) is not served:
// quic-go announces it, so such a request is answered 501 here, and
// clients keep WebSocket on HTTP/1.1 and HTTP/2.
type QUIC struct {
	srv      *http3.Server
	tls      *tls.Config
	early    *quic.Config // with 0-RTT
	noEarly  *quic.Config // without
	allow    func() bool  // Options.EarlyData
	maxConns int64
	log      *slog.Logger

	conns  atomic.Int64           // QUIC connections open, handshakes included
	altSvc atomic.Pointer[string] // the Alt-Svc field, while bound and not shutting down

	mu   sync.Mutex // guards the fields below
	addr string     // the UDP address to bind; a pair sets its TCP's port
	pc   net.PacketConn
	tr   *quic.Transport
	ln   *quic.EarlyListener
}

var _ Entrypoint = (*QUIC)(nil)

// errTooManyConns refuses a connection past Options.HTTP3MaxConnections.
var errTooManyConns = errors.New("too many QUIC connections")

// NewQUIC builds the HTTP/3 server of one entrypoint; o needs Certs (or
// CertFile and KeyFile, which NewGroup turns into Certs). Every
// request's context carries base's values. It binds nothing yet.
func NewQUIC(h http.Handler, o Options, base context.Context, log *slog.Logger) (*QUIC, error) {
	if o.Certs == nil {
		return nil, errors.New("http3 needs TLS certificates")
	}
	if o.ReadHeaderTimeout < 0 || o.ReadTimeout < 0 || o.WriteTimeout < 0 || o.IdleTimeout < 0 || o.MaxHeaderBytes < 0 ||
		o.HTTP3MaxStreams < 0 || o.HTTP3MaxConnections < 0 {
		return nil, errors.New("timeouts, sizes and limits must not be negative")
	}
	if base == nil {
		base = context.Background()
	}
	if log == nil {
		log = slog.Default()
	}
	handshake := o.ReadHeaderTimeout
	if handshake == 0 {
		handshake = 10 * time.Second
	}
	streams := o.HTTP3MaxStreams
	if streams == 0 {
		streams = DefaultHTTP3MaxStreams
	}
	conns := o.HTTP3MaxConnections
	if conns == 0 {
		conns = DefaultHTTP3MaxConnections
	}
	q := &QUIC{addr: o.Address, allow: o.EarlyData, maxConns: int64(conns), log: log}
	q.noEarly = &quic.Config{
		// quic-go gives up a handshake after twice this idle time: as
		// over TCP, ReadHeaderTimeout bounds the handshake.
		HandshakeIdleTimeout: handshake / 2,
		// 0 keeps quic-go's default (30s) for the transport, below
		// which the HTTP/3 server's IdleTimeout acts.
		MaxIdleTimeout:     o.IdleTimeout,
		MaxIncomingStreams: int64(streams),
	}
	q.early = q.noEarly.Clone()
	q.early.Allow0RTT = true
	q.noEarly.GetConfigForClient = q.configFor
	q.early.GetConfigForClient = q.configFor
	// The certificate comes from the source at every handshake, as on
	// TCP; ConfigureTLSConfig offers h3 by ALPN.
	q.tls = http3.ConfigureTLSConfig(&tls.Config{GetCertificate: o.Certs.GetCertificate, MinVersion: tls.VersionTLS13})
	q.srv = &http3.Server{
		Handler:        q.handler(h, o),
		MaxHeaderBytes: o.MaxHeaderBytes,
		IdleTimeout:    o.IdleTimeout,
		Logger:         log,
		ConnContext: func(ctx context.Context, _ *quic.Conn) context.Context {
			return withValues{Context: ctx, base: base}
		},
	}
	if o.MaxHeaderBytes == 0 {
		q.srv.MaxHeaderBytes = 1 << 20
	}
	return q, nil
}

// configFor picks a new connection's config: with 0-RTT only while
// Options.EarlyData allows it, so that a gateway whose routes all refuse
// early data never accepts any (a client then sends its requests after
// the handshake instead of having them answered 425).
func (q *QUIC) configFor(*quic.ClientInfo) (*quic.Config, error) {
	if q.allow != nil && q.allow() {
		return q.early, nil
	}
	return q.noEarly, nil
}

// handler puts in front of h what HTTP/3 needs and the TCP servers do
// elsewhere: the stall timeouts (with a first write deadline, which
// net/http arms itself) and the refusal of Extended CONNECT.
func (q *QUIC) handler(h http.Handler, o Options) http.Handler {
	h = withIOTimeouts(h, o.ReadTimeout, o.WriteTimeout)
	wt := o.WriteTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			http.Error(w, "CONNECT is not served over HTTP/3", http.StatusNotImplemented)
			return
		}
		if wt > 0 {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wt))
		}
		h.ServeHTTP(w, r)
	})
}

// withValues is an HTTP/3 connection's context: quic-go's (its values
// and its end) over the values of the entrypoint's base context.
type withValues struct {
	context.Context
	base context.Context
}

func (c withValues) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.base.Value(key)
}

// Listen binds the UDP socket and starts QUIC on it; from then on
// AltSvc advertises its port.
func (q *QUIC) Listen() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	ua, err := net.ResolveUDPAddr("udp", q.addr)
	if err != nil {
		return fmt.Errorf("entrypoint: http3: %w", err)
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("entrypoint: http3: %w", err)
	}
	tr := &quic.Transport{
		Conn:        pc,
		ConnContext: q.connContext,
		// Once half the connections are taken, a new client must prove
		// its address (a Retry, one more round trip) before it holds a
		// slot: spoofed Initial packets cannot fill the rest.
		VerifySourceAddress: func(net.Addr) bool { return q.conns.Load() >= q.maxConns/2 },
	}
	ln, err := tr.ListenEarly(q.tls, q.noEarly)
	if err != nil {
		tr.Close()
		pc.Close()
		return fmt.Errorf("entrypoint: http3: %w", err)
	}
	q.pc, q.tr, q.ln = pc, tr, ln
	port := pc.LocalAddr().(*net.UDPAddr).Port
	v := `h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.Itoa(altSvcMaxAge)
	q.altSvc.Store(&v)
	return nil
}

// connContext counts a new connection against the cap, until it ends
// (or its handshake fails).
func (q *QUIC) connContext(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
	if q.conns.Add(1) > q.maxConns {
		q.conns.Add(-1)
		return nil, errTooManyConns
	}
	context.AfterFunc(ctx, func() { q.conns.Add(-1) })
	return ctx, nil
}

// AltSvc is the Alt-Svc field that advertises this entrypoint
// (h3=":PORT"; ma=86400): empty until Listen has bound the socket and
// again once Shutdown has begun, so that no client is sent to a port
// that does not answer.
func (q *QUIC) AltSvc() string {
	if v := q.altSvc.Load(); v != nil {
		return *v
	}
	return ""
}

// Addr is the bound UDP address; nil before Listen and after Shutdown.
func (q *QUIC) Addr() net.Addr {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pc == nil {
		return nil
	}
	return q.pc.LocalAddr()
}

// Serve serves until Shutdown.
func (q *QUIC) Serve() error {
	q.mu.Lock()
	ln := q.ln
	q.mu.Unlock()
	if ln == nil {
		return errors.New("entrypoint: http3: Serve before Listen")
	}
	q.log.Info("listening", "address", ln.Addr().String(), "http3", true)
	err := q.srv.ServeListener(ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) {
		err = nil
	}
	return err
}

// Shutdown stops advertising and accepting, sends every connection
// GOAWAY and waits for its requests until ctx ends, then closes the
// connections left and the socket.
func (q *QUIC) Shutdown(ctx context.Context) error {
	q.altSvc.Store(nil)
	q.mu.Lock()
	pc, tr, ln := q.pc, q.tr, q.ln
	q.pc, q.tr, q.ln = nil, nil, nil
	q.mu.Unlock()
	// Closed first, the listener refuses handshakes in progress and new
	// ones; the server's Shutdown only closes listeners it made.
	if ln != nil {
		ln.Close()
	}
	err := q.srv.Shutdown(ctx)
	if tr != nil {
		tr.Close()
		pc.Close()
	}
	return err
}

// pair is a TCP entrypoint with a QUIC one on the same port: one
// listener of the configuration, bound, served and drained as one, so
// that its index in a Group stays that of its Options.
type pair struct {
	tcp  *TCP
	quic *QUIC
	host string // the configured host, which the UDP socket binds too
}

var _ Entrypoint = (*pair)(nil)

// Listen binds TCP first, then UDP on the port TCP got (which differs
// from the configured one when that is 0).
func (p *pair) Listen() error {
	if err := p.tcp.Listen(); err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(p.tcp.Addr().String())
	if err == nil {
		p.quic.mu.Lock()
		p.quic.addr = net.JoinHostPort(p.host, port)
		p.quic.mu.Unlock()
		err = p.quic.Listen()
	}
	if err != nil {
		_ = p.tcp.Shutdown(canceled)
		return err
	}
	return nil
}

func (p *pair) Addr() net.Addr { return p.tcp.Addr() }

func (p *pair) Serve() error {
	errc := make(chan error, 1)
	go func() { errc <- p.quic.Serve() }()
	err := p.tcp.Serve()
	return errors.Join(err, <-errc)
}

func (p *pair) Shutdown(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- p.quic.Shutdown(ctx) }()
	err := p.tcp.Shutdown(ctx)
	qerr := <-errc
	if err == nil {
		err = qerr
	}
	return err
}
