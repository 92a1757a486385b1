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
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"gateway/internal/fielderr"
	"gateway/proxy/balance"
)

// Protocols an upstream may speak.
const (
	ProtoHTTP1 = "http1" // HTTP/1.1 with keep-alive
	ProtoH2    = "h2"    // HTTP/2 over TLS
	ProtoH2C   = "h2c"   // HTTP/2 over cleartext, prior knowledge
	ProtoAuto  = "auto"  // HTTP/2 where TLS ALPN offers it, else HTTP/1.1
)

// UpstreamOptions describe one upstream. Zero durations and counts mean
// the documented defaults of http.Transport unless noted.
type UpstreamOptions struct {
	Name    string
	Targets []*url.URL
	// Protocol is one of ProtoHTTP1, ProtoH2, ProtoH2C, ProtoAuto; "" is auto.
	Protocol string
	// Balance and HashOn select the balancing policy (see package balance).
	Balance string
	HashOn  string

	// MaxConnsPerTarget caps connections per target (0: no cap).
	MaxConnsPerTarget int
	// MaxIdlePerTarget idle keep-alive connections are kept per target.
	// Go's default of 2 makes a busy proxy open and close a connection
	// per request, so 0 here means 64.
	MaxIdlePerTarget      int
	IdleConnTimeout       time.Duration
	DialTimeout           time.Duration
	ResponseHeaderTimeout time.Duration
	TLSConfig             *tls.Config

	// ReadIdleTimeout and PingTimeout keep HTTP/2 connections honest:
	// a ping is sent after ReadIdleTimeout without a frame, and the
	// connection is closed if it is not answered within PingTimeout.
	ReadIdleTimeout time.Duration
	PingTimeout     time.Duration

	MaxFails       int
	CoolDown       time.Duration
	HealthPath     string
	HealthInterval time.Duration
	HealthTimeout  time.Duration

	// Retry resends an idempotent, bodiless request once to another
	// target when the first could not even be connected to.
	Retry bool

	// Breaker, when set, gives each target a circuit breaker (see
	// balance.BreakerOptions): an open target is skipped, and while
	// every target is open requests fail at once with 503 and a
	// Retry-After of the time left until the first breaker half-opens.
	Breaker *balance.BreakerOptions

	Logger *slog.Logger
	Now    func() time.Time
}

// Upstream is a pooled, balanced http.RoundTripper for one group of
// targets. All requests of all routes that name it share its transport,
// so keep-alive connections and HTTP/2 streams are reused across them.
type Upstream struct {
	name      string
	pool      *balance.Pool
	transport *http.Transport   // net/http's, for HTTP/2 and negotiation
	rt        http.RoundTripper // what requests use: transport or h1
	h1        *h1Transport      // nil unless every target speaks HTTP/1.1 only
	stop      chan struct{}     // closed by Close; ends the idle sweeper
	sweeping  sync.WaitGroup
	retry     bool
	// unavailable counts requests failed at once for want of a target.
	unavailable atomic.Uint64
	log         *slog.Logger
	// warm has a gate per target, by Target.Index, when every
	// connection will be HTTP/2 (h2, h2c); nil otherwise. See warmGate.
	warm []*warmGate
	obs  upstreamObs // counters and latency observer (observe.go)
}

var _ http.RoundTripper = (*Upstream)(nil)

// errNoTarget is returned when no target can take a request: every
// target's breaker refuses it. Such errors are *noTargetError, which
// says when to try again.
var errNoTarget = errors.New("no healthy upstream target")

// noTargetError is errNoTarget with the time until a breaker lets a
// probe through, for the 503's Retry-After.
type noTargetError struct{ wait time.Duration }

func (e *noTargetError) Error() string { return errNoTarget.Error() }
func (e *noTargetError) Unwrap() error { return errNoTarget }

// NewUpstream builds the transport and the balancing pool. Call Start to
// begin active health checks and Close to stop them.
func NewUpstream(o UpstreamOptions) (*Upstream, error) {
	if o.Name == "" {
		return nil, errors.New("proxy: upstream needs a name")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	tr, err := newTransport(o)
	if err != nil {
		return nil, fmt.Errorf("proxy: upstream %q: %w", o.Name, err)
	}
	var rt http.RoundTripper = tr
	var h1 *h1Transport
	if usesH1(o) {
		h1 = newH1Transport(o, tr)
		rt = h1
	}
	bo := o.balanceOptions()
	bo.HealthClient = &http.Client{Transport: rt, CheckRedirect: noRedirect}
	bo.Logger = o.Logger.With("upstream", o.Name)
	pool, err := balance.New(bo)
	if err != nil {
		return nil, fmt.Errorf("proxy: upstream %q: %w", o.Name, err)
	}
	u := &Upstream{name: o.Name, pool: pool, transport: tr, rt: rt, h1: h1, stop: make(chan struct{}), retry: o.Retry, log: o.Logger}
	u.initObs()
	// The gate is for targets spoken to over HTTP/2: all of them with h2
	// and h2c, and the https ones with auto, which ALPN may take to
	// HTTP/2 (if it settles on HTTP/1.1, only the first request waited).
	if o.Protocol == ProtoH2 || o.Protocol == ProtoH2C || o.Protocol == ProtoAuto || o.Protocol == "" {
		targets := pool.Targets()
		for i, t := range targets {
			if o.Protocol != ProtoH2 && o.Protocol != ProtoH2C && t.URL.Scheme != "https" {
				continue
			}
			if u.warm == nil {
				u.warm = make([]*warmGate, len(targets))
			}
			u.warm[i] = new(warmGate)
		}
	}
	return u, nil
}

// balanceOptions maps o to its pool's options, but for the health
// client and the logger.
func (o UpstreamOptions) balanceOptions() balance.Options {
	return balance.Options{
		Targets:        o.Targets,
		Policy:         o.Balance,
		HashOn:         o.HashOn,
		MaxFails:       o.MaxFails,
		CoolDown:       o.CoolDown,
		HealthPath:     o.HealthPath,
		HealthInterval: o.HealthInterval,
		HealthTimeout:  o.HealthTimeout,
		Breaker:        o.Breaker,
		Now:            o.Now,
	}
}

// Validate reports the problems with the protocol, the targets'
// agreement with it (h2 needs https, h2c http) and the connection
// limits, and those balance.Options.Validate finds with the targets,
// balancing policy, hash key, failure count, health path and breaker,
// each a *fielderr.Error naming the field of o (Protocol, Targets with
// the index, MaxConnsPerTarget, MaxIdlePerTarget, Balance, HashOn,
// MaxFails, HealthPath, Breaker.FIELD), joined.
// NewUpstream checks the rest.
func (o UpstreamOptions) Validate() error {
	const pkg = "proxy: upstream"
	var errs []error
	switch o.Protocol {
	case ProtoHTTP1, ProtoH2, ProtoH2C, ProtoAuto, "":
	default:
		errs = append(errs, fielderr.New(pkg, "Protocol", fmt.Sprintf("invalid value %q (want %s, %s, %s or %s)",
			o.Protocol, ProtoHTTP1, ProtoH2, ProtoH2C, ProtoAuto)))
	}
	for i, t := range o.Targets {
		// Other schemes are package balance's to report.
		switch {
		case t == nil:
		case o.Protocol == ProtoH2 && t.Scheme == "http":
			errs = append(errs, fielderr.At(pkg, "Targets", i, "protocol h2 is HTTP/2 over TLS and needs an https target (h2c is HTTP/2 without TLS)"))
		case o.Protocol == ProtoH2C && t.Scheme == "https":
			errs = append(errs, fielderr.At(pkg, "Targets", i, "protocol h2c is HTTP/2 without TLS and needs an http target (h2 is HTTP/2 over TLS)"))
		}
	}
	if o.MaxConnsPerTarget < 0 {
		errs = append(errs, fielderr.New(pkg, "MaxConnsPerTarget", fmt.Sprintf("%d: must not be negative", o.MaxConnsPerTarget)))
	}
	if o.MaxIdlePerTarget < 0 {
		errs = append(errs, fielderr.New(pkg, "MaxIdlePerTarget", fmt.Sprintf("%d: must not be negative", o.MaxIdlePerTarget)))
	}
	fs, others := fielderr.Split(o.balanceOptions().Validate())
	errs = append(errs, others...)
	for _, e := range fs {
		e := *e
		e.Pkg = pkg
		if e.Field == "Policy" {
			e.Field = "Balance"
		}
		errs = append(errs, &e)
	}
	return errors.Join(errs...)
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func newTransport(o UpstreamOptions) (*http.Transport, error) {
	var protos http.Protocols
	switch o.Protocol {
	case ProtoHTTP1:
		protos.SetHTTP1(true)
	case ProtoH2:
		protos.SetHTTP2(true)
	case ProtoH2C:
		protos.SetUnencryptedHTTP2(true)
	default: // ProtoAuto or "", as Validate allows no other
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
	}
	maxIdle := o.MaxIdlePerTarget
	if maxIdle == 0 {
		maxIdle = 64
	}
	dialTimeout := o.DialTimeout
	if dialTimeout == 0 {
		dialTimeout = 5 * time.Second
	}
	// The standard library's HTTP/2 configuration replaces the options
	// of golang.org/x/net/http2.Transport, which is deprecated in its
	// favour: SendPingTimeout is x/net's ReadIdleTimeout.
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   maxIdle,
		MaxConnsPerHost:       o.MaxConnsPerTarget,
		IdleConnTimeout:       o.IdleConnTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
		// A clone: net/http writes its ALPN protocols into the config,
		// which the caller may share with other upstreams.
		TLSClientConfig: o.TLSConfig.Clone(),
		// The client's Accept-Encoding passes through untouched; the
		// transport must neither add gzip nor decode behind our back.
		DisableCompression: true,
		Protocols:          &protos,
		// As the HTTP/1.1 transport bounds each response head.
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: o.ReadIdleTimeout,
			PingTimeout:     o.PingTimeout,
		},
	}, nil
}

// Name is the configured name, for logs and status pages.
func (u *Upstream) Name() string { return u.name }

// Start begins active health checks, if configured, and the sweep of
// idle HTTP/1.1 connections.
func (u *Upstream) Start() {
	u.pool.Start()
	if u.h1 != nil {
		u.sweeping.Add(1)
		go func() {
			defer u.sweeping.Done()
			// Often enough to close surplus connections about surplusIdle
			// after a burst, and idle ones within half the idle timeout:
			// surplusIdle is at most the idle timeout (newH1Transport).
			tick := time.NewTicker(max(u.h1.surplusIdle/2, time.Millisecond))
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					u.h1.sweep()
				case <-u.stop:
					return
				}
			}
		}()
	}
}

// Close stops health checks and the sweeper and closes idle connections.
// Call it once.
func (u *Upstream) Close() {
	u.pool.Close()
	close(u.stop)
	u.sweeping.Wait()
	u.transport.CloseIdleConnections()
	if u.h1 != nil {
		u.h1.closeIdle()
	}
}

// Healthy reports whether at least one target can take traffic.
func (u *Upstream) Healthy() bool { return u.pool.Healthy() }

// Status lists the targets and their health.
func (u *Upstream) Status() []balance.TargetStatus {
	ts := u.pool.Targets()
	out := make([]balance.TargetStatus, len(ts))
	for i, t := range ts {
		out[i] = t.Status()
	}
	return out
}

// BreakerStates returns the circuit breaker of every target, in
// configuration order; nil when the upstream has no breakers.
func (u *Upstream) BreakerStates() []balance.BreakerState { return u.pool.BreakerStates() }

// Unavailable counts the requests that failed at once with 503 because
// no target could take them: every target's breaker open (or half-open
// with its probes out). Targets out after failures or failed checks do
// not count: with all of them out, the pool makes a panic pick.
func (u *Upstream) Unavailable() uint64 { return u.unavailable.Load() }

// roundTrip sends req to a target chosen by the pool and returns the
// target that answered, or failed last; nil when none could be picked.
// req is the outbound request that ReverseProxy (or the forwarder) owns,
// so its URL is ours to set. RoundTrip and send (observe.go) call it.
func (u *Upstream) roundTrip(req *http.Request, iw interimWriter) (*http.Response, *balance.Target, error) {
	t, adm := u.pool.Acquire(req)
	if t == nil {
		// Every target's breaker refuses (targets out for passive or
		// active health alone still get a panic pick): fail now,
		// without a dial. A cached route may answer stale.
		u.unavailable.Add(1)
		return nil, nil, &noTargetError{wait: u.pool.RetryAfter()}
	}
	resp, err := u.try(req, t, adm, iw)
	if err != nil && u.retry && neverSent(err) && retryable(req) && req.Context().Err() == nil {
		if t2, adm2 := u.pool.Acquire(req, t); t2 != nil {
			u.obs.retries.Add(1)
			u.log.Info("retrying on another target", "upstream", u.name, "failed", t.URL.Host, "target", t2.URL.Host, "err", err)
			t = t2
			resp, err = u.try(req, t2, adm2, iw)
		}
	}
	return resp, t, err
}

// try sends req to t, which adm admitted, and reports the outcome to
// t's health and breaker: a transport error or a 5xx response is a
// failure for the breaker, the error alone for passive health.
func (u *Upstream) try(req *http.Request, t *balance.Target, adm balance.Admission, iw interimWriter) (*http.Response, error) {
	req.URL.Scheme = t.URL.Scheme
	req.URL.Host = t.URL.Host
	t.Begin()
	var resp *http.Response
	var err error
	var g *warmGate
	if u.warm != nil {
		g = u.warm[t.Index()]
	}
	switch {
	case g != nil && !g.ready.Load():
		resp, err = g.roundTrip(u.rt, req)
	case iw != nil:
		resp, err = u.h1.send(req, iw)
	default:
		resp, err = u.rt.RoundTrip(req)
	}
	if err != nil {
		t.Done()
		if g != nil {
			// The connection may be gone: the next request dials alone.
			g.ready.Store(false)
		}
		// A client that went away, or whose body could not be read (too
		// large for the route, malformed chunks, stalled), says nothing
		// about the target: counted, one such client per cool-down
		// would keep every target out, or open the breakers.
		var ce clientError
		if clientGone(req.Context()) || errors.As(err, &ce) {
			adm.Done(balance.Ignored)
		} else {
			t.ReportError(err)
			adm.Done(balance.Failure)
			u.countError(t, req, err)
		}
		return nil, &targetError{target: t.URL.Host, err: err}
	}
	t.ReportSuccess()
	if resp.StatusCode >= 500 {
		adm.Done(balance.Failure)
	} else {
		adm.Done(balance.Success)
	}
	if b, ok := resp.Body.(*h1Body); ok {
		// The HTTP/1.1 transport's body ends the count itself: one
		// wrapper less per response.
		b.target = t
	} else if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
		// A 101 Switching Protocols body is the connection itself, and
		// ReverseProxy needs to write to it.
		resp.Body = &doneConn{doneBody{ReadCloser: rw, t: t}, rw}
	} else {
		resp.Body = &doneBody{ReadCloser: resp.Body, t: t}
	}
	return resp, nil
}

// warmGate makes requests to a target without an HTTP/2 connection wait
// while one of them dials. net/http dials for every request that finds no
// connection, as it cannot know before the dial that the connection will
// be HTTP/2 and shared, so a burst at start opened one connection per
// request and then closed all but one. Waiters wait for one attempt
// only: if it fails, they go on as they would without the gate. A
// connection lost without an error (GOAWAY, idle close) is not noticed;
// the next burst then opens a few extra connections, as without the gate.
type warmGate struct {
	ready   atomic.Bool // a request got a connection and none failed since
	mu      sync.Mutex
	dialing chan struct{} // closed when the request that dials got a connection or failed
}

func (g *warmGate) roundTrip(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	if g.ready.Load() {
		g.mu.Unlock()
		return rt.RoundTrip(req)
	}
	if ch := g.dialing; ch != nil {
		g.mu.Unlock()
		select {
		case <-ch:
		case <-req.Context().Done():
			return nil, context.Cause(req.Context())
		}
		return rt.RoundTrip(req)
	}
	ch := make(chan struct{})
	g.dialing = ch
	g.mu.Unlock()
	var once sync.Once
	end := func(ok bool) {
		once.Do(func() {
			g.mu.Lock()
			g.ready.Store(ok)
			g.dialing = nil
			g.mu.Unlock()
			close(ch)
		})
	}
	// GotConn comes once the connection is in the transport's pools,
	// where the waiters will find it.
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { end(true) }}
	resp, err := rt.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	end(false) // no-op after GotConn
	return resp, err
}

// neverSent reports whether err proves no byte of the request reached
// the target: only a failed dial does. Go's transport already retries
// a request on a reused connection that died before it was written, so
// the dial is the case left to us, and it needs no per-request trace.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryable is true for idempotent methods without a body: a body may
// already be partly consumed and cannot be replayed.
func retryable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// targetError carries the target that failed to the error handler's log.
type targetError struct {
	target string
	err    error
}

func (e *targetError) Error() string { return e.target + ": " + e.err.Error() }
func (e *targetError) Unwrap() error { return e.err }

// doneBody ends the target's in-flight count when the response body is
// closed, so least_requests sees streaming responses as busy.
type doneBody struct {
	io.ReadCloser
	t    *balance.Target
	done bool
}

func (b *doneBody) Close() error {
	if !b.done {
		b.done = true
		b.t.Done()
	}
	return b.ReadCloser.Close()
}

type doneConn struct {
	doneBody
	w io.Writer
}

func (c *doneConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// usesH1 is true when every connection will be HTTP/1.1 without
// negotiation: protocol http1, or auto with cleartext targets only.
func usesH1(o UpstreamOptions) bool {
	if o.Protocol == ProtoHTTP1 {
		return true
	}
	if o.Protocol != ProtoAuto && o.Protocol != "" {
		return false
	}
	for _, t := range o.Targets {
		if t.Scheme != "http" {
			return false
		}
	}
	return true
}

// newH1Transport shares the dialer, limits and TLS settings of the
// net/http transport built from the same options.
func newH1Transport(o UpstreamOptions, tr *http.Transport) *h1Transport {
	idle := o.IdleConnTimeout
	if idle == 0 {
		idle = 90 * time.Second
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	surplus := surplusIdle
	if idle > 0 && idle < surplus {
		surplus = idle
	}
	return &h1Transport{
		dial:             tr.DialContext,
		tlsConfig:        tr.TLSClientConfig,
		maxConns:         tr.MaxConnsPerHost,
		maxIdle:          tr.MaxIdleConnsPerHost,
		idleTimeout:      idle,
		surplusIdle:      surplus,
		responseTimeout:  o.ResponseHeaderTimeout,
		handshakeTimeout: tr.TLSHandshakeTimeout,
		now:              now,
	}
}

// surplusIdle is how long HTTP/1.1 connections beyond
// max_idle_per_target stay open once idle (the idle timeout, if
// shorter): long enough to carry a burst of more concurrent requests
// than that from one moment to the next without dialing again.
const surplusIdle = 2 * time.Second
