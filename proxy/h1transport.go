package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"gateway/internal/clientwatch"
	"gateway/internal/sockread"
	"gateway/proxy/balance"
)

// h1Transport is the HTTP/1.1 client the gateway uses for upstreams that
// speak HTTP/1.1. net/http's Transport runs a reader and a writer
// goroutine per connection and hands every request and response between
// them over channels; for a proxy that forwards small requests that is
// several goroutine switches per request, more than the gateway's own
// work. Here the goroutine that serves the client writes the request and
// reads the response itself, and only a request body is written from a
// goroutine of its own, so an upstream may answer before it has read the
// whole body. Parsing and framing stay net/http's: Request.Write and
// ReadResponse.
type h1Transport struct {
	dial             func(ctx context.Context, network, addr string) (net.Conn, error)
	tlsConfig        *tls.Config
	maxConns         int // per target; 0 is no cap
	maxIdle          int // idle connections kept per target
	idleTimeout      time.Duration
	surplusIdle      time.Duration // how long those beyond maxIdle may stay idle (see put)
	responseTimeout  time.Duration // wait for response headers; 0 is none
	handshakeTimeout time.Duration // TLS handshake; 0 is only the request's context
	now              func() time.Time

	// hosts maps hostKey to *hostConns. It only grows, one entry per
	// target, and is read on every request: a sync.Map reads without a
	// lock that every request of every target would contend on.
	hosts sync.Map
}

type hostKey struct{ scheme, addr string }

// hostConns is the pool of one target.
type hostConns struct {
	t       *h1Transport
	addr    string
	tls     bool
	mu      sync.Mutex // guards the fields below
	idle    []*h1Conn  // most recently used last
	open    int        // connections open or being dialed
	waiters []chan *h1Conn
}

type h1Conn struct {
	net.Conn
	host      *hostConns
	br        *bufio.Reader // reads through Read, below
	bw        *bufio.Writer
	idleSince time.Time
	// inHead is set while the status line and header of a response are
	// read; headLeft is then what is left of maxResponseHeaderBytes.
	// Only the goroutine that reads the response uses them.
	inHead   bool
	headLeft int
	// cut fails the connection's blocked and future reads and writes;
	// each exchange hooks it to its request's end. Made once with the
	// connection, so that hooking it costs a request no closure.
	cut func()
}

// maxResponseHeaderBytes bounds the status line and header of each
// response an upstream sends (every 1xx and the final one). Without a
// bound, an upstream, broken or hostile, makes the gateway buffer a
// header of any size, as net/http's Transport avoids with
// MaxResponseHeaderBytes. The options have no setting for it: 1 MiB is
// the listeners' own default for request headers and far beyond real
// responses (nginx's proxy_buffer_size, which must hold the whole
// response header, is 4 or 8 KiB by default).
const maxResponseHeaderBytes = 1 << 20

// errResponseHeaderTooLarge fails a response whose head goes over
// maxResponseHeaderBytes; like any upstream failure without a more
// specific cause, it is a 502 (see classify).
var errResponseHeaderTooLarge = errors.New("upstream response header larger than 1 MiB")

// Read is what the response reader c.br reads from. While a response
// head is read it stops at maxResponseHeaderBytes, as net/http's
// persistConn does: the bound is on the bytes taken from the socket, so
// no single header line, however long, is buffered whole first.
func (c *h1Conn) Read(p []byte) (int, error) {
	if !c.inHead {
		return c.Conn.Read(p)
	}
	if c.headLeft <= 0 {
		return 0, errResponseHeaderTooLarge
	}
	if len(p) > c.headLeft {
		p = p[:c.headLeft]
	}
	n, err := c.Conn.Read(p)
	c.headLeft -= n
	return n, err
}

func (t *h1Transport) pool(scheme, addr string) *hostConns {
	key := hostKey{scheme, addr} // a struct key: no string built per request
	if p, ok := t.hosts.Load(key); ok {
		return p.(*hostConns)
	}
	p, _ := t.hosts.LoadOrStore(key, &hostConns{t: t, addr: addr, tls: scheme == "https"})
	return p.(*hostConns)
}

// get takes an idle connection, dials a new one, or, at the cap, waits
// for one to be handed over; a waiter handed nil may dial in the slot
// that a closed connection freed.
func (p *hostConns) get(ctx context.Context) (c *h1Conn, reused bool, err error) {
	now := p.t.now()
	p.mu.Lock()
	for len(p.idle) > 0 {
		c = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if p.t.idleTimeout > 0 && now.Sub(c.idleSince) > p.t.idleTimeout {
			p.open--
			p.mu.Unlock()
			c.Conn.Close()
			p.mu.Lock()
			continue
		}
		p.mu.Unlock()
		return c, true, nil
	}
	if p.t.maxConns > 0 && p.open >= p.t.maxConns {
		ch := make(chan *h1Conn, 1)
		p.waiters = append(p.waiters, ch)
		p.mu.Unlock()
		select {
		case c = <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			queued := false
			for i, w := range p.waiters {
				if w == ch {
					p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
					queued = true
					break
				}
			}
			p.mu.Unlock()
			if !queued {
				// put or release took us off the queue, so a connection
				// or a slot is on its way, if not here yet: pass it on.
				if c = <-ch; c != nil {
					p.put(c)
				} else {
					p.release()
				}
			}
			return nil, false, ctx.Err()
		}
		if c != nil {
			return c, true, nil
		}
		// A slot was freed for us to dial in.
	} else {
		p.open++
		p.mu.Unlock()
	}
	c, err = p.dial(ctx)
	if err != nil {
		p.release()
		return nil, false, err
	}
	return c, false, nil
}

func (p *hostConns) dial(ctx context.Context) (*h1Conn, error) {
	conn, err := p.t.dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if p.tls {
		cfg := p.t.tlsConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(p.addr)
			cfg.ServerName = host
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(conn, cfg)
		hctx := ctx
		if d := p.t.handshakeTimeout; d > 0 {
			// As net/http's TLSHandshakeTimeout: a target that accepts
			// but never finishes the handshake must not hold the request
			// for the whole route timeout.
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		if err := tc.HandshakeContext(hctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	c := &h1Conn{
		Conn: conn,
		host: p,
		bw:   bufio.NewWriterSize(conn, 4<<10),
	}
	c.br = bufio.NewReaderSize(c, 4<<10)
	c.cut = func() { _ = c.Conn.SetDeadline(aLongTimeAgo) }
	return c, nil
}

// put returns a healthy connection: to a waiter first, else to the idle
// list. The list may grow past maxIdle: while more requests are in
// flight than maxIdle, a connection closed on return would be dialed
// again by the next request, a TCP handshake (and TLS) per request for
// as long as the load lasts. The sweep closes those beyond maxIdle once
// they have been idle for surplusIdle, so the pool shrinks back soon
// after the load does.
func (p *hostConns) put(c *h1Conn) {
	p.mu.Lock()
	if w := p.nextWaiterLocked(); w != nil {
		p.mu.Unlock()
		w <- c
		return
	}
	c.idleSince = p.t.now()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// release gives up a connection's slot after it was closed or its dial
// failed, letting a waiter dial instead.
func (p *hostConns) release() {
	p.mu.Lock()
	if w := p.nextWaiterLocked(); w != nil {
		p.mu.Unlock()
		w <- nil
		return
	}
	p.open--
	p.mu.Unlock()
}

// nextWaiterLocked takes the longest-waiting request off the queue, or
// returns nil; the caller sends it a connection or nil after unlocking.
func (p *hostConns) nextWaiterLocked() chan *h1Conn {
	if len(p.waiters) == 0 {
		return nil
	}
	w := p.waiters[0]
	p.waiters = p.waiters[1:]
	return w
}

func (c *h1Conn) close() {
	c.Conn.Close()
	c.host.release()
}

// closeIdle closes every idle connection.
func (t *h1Transport) closeIdle() {
	t.closeIdleWhere(func(*h1Conn, bool) bool { return true })
}

// sweep closes connections idle for longer than the idle timeout, so an
// upstream that went quiet does not keep sockets open on both sides, and
// those beyond maxIdle idle for longer than surplusIdle.
func (t *h1Transport) sweep() {
	now := t.now()
	t.closeIdleWhere(func(c *h1Conn, surplus bool) bool {
		idle := now.Sub(c.idleSince)
		return (t.idleTimeout > 0 && idle > t.idleTimeout) || (surplus && idle > t.surplusIdle)
	})
}

// closeIdleWhere closes the idle connections that stale picks, in every
// target's pool; surplus tells it that the connection is one of those
// beyond maxIdle, counted from the least recently used.
func (t *h1Transport) closeIdleWhere(stale func(c *h1Conn, surplus bool) bool) {
	t.hosts.Range(func(_, v any) bool {
		p := v.(*hostConns)
		var gone []*h1Conn
		p.mu.Lock()
		extra := len(p.idle) - t.maxIdle
		keep := p.idle[:0]
		for i, c := range p.idle {
			// The list runs from least to most recently returned.
			if stale(c, i < extra) {
				gone = append(gone, c)
			} else {
				keep = append(keep, c)
			}
		}
		clear(p.idle[len(keep):])
		p.idle = keep
		p.open -= len(gone)
		p.mu.Unlock()
		for _, c := range gone {
			c.Conn.Close()
		}
		return true
	})
}

// RoundTrip sends req on a pooled connection. A request that fails on a
// reused connection before any response byte arrived, because the
// upstream closed the connection while it was idle, goes again, as
// net/http's Transport does: an idempotent one without a body when it was
// not sent at all, and a replayable one (GET, HEAD, OPTIONS, TRACE, or
// one with an Idempotency-Key) even when the upstream may have received
// it. The idle connections to the target go too, as they have likely
// been closed the same way (an upstream restart), so that the next try
// dials; a request is sent at most twice more, so an upstream that takes
// requests and then drops the connection does not get one for every idle
// connection.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.send(req, nil)
}

// interimWriter takes the interim (1xx) responses of a request sent
// with it, in place of the client trace ReverseProxy puts in the
// request's context (see passInterim).
type interimWriter interface {
	writeInterim(code int, h http.Header) error
}

// send is RoundTrip, with iw, when not nil, taking the interim
// responses.
func (t *h1Transport) send(req *http.Request, iw interimWriter) (*http.Response, error) {
	ctx := req.Context()
	p := t.pool(req.URL.Scheme, canonicalAddr(req.URL.Scheme, req.URL.Host))
	hasBody := req.Body != nil && req.Body != http.NoBody
	for again := 0; ; {
		c, reused, err := p.get(ctx)
		if err != nil {
			if hasBody {
				req.Body.Close() // a RoundTripper always closes it; Request.Write would have
			}
			return nil, err
		}
		if reused && (hasBody || !retryable(req)) && !c.alive() {
			// A request that cannot be sent twice (a body, or a method
			// that is not idempotent) must not meet a connection the
			// upstream closed while it was idle.
			c.close()
			continue
		}
		resp, fresh, err := c.roundTrip(req, hasBody, iw)
		if err == nil {
			return resp, nil
		}
		// A timeout is the upstream being slow, not a connection it had
		// closed: sending the request again would repeat it upstream and
		// multiply the client's wait.
		// Only idempotent methods go again, as with net/http: a POST the
		// upstream ran before its connection died must not run twice,
		// and a PUT or DELETE it may have received not either.
		var ne net.Error
		var ns notSentError
		if reused && fresh && again < 2 && ctx.Err() == nil && !(errors.As(err, &ne) && ne.Timeout()) &&
			((errors.As(err, &ns) && retryable(req)) || replayable(req)) {
			p.dropIdle()
			again++
			continue
		}
		// A failed read of the client's body comes first: net/http cancels
		// the request when any read from the client fails, so the
		// context is done as well, but the cause is the client's (a
		// stalled body is a 408, see classify), not the request's end.
		var ce clientError
		if ctx.Err() != nil && !errors.As(err, &ce) {
			return nil, ctx.Err()
		}
		return nil, err
	}
}

// notSentError is a failure to write a request without a body: the
// upstream got none of it, so it may go again on another connection.
type notSentError struct{ err error }

func (e notSentError) Error() string { return e.err.Error() }
func (e notSentError) Unwrap() error { return e.err }

// replayable reports a request net/http's Transport would also send again
// after the upstream may have received it: no body, and a safe method or
// an Idempotency-Key (RFC 9110 section 9.2.2).
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return len(req.Header["Idempotency-Key"]) > 0 || len(req.Header["X-Idempotency-Key"]) > 0
}

// dropIdle closes the target's idle connections: when one turns out to
// have been closed by the upstream, those idle as long or longer likely
// were too.
func (p *hostConns) dropIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.mu.Unlock()
	for _, c := range idle {
		c.Conn.Close()
	}
}

// alive reports whether an idle connection is still open: a read that
// must return at once finds either nothing (open) or EOF (closed).
func (c *h1Conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false // the upstream sent bytes nobody asked for
	}
	// A byte read is one nobody asked for. A TLS connection or a Windows
	// socket cannot be read without waiting: it is taken as open.
	var b [1]byte
	_, err := sockread.Now(c.Conn, b[:])
	return errors.Is(err, sockread.ErrWouldBlock) || errors.Is(err, sockread.ErrUnsupported)
}

// maxInterim bounds the 1xx responses before the final one, as net/http
// does, so an upstream cannot hold a request with an endless stream of
// them.
const maxInterim = 5

// aLongTimeAgo is a deadline in the past, to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

var (
	errTooManyInterim  = errors.New("upstream sent too many 1xx responses")
	errUpgradeWithBody = errors.New("101 Switching Protocols in answer to a request with a body")
)

// exchange is one request and its response on a connection, from the
// request's first byte to the response body's end. One is allocated per
// request; the response body is a field of it.
type exchange struct {
	c    *h1Conn
	req  *http.Request // its context done: the connection may have a past deadline
	stop func() bool   // unhooks the context's cancellation from the connection
	// dc, when set, is the request's unarmed route deadline, kept as
	// the connection's I/O deadline, whose cancel cuts the connection
	// through its hook. Its parent's end is watched by watch, when set,
	// the client's connection (see ClientLeft), else by stop.
	dc    *deadlineCtx
	watch clientwatch.Watcher
	iw    interimWriter // takes interim responses; nil: the client trace does
	// end, when set, is the route's deadline, kept as the connection's
	// I/O deadline instead of by the request's context.
	end time.Time

	// With a request body, the body writer goroutine writes the request
	// (see writeRequest) while the response is read. Its send on
	// bodyDone is its last act: after it, it neither writes to the
	// connection nor reads the client's body. bodyDone is nil without a
	// body.
	body     bodyErr
	bodyDone chan error

	// mu guards headers, set once the response headers are read: the
	// body writer starts the response header timeout only before then.
	mu      sync.Mutex
	headers bool

	resp h1Body
}

// roundTrip runs one exchange. fresh reports that the connection failed
// before any byte of the response was read. On error the connection is
// closed and the body writer has returned.
func (c *h1Conn) roundTrip(req *http.Request, hasBody bool, iw interimWriter) (resp *http.Response, fresh bool, err error) {
	x := &exchange{c: c, req: req, iw: iw}
	if dc, ok := req.Context().(*deadlineCtx); ok && dc.setHook(c.cut) {
		// The route's deadline, which nothing else waits for, bounds
		// the exchange as the connection's I/O deadline (cleared when
		// it goes back to the pool); its cancel cuts the connection
		// through the hook, and the parent's end needs a watch of its
		// own (see deadlineCtx).
		x.dc, x.end = dc, dc.end
		_ = c.Conn.SetDeadline(x.end)
		if dc.watch != nil && dc.watch.Watch(x) {
			// The client's connection says when it leaves.
			x.watch = dc.watch
			if testHookWatched != nil {
				testHookWatched()
			}
		} else {
			x.stop = context.AfterFunc(dc.Context, c.cut)
		}
	} else {
		x.stop = context.AfterFunc(req.Context(), c.cut)
	}
	if hasBody {
		x.startBodyWriter()
	} else if err := x.writeHead(); err != nil {
		// The head fits the buffer and goes in one write: when that
		// fails, the upstream got none of it.
		return x.abort(notSentError{err}, true)
	}
	c.inHead, c.headLeft = true, maxResponseHeaderBytes
	if _, err := c.br.Peek(1); err != nil {
		return x.abort(readError{err}, true)
	}
	if resp, err = x.readResponse(); err != nil {
		return x.abort(err, false)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols && hasBody {
		return x.abort(errUpgradeWithBody, false)
	}
	return x.wrapBody(resp), false, nil
}

// testHookWatched, when set, is called for each exchange whose client's
// connection watches for the client leaving.
var testHookWatched func()

// unhook stops watching for the request's end: false when the watch
// has fired, and the connection may be cut at any time.
func (x *exchange) unhook() bool {
	ok := true
	if x.dc != nil {
		ok = x.dc.clearHook()
	}
	if x.watch != nil {
		return x.watch.Unwatch(x) && ok
	}
	return x.stop() && ok
}

// ClientLeft cuts the connection once the request's context has ended,
// which net/http does right after the client's connection tells us
// (clientwatch.Leaver): the exchange then fails as canceled, not as the
// upstream's fault.
func (x *exchange) ClientLeft() {
	parent := x.dc.Context
	go func() {
		<-parent.Done()
		x.c.cut()
	}()
}

// readError is a failure to read the response. When the body writer
// failed too, its error is the likelier cause (a body over the limit, a
// client that went away), and abort reports that one instead.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// abort ends a failed exchange, and is the only way one ends before its
// response is handed on. Closing the connection fails the body writer's
// next write and ends one blocked on a full socket; abort then waits for
// the writer to return, however long the client's body takes to give
// its next bytes, so that nothing writes to the connection or reads the
// client's body after RoundTrip returns.
func (x *exchange) abort(err error, fresh bool) (*http.Response, bool, error) {
	x.unhook()
	werr := x.shut()
	if re, ok := err.(readError); ok {
		err = re.err
		// An upstream's oversized header is no fault of the body's.
		if werr != nil && !errors.Is(err, errResponseHeaderTooLarge) {
			err = werr
		}
	}
	x.c.host.release()
	return nil, fresh, err
}

// shut closes the connection and returns once the body writer has, with
// its error.
func (x *exchange) shut() error {
	x.c.Conn.Close()
	if x.bodyDone == nil {
		return nil
	}
	return <-x.bodyDone
}

// writeHead writes a request without a body and starts the response
// header timeout.
func (x *exchange) writeHead() error {
	bw := x.c.bw
	if !writeHead(bw, x.req) {
		if err := x.req.Write(bw); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	x.startTimer()
	return nil
}

// startBodyWriter starts the goroutine that writes a request with a
// body. The upstream may answer (413, say) before reading all of the
// body, so the body is written while the response is read.
func (x *exchange) startBodyWriter() {
	// req.Write hides the body's own error in a type without Unwrap;
	// keep it, so a body over the limit is still a 413.
	x.body.ReadCloser = x.req.Body
	x.req.Body = &x.body
	x.bodyDone = make(chan error, 1)
	go x.writeRequest()
}

// writeRequest is the body writer goroutine.
func (x *exchange) writeRequest() {
	c := x.c
	err := x.req.Write(c.bw)
	if x.body.err != nil {
		err = x.body.err
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err == nil {
		x.mu.Lock()
		if !x.headers {
			x.startTimer()
		}
		x.mu.Unlock()
	} else {
		// A body that cannot be finished (the client's read failed, or
		// it went over the limit) leaves the upstream waiting for the
		// rest: end the exchange.
		c.Conn.Close()
	}
	x.bodyDone <- err
}

// startTimer starts the response header timeout once the request is
// written, as net/http's ResponseHeaderTimeout does, so a slow upload is
// not cut off.
func (x *exchange) startTimer() {
	if t := x.c.host.t.responseTimeout; t > 0 {
		// A deadline is wall-clock time, whatever clock t.now reads.
		d := time.Now().Add(t)
		if !x.end.IsZero() && x.end.Before(d) {
			d = x.end
		}
		x.c.setReadDeadline(x.req.Context(), d)
	}
}

// readResponse reads response heads until the final one, passing each
// interim 1xx response on (see passInterim), and stops the response
// header timeout: once the headers are read, a deadline would cut the
// response body short.
func (x *exchange) readResponse() (*http.Response, error) {
	c := x.c
	for interim := 0; ; interim++ {
		if interim > maxInterim {
			return nil, errTooManyInterim
		}
		resp, err := http.ReadResponse(c.br, x.req)
		if err != nil {
			return nil, readError{err}
		}
		// 101 ends the exchange like a final response.
		if code := resp.StatusCode; code >= 200 || code == http.StatusSwitchingProtocols {
			c.inHead = false
			if c.host.t.responseTimeout > 0 {
				x.mu.Lock()
				x.headers = true
				c.setReadDeadline(x.req.Context(), x.end)
				x.mu.Unlock()
			}
			return resp, nil
		}
		if err := x.passInterim(resp); err != nil {
			return nil, err
		}
		c.headLeft = maxResponseHeaderBytes // each response head has its own bound
	}
}

// passInterim hands an interim response to x.iw, or else the client's
// trace.
// Interim responses are the client's: a proxy must pass them on (RFC
// 9110, section 15.2), 103 Early Hints above all, and ReverseProxy
// writes them to the client from its trace's Got1xxResponse. Not a 100
// Continue to a request with a body and Expect: 100-continue, though:
// the body is on its way already, and the gateway's server answered the
// client's expectation itself when the body was first read, so that 100
// would reach the client twice. Nor to an HTTP/1.0 client, which may not
// get any (section 15.2).
func (x *exchange) passInterim(resp *http.Response) error {
	code, req := resp.StatusCode, x.req
	if !req.ProtoAtLeast(1, 1) ||
		(code == http.StatusContinue && x.bodyDone != nil && httpguts.HeaderValuesContainsToken(req.Header["Expect"], "100-continue")) {
		return nil
	}
	if x.iw != nil {
		return x.iw.writeInterim(code, resp.Header)
	}
	if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.Got1xxResponse != nil {
		return trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header))
	}
	return nil
}

// wrapBody hands the connection to the response body, which returns it
// to the pool or closes it at its end (see h1Body.finish), or, after
// 101 Switching Protocols, to the upgraded protocol.
func (x *exchange) wrapBody(resp *http.Response) *http.Response {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		x.unhook()
		if !x.end.IsZero() {
			_ = x.c.Conn.SetDeadline(time.Time{}) // the tunnel outlives the exchange
		}
		// The connection belongs to the upgraded protocol; it leaves
		// the pool for good.
		x.c.host.release()
		resp.Body = &upgradedConn{x.c}
		return resp
	}
	x.resp = h1Body{x: x, rc: resp.Body, keep: !resp.Close && !x.req.Close}
	resp.Body = &x.resp
	return resp
}

// setReadDeadline sets a read deadline without undoing the past deadline
// that ctx's cancellation may have set just before: once ctx is done, the
// deadline stays in the past.
func (c *h1Conn) setReadDeadline(ctx context.Context, t time.Time) {
	_ = c.Conn.SetReadDeadline(t)
	if ctx.Err() != nil {
		_ = c.Conn.SetDeadline(aLongTimeAgo)
	}
}

// h1Body returns the connection to the pool when the response body has
// been read to its end, and closes it otherwise.
type h1Body struct {
	x    *exchange
	rc   io.ReadCloser
	keep bool
	done bool
	// target, when set, is ended on the first Close, as doneBody does
	// for other transports' bodies (Upstream.try sets it).
	target *balance.Target
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

func (b *h1Body) Close() error {
	if t := b.target; t != nil {
		b.target = nil
		t.Done()
	}
	if !b.done {
		// Unread body left: the connection cannot carry another request.
		// Closing it first keeps net/http's Close from draining the rest.
		b.x.c.Conn.Close()
		b.rc.Close()
		b.finish(false)
	}
	return nil
}

func (b *h1Body) finish(eof bool) {
	b.done = true
	x, c := b.x, b.x.c
	reuse := x.unhook() && x.req.Context().Err() == nil && eof && b.keep // unhook first: it must always run
	// Bytes past the end of the response (a body longer than its
	// Content-Length, a body after HEAD, 204 or 304) would be read as the
	// response to the next request on the connection.
	reuse = reuse && c.br.Buffered() == 0
	if x.bodyDone != nil {
		var werr error
		written := false
		if reuse {
			select {
			case werr = <-x.bodyDone:
				written = true
			default:
				// Usually the writer is a scheduling step from done; if it
				// is still blocked soon after, the upstream answered
				// without taking the whole body, and the connection goes.
				timer := time.NewTimer(50 * time.Millisecond)
				select {
				case werr = <-x.bodyDone:
					written = true
				case <-timer.C:
				}
				timer.Stop()
			}
		}
		if !written {
			werr = x.shut() // ends a writer blocked on a full socket
			reuse = false
		}
		reuse = reuse && werr == nil
	}
	if reuse {
		if !x.end.IsZero() {
			_ = c.Conn.SetDeadline(time.Time{})
		}
		c.host.put(c)
	} else {
		c.close()
	}
}

// upgradedConn is the connection after 101 Switching Protocols: what the
// response reader buffered is read first.
type upgradedConn struct{ c *h1Conn }

func (u *upgradedConn) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgradedConn) Write(p []byte) (int, error) { return u.c.Conn.Write(p) }
func (u *upgradedConn) Close() error                { return u.c.Conn.Close() }

// canonicalAddr adds the scheme's default port.
func canonicalAddr(scheme, host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if scheme == "https" {
		return net.JoinHostPort(host, "443")
	}
	return net.JoinHostPort(host, "80")
}

// bodyErr remembers the first error reading a request body.
type bodyErr struct {
	io.ReadCloser
	err error
}

func (b *bodyErr) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}
