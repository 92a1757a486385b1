package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WebSocket passthrough. A request with "Connection: Upgrade" and an
// Upgrade header (WebSocket, or any other protocol) goes to the upstream
// like any other; when the upstream answers 101 Switching Protocols,
// ReverseProxy hijacks the client's connection and splices it to the
// upstream's, copying bytes both ways. The gateway never parses frames:
// subprotocol (Sec-WebSocket-Protocol) and extension
// (Sec-WebSocket-Extensions) negotiation is between client and upstream.
// Around that, the route's handler:
//
//   - caps the route's concurrent tunnels (handshakes in progress
//     included) and answers 503 over the cap, before any upstream is
//     contacted;
//   - bounds the handshake, not the tunnel, by the route timeout;
//   - wraps the hijacked connection to count bytes each way and to close
//     a tunnel that carried no byte in either direction for the idle
//     timeout;
//   - registers the tunnel with the Tunnels its request's context carries
//     (the entrypoints' base context), since http.Server.Shutdown forgets
//     hijacked connections: Tunnels.Shutdown, which runs after the
//     entrypoints have drained, lets tunnels run until its context ends,
//     then closes them.
//
// WebSockets are HTTP/1.1 only here: HTTP/2 has no Upgrade, and an
// upstream that speaks only HTTP/2 (h2, h2c) cannot take one. With
// protocol auto, net/http dials an HTTP/1.1 connection for a WebSocket
// handshake even to a target that offers h2.

// WebSocketOptions bound a route's WebSocket (HTTP/1.1 Upgrade) tunnels.
type WebSocketOptions struct {
	// MaxConnections caps the route's concurrent tunnels, handshakes in
	// progress included; one more gets 503 (0: no cap).
	MaxConnections int
	// IdleTimeout closes a tunnel that carried no byte in either
	// direction for this long (0: never).
	IdleTimeout time.Duration
}

// WSStats are one route's WebSocket counters since the Handler was built.
type WSStats struct {
	// Open is the number of tunnels open now (after 101, until closed).
	Open int64 `json:"open"`
	// Upgraded counts the tunnels opened.
	Upgraded uint64 `json:"upgraded"`
	// Rejected counts upgrade requests refused with 503 at
	// MaxConnections.
	Rejected uint64 `json:"rejected"`
	// IdleClosed counts tunnels closed by the idle timeout.
	IdleClosed uint64 `json:"idle_closed"`
	// BytesToUpstream and BytesToClient count the bytes carried after
	// the handshake, frames and their headers alike, each way.
	BytesToUpstream uint64 `json:"bytes_to_upstream"`
	BytesToClient   uint64 `json:"bytes_to_client"`
}

func (s WSStats) add(o WSStats) WSStats {
	s.Open += o.Open
	s.Upgraded += o.Upgraded
	s.Rejected += o.Rejected
	s.IdleClosed += o.IdleClosed
	s.BytesToUpstream += o.BytesToUpstream
	s.BytesToClient += o.BytesToClient
	return s
}

// WebSocketStats returns every route's WebSocket counters by route name
// (routes with the same name are summed).
func (h *Handler) WebSocketStats() map[string]WSStats {
	out := make(map[string]WSStats, len(h.routes))
	for _, r := range h.routes {
		out[r.name] = out[r.name].add(r.ws.stats())
	}
	return out
}

// wsRoute holds a route's limits and counters.
type wsRoute struct {
	max  int64
	idle time.Duration

	active     atomic.Int64 // handshakes and open tunnels, against max
	open       atomic.Int64
	upgraded   atomic.Uint64
	rejected   atomic.Uint64
	idleClosed atomic.Uint64
	toUpstream atomic.Uint64
	toClient   atomic.Uint64
}

func newWSRoute(o WebSocketOptions) (*wsRoute, error) {
	if o.MaxConnections < 0 || o.IdleTimeout < 0 {
		return nil, errors.New("websocket max connections and idle timeout must not be negative")
	}
	return &wsRoute{max: int64(o.MaxConnections), idle: o.IdleTimeout}, nil
}

func (ws *wsRoute) stats() WSStats {
	return WSStats{
		Open:            ws.open.Load(),
		Upgraded:        ws.upgraded.Load(),
		Rejected:        ws.rejected.Load(),
		IdleClosed:      ws.idleClosed.Load(),
		BytesToUpstream: ws.toUpstream.Load(),
		BytesToClient:   ws.toClient.Load(),
	}
}

// acquire takes a slot under the cap; release gives it back.
func (ws *wsRoute) acquire() bool {
	for {
		n := ws.active.Load()
		if ws.max > 0 && n >= ws.max {
			return false
		}
		if ws.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (ws *wsRoute) release() { ws.active.Add(-1) }

// isUpgradeRequest reports an HTTP/1.1 request asking to switch
// protocols. An HTTP/1.0 one may not (RFC 9110 section 7.8: a server
// must ignore Upgrade in it); HTTP/2 has no Upgrade at all.
func isUpgradeRequest(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.ProtoMinor >= 1 && isUpgrade(r.Header)
}

// isUpgrade reports whether ReverseProxy would treat a request with
// header h as a protocol upgrade: a Connection header with the "upgrade"
// token and an Upgrade header.
func isUpgrade(h http.Header) bool {
	up := h["Upgrade"]
	if len(up) == 0 || up[0] == "" {
		return false
	}
	// h2c is not tunnelled: an upstream that switched would take the
	// client's next bytes as HTTP/2 requests, past routing and limits
	// ("h2c smuggling"), and RFC 9113 retired this way of starting
	// HTTP/2. Such a request goes on as a plain one, without the field.
	for _, v := range up {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "h2c") {
				return false
			}
		}
	}
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// errHandshakeTimeout ends an upgrade whose upstream did not answer
// within the route timeout. It is a DeadlineExceeded, so the request
// fails with 504 like any other timed-out request.
var errHandshakeTimeout = fmt.Errorf("upgrade handshake: %w", context.DeadlineExceeded)

// serveUpgrade proxies an upgrade request of route ro.
func (h *Handler) serveUpgrade(w http.ResponseWriter, r *http.Request, ro *route) {
	ws := ro.ws
	if !ws.acquire() {
		ws.rejected.Add(1)
		Error(w, http.StatusServiceUnavailable, "too many websocket connections")
		return
	}
	tw := &tunnelWriter{ResponseWriter: w, ws: ws}
	tw.set, _ = r.Context().Value(tunnelsKey{}).(*Tunnels)
	// The slot is free before the tunnel stops counting as open, so a
	// client that saw the count drop finds the slot too.
	defer tw.finish()
	defer ws.release()
	if ro.timeout > 0 {
		// ReverseProxy closes the tunnel when the request's context
		// ends, so the route timeout cannot be a context deadline: it
		// is a cancellation that Hijack (the 101 arrived) disarms.
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		tw.handshake = time.AfterFunc(ro.timeout, func() { cancel(errHandshakeTimeout) })
		defer tw.handshake.Stop()
		r = r.WithContext(ctx)
	}
	ro.handler.ServeHTTP(tw, r)
}

// tunnelWriter is the ResponseWriter of an upgrade request. Its Hijack,
// which ReverseProxy calls once the upstream switched protocols, hands
// out the client's connection wrapped in a tunnel.
type tunnelWriter struct {
	http.ResponseWriter
	ws        *wsRoute
	set       *Tunnels    // the entrypoint's, or nil
	handshake *time.Timer // the route timeout, until Hijack; or nil
	t         *tunnel
}

// Unwrap lets http.ResponseController reach the deadlines.
func (tw *tunnelWriter) Unwrap() http.ResponseWriter { return tw.ResponseWriter }

// Flush is for a refused upgrade's streamed body, and for code that asks
// for an http.Flusher rather than using a ResponseController.
func (tw *tunnelWriter) Flush() { _ = http.NewResponseController(tw.ResponseWriter).Flush() }

func (tw *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if tw.t != nil {
		return nil, nil, http.ErrHijacked
	}
	t := &tunnel{ws: tw.ws}
	// Registered before the hijack: from the hijack on, the http.Server
	// no longer counts the connection, and a Shutdown in between must
	// still find it.
	if tw.set != nil {
		tw.set.add(t)
	}
	conn, brw, err := http.NewResponseController(tw.ResponseWriter).Hijack()
	if err != nil {
		if tw.set != nil {
			tw.set.remove(t)
		}
		return nil, nil, err
	}
	if tw.handshake != nil {
		tw.handshake.Stop()
	}
	tw.t = t
	tw.ws.open.Add(1)
	tw.ws.upgraded.Add(1)
	t.attach(conn, brw.Reader)
	return t, brw, nil
}

// finish runs when the route's handler returned, so the tunnel, if
// any, has ended.
func (tw *tunnelWriter) finish() {
	t := tw.t
	if t == nil {
		return
	}
	t.close()
	tw.ws.open.Add(-1)
	if tw.set != nil {
		tw.set.remove(t)
	}
}

// monoEpoch anchors monotonic timestamps: time.Since reads the
// monotonic clock, so a wall-clock step cannot fake or hide idleness.
var monoEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// tunnel is the client's side of a spliced connection: reads are bytes
// to the upstream, writes bytes to the client.
type tunnel struct {
	net.Conn
	ws *wsRoute
	// br holds what the server read past the request's headers, read
	// before the connection; nil once drained. Only the goroutine
	// copying to the upstream reads.
	br   *bufio.Reader
	last atomic.Int64 // monoNow of the last byte either way

	mu     sync.Mutex // guards the fields below and Conn until attach
	idle   *time.Timer
	closed bool
}

// attach gives the tunnel its connection and starts the idle timer. A
// tunnel closed before (by a Shutdown past its grace) closes it at once.
func (t *tunnel) attach(conn net.Conn, br *bufio.Reader) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Conn = conn
	if br != nil && br.Buffered() > 0 {
		t.br = br
	}
	if t.closed {
		conn.Close()
		return
	}
	if d := t.ws.idle; d > 0 {
		t.last.Store(monoNow())
		t.idle = time.AfterFunc(d, t.checkIdle)
	}
}

func (t *tunnel) Read(p []byte) (int, error) {
	var n int
	var err error
	if t.br != nil {
		n, err = t.br.Read(p)
		if t.br.Buffered() == 0 {
			t.br = nil
		}
	} else {
		n, err = t.Conn.Read(p)
	}
	if n > 0 {
		t.ws.toUpstream.Add(uint64(n))
		if t.ws.idle > 0 {
			t.last.Store(monoNow())
		}
	}
	return n, err
}

func (t *tunnel) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	if n > 0 {
		t.ws.toClient.Add(uint64(n))
		if t.ws.idle > 0 {
			t.last.Store(monoNow())
		}
	}
	return n, err
}

// CloseWrite passes the upstream's end of stream on to the client, as
// ReverseProxy does for an unwrapped connection.
func (t *tunnel) CloseWrite() error {
	if cw, ok := t.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Close is ReverseProxy's, when the splice ends.
func (t *tunnel) Close() error {
	t.close()
	return nil
}

func (t *tunnel) checkIdle() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	quiet := time.Duration(monoNow() - t.last.Load())
	if rest := t.ws.idle - quiet; rest > 0 {
		t.idle.Reset(rest)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.closeFor(&t.ws.idleClosed)
}

// close closes the client's connection, which ends the splice:
// ReverseProxy then closes the upstream's. It reports whether this call
// closed it.
func (t *tunnel) close() bool { return t.closeFor(nil) }

// closeFor is close that also counts why in reason, before the connection
// closes, so that whoever sees the tunnel gone also sees it counted.
func (t *tunnel) closeFor(reason *atomic.Uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.closed = true
	if reason != nil {
		reason.Add(1)
	}
	if t.idle != nil {
		t.idle.Stop()
	}
	if t.Conn != nil {
		t.Conn.Close()
	}
	return true
}

// tunnelsKey is the request context key of the Tunnels that upgraded
// connections register with.
type tunnelsKey struct{}

// Tunnels holds the open tunnels (upgraded connections) of the
// entrypoints whose requests carry it in their context (Context), which
// http.Server's Shutdown does not track once hijacked; Shutdown ends
// them. Without one, tunnels are not tracked.
type Tunnels struct {
	mu     sync.Mutex
	m      map[*tunnel]struct{}
	closed bool          // the shutdown grace is over: close new tunnels at once
	empty  chan struct{} // closed when m becomes empty, if someone waits
}

// NewTunnels makes an empty set.
func NewTunnels() *Tunnels { return &Tunnels{m: map[*tunnel]struct{}{}} }

// Context returns ctx carrying s, for the entrypoints' base context.
func (s *Tunnels) Context(ctx context.Context) context.Context {
	return context.WithValue(ctx, tunnelsKey{}, s)
}

func (s *Tunnels) add(t *tunnel) {
	s.mu.Lock()
	s.m[t] = struct{}{}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		t.close()
	}
}

func (s *Tunnels) remove(t *tunnel) {
	s.mu.Lock()
	delete(s.m, t)
	if len(s.m) == 0 && s.empty != nil {
		close(s.empty)
		s.empty = nil
	}
	s.mu.Unlock()
}

// wait returns a channel closed once no tunnel is open, or nil if none
// is.
func (s *Tunnels) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) == 0 {
		return nil
	}
	if s.empty == nil {
		s.empty = make(chan struct{})
	}
	return s.empty
}

// Shutdown lets the open tunnels run until they end or ctx is done,
// then closes the rest (and any opened later) and waits for their
// handlers to return. It returns ctx's error if it had to close any.
func (s *Tunnels) Shutdown(ctx context.Context) error {
	empty := s.wait()
	if empty == nil {
		return nil
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.closed = true
	open := make([]*tunnel, 0, len(s.m))
	for t := range s.m {
		open = append(open, t)
	}
	s.mu.Unlock()
	for _, t := range open {
		t.close()
	}
	// Both ends are closed, so the copies fail at once and the handlers
	// return promptly.
	if empty := s.wait(); empty != nil {
		<-empty
	}
	if len(open) == 0 {
		return nil
	}
	return ctx.Err()
}
