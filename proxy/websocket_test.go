package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"gateway/cache"
	"gateway/compress"
)

// WebSocket tests: real sockets all the way, github.com/coder/websocket at
// both ends (an echo upstream on httptest, the client), the gateway on
// the package's own Server.

// wsTimeout bounds every WebSocket operation of a test, so a tunnel that
// hangs fails the test instead of hanging it.
const wsTimeout = 20 * time.Second

// wsReadLimit lets the largest test message (1 MiB) through coder's
// default limit of 32 KiB.
const wsReadLimit = 4 << 20

// wsUpstream is a WebSocket upstream. By default it echoes every message
// until the connection ends; serve replaces that.
type wsUpstream struct {
	*backend
	accept     websocket.AcceptOptions
	serve      func(ctx context.Context, c *websocket.Conn) error
	handshakes atomic.Int64     // upgrade requests received
	headers    chan http.Header // each upgrade request's headers
	ends       chan error       // what each connection's serve returned

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*websocket.Conn]struct{}
}

func newWSUpstream(t *testing.T, kind serverKind, configure func(*wsUpstream)) *wsUpstream {
	t.Helper()
	u := &wsUpstream{
		accept:  websocket.AcceptOptions{Subprotocols: []string{"chat.v1"}},
		serve:   wsEcho,
		headers: make(chan http.Header, 1024),
		ends:    make(chan error, 1024),
		conns:   map[*websocket.Conn]struct{}{},
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	if configure != nil {
		configure(u)
	}
	u.backend = newBackend(t, kind, http.HandlerFunc(u.serveHTTP))
	// Runs before the backend's Close: hijacked connections are not the
	// server's to close, so their handlers are ended here.
	t.Cleanup(func() {
		u.cancel()
		u.mu.Lock()
		for c := range u.conns {
			c.CloseNow()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *wsUpstream) serveHTTP(w http.ResponseWriter, r *http.Request) {
	u.handshakes.Add(1)
	select {
	case u.headers <- r.Header.Clone():
	default:
	}
	u.wg.Add(1)
	defer u.wg.Done()
	c, err := websocket.Accept(w, r, &u.accept)
	if err != nil {
		return
	}
	c.SetReadLimit(wsReadLimit)
	u.mu.Lock()
	u.conns[c] = struct{}{}
	u.mu.Unlock()
	err = u.serve(u.ctx, c)
	c.CloseNow()
	u.mu.Lock()
	delete(u.conns, c)
	u.mu.Unlock()
	select {
	case u.ends <- err:
	default:
	}
}

func wsEcho(ctx context.Context, c *websocket.Conn) error {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, b); err != nil {
			return err
		}
	}
}

// wsGateway is the gateway with one route to u, on a Server.
type wsGateway struct {
	h   *Handler
	srv *running
	url string // ws://host:port
}

func newWSGateway(t *testing.T, u *wsUpstream, protocol string, ro RouteOptions) *wsGateway {
	t.Helper()
	uo := UpstreamOptions{Targets: []*url.URL{u.target(t)}, Protocol: protocol}
	if u.TLS != nil {
		uo.TLSConfig = u.clientTLS()
	}
	ro.Name = "ws"
	ro.Upstream = newUpstream(t, uo)
	h := newHandler(t, Options{Routes: []RouteOptions{ro}})
	// The listener's stall timeouts are on, as in production; they must
	// not reach into a tunnel.
	srv := startServer(t, h, ListenerOptions{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	return &wsGateway{h: h, srv: srv, url: "ws://" + srv.addr}
}

func (g *wsGateway) stats() WSStats { return g.h.WebSocketStats()["ws"] }

// wsDialer dials with its own transport, closed when the test ends.
type wsDialer struct {
	t      *testing.T
	client *http.Client
}

func newWSDialer(t *testing.T) *wsDialer {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &wsDialer{t: t, client: &http.Client{Transport: tr}}
}

func (d *wsDialer) dial(ctx context.Context, u string, o *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	if o == nil {
		o = &websocket.DialOptions{}
	}
	o.HTTPClient = d.client
	c, resp, err := websocket.Dial(ctx, u, o)
	if err == nil {
		c.SetReadLimit(wsReadLimit)
		d.t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func (d *wsDialer) mustDial(ctx context.Context, u string, o *websocket.DialOptions) *websocket.Conn {
	d.t.Helper()
	c, resp, err := d.dial(ctx, u, o)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		d.t.Fatalf("dial %s: got status %d, error %v; want a connection", u, status, err)
	}
	return c
}

func wsContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	t.Cleanup(cancel)
	return ctx
}

// payload is n bytes: printable for text messages, random for binary.
func payload(rng *rand.Rand, typ websocket.MessageType, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		if typ == websocket.MessageText {
			b[i] = byte('a' + rng.IntN(26))
		} else {
			b[i] = byte(rng.Uint32())
		}
	}
	return b
}

// echo sends p and checks that it comes back byte for byte, as the same
// message type.
func echo(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, p []byte) error {
	if err := c.Write(ctx, typ, p); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	gt, got, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if gt != typ || !bytes.Equal(got, p) {
		return fmt.Errorf("echo of %d bytes (%v): got %d bytes (%v), equal %t", len(p), typ, len(got), gt, bytes.Equal(got, p))
	}
	return nil
}

// eventually polls cond until it holds, failing t after a generous
// deadline. For state that settles just after the event a test sees,
// such as a counter bumped after the write that the client has read.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wsTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// frameOverhead is the size of a WebSocket frame header for a payload of
// n bytes (RFC 6455 section 5.2), with the client's masking key.
func frameOverhead(n int, masked bool) uint64 {
	h := uint64(2)
	switch {
	case n > 65535:
		h += 8
	case n > 125:
		h += 2
	}
	if masked {
		h += 4
	}
	return h
}

// TestWebSocketEcho: text and binary messages of 1 B to 1 MiB go through
// the gateway and back unchanged, over the gateway's own HTTP/1.1
// transport and over net/http's (an upstream that offers h2 by ALPN), and
// the byte counters match the frames sent.
func TestWebSocketEcho(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name     string
		kind     serverKind
		protocol string
	}{
		{"h1transport", plainHTTP1, ProtoHTTP1},
		{"net/http transport, TLS upstream offering h2", tlsH2, ProtoAuto},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := newWSUpstream(t, tt.kind, nil)
			g := newWSGateway(t, up, tt.protocol, RouteOptions{})
			ctx := wsContext(t)
			c := newWSDialer(t).mustDial(ctx, g.url+"/echo", nil)
			rng := rand.New(rand.NewPCG(1, 2))
			var up2, down uint64
			for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
				for _, n := range []int{1, 1 << 10, 64 << 10, 1 << 20} {
					if err := echo(ctx, c, typ, payload(rng, typ, n)); err != nil {
						t.Fatalf("%v %d bytes: %v", typ, n, err)
					}
					up2 += uint64(n) + frameOverhead(n, true)
					down += uint64(n) + frameOverhead(n, false)
				}
			}
			eventually(t, "byte counters", func() bool {
				s := g.stats()
				return s.BytesToUpstream == up2 && s.BytesToClient == down
			})
			if s := g.stats(); s.Open != 1 || s.Upgraded != 1 {
				t.Errorf("stats while open: got open %d, upgraded %d; want 1, 1", s.Open, s.Upgraded)
			}
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Errorf("close: %v", err)
			}
			waitFor(t, up.ends, "the upstream's end of the connection")
			eventually(t, "the tunnel to close", func() bool { return g.stats().Open == 0 })
			// The close frames: 2 bytes of status code each way.
			if s := g.stats(); s.BytesToUpstream != up2+8 || s.BytesToClient != down+4 {
				t.Errorf("bytes after close: got %d up, %d down; want %d, %d", s.BytesToUpstream, s.BytesToClient, up2+8, down+4)
			}
		})
	}
}

// TestWebSocketConcurrent: 200 tunnels at once, each echoing its own
// messages.
func TestWebSocketConcurrent(t *testing.T) {
	checkLeaks(t)
	up := newWSUpstream(t, plainHTTP1, nil)
	g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{})
	ctx := wsContext(t)
	d := newWSDialer(t)
	const n, msgs = 200, 5
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := d.dial(ctx, g.url+"/echo", nil)
			if err != nil {
				errs <- fmt.Errorf("client %d: dial: %w", i, err)
				return
			}
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for m := range msgs {
				typ := websocket.MessageBinary
				if m%2 == 0 {
					typ = websocket.MessageText
				}
				if err := echo(ctx, c, typ, payload(rng, typ, 1+rng.IntN(4<<10))); err != nil {
					errs <- fmt.Errorf("client %d, message %d: %w", i, m, err)
					c.CloseNow()
					return
				}
			}
			// The close handshake is checked elsewhere; 200 of them at
			// once on a starved machine may outlast coder's 5 s wait for
			// the answer, so here only the tunnel's end is checked.
			c.Close(websocket.StatusNormalClosure, "")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eventually(t, "every tunnel to close", func() bool { return g.stats().Open == 0 })
	if s := g.stats(); s.Upgraded != n {
		t.Errorf("upgraded: got %d; want %d", s.Upgraded, n)
	}
}

// TestWebSocketUpstreamClosesFirst: the upstream's close frame, code and
// reason, reaches the client, and the tunnel ends.
func TestWebSocketUpstreamClosesFirst(t *testing.T) {
	checkLeaks(t)
	up := newWSUpstream(t, plainHTTP1, func(u *wsUpstream) {
		u.serve = func(ctx context.Context, c *websocket.Conn) error {
			if _, _, err := c.Read(ctx); err != nil {
				return err
			}
			return c.Close(websocket.StatusGoingAway, "bye")
		}
	})
	g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{})
	ctx := wsContext(t)
	c := newWSDialer(t).mustDial(ctx, g.url+"/", nil)
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "bye" {
		t.Fatalf("client read: got %v; want the upstream's close 1001 \"bye\"", err)
	}
	if err := waitFor(t, up.ends, "the upstream's close to finish"); err != nil {
		t.Errorf("upstream close: got %v; want nil (the client answered the close)", err)
	}
	eventually(t, "the tunnel to close", func() bool { return g.stats().Open == 0 })
}

// TestWebSocketClientClosesFirst: the client's close frame reaches the
// upstream.
func TestWebSocketClientClosesFirst(t *testing.T) {
	checkLeaks(t)
	up := newWSUpstream(t, plainHTTP1, nil)
	g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{})
	ctx := wsContext(t)
	c := newWSDialer(t).mustDial(ctx, g.url+"/", nil)
	if err := echo(ctx, c, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Errorf("client close: got %v; want nil (the upstream answered)", err)
	}
	err := waitFor(t, up.ends, "the upstream to see the close")
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure || ce.Reason != "done" {
		t.Errorf("upstream read: got %v; want the client's close 1000 \"done\"", err)
	}
	eventually(t, "the tunnel to close", func() bool { return g.stats().Open == 0 })
}

// TestWebSocketUpgradeRefused: an upstream that answers the handshake
// with an error has its status and body passed to the client.
func TestWebSocketUpgradeRefused(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name     string
		kind     serverKind
		protocol string
	}{
		{"h1transport", plainHTTP1, ProtoHTTP1},
		{"net/http transport", tlsH2, ProtoAuto},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := newBackend(t, tt.kind, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Reason", "not allowed")
				http.Error(w, "no websockets for you", http.StatusForbidden)
			}))
			u := &wsUpstream{backend: be}
			g := newWSGateway(t, u, tt.protocol, RouteOptions{})
			_, resp, err := newWSDialer(t).dial(wsContext(t), g.url+"/", nil)
			if err == nil {
				t.Fatal("dial: got a connection; want the upstream's refusal")
			}
			if resp == nil {
				t.Fatalf("dial: got error %v and no response; want the upstream's 403", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusForbidden || string(body) != "no websockets for you\n" || resp.Header.Get("X-Reason") != "not allowed" {
				t.Errorf("got %d %q (X-Reason %q); want 403 \"no websockets for you\\n\" (not allowed)", resp.StatusCode, body, resp.Header.Get("X-Reason"))
			}
			if s := g.stats(); s.Upgraded != 0 || s.Open != 0 {
				t.Errorf("stats: got upgraded %d, open %d; want 0, 0", s.Upgraded, s.Open)
			}
		})
	}
}

// TestWebSocketNegotiation: the subprotocol and extension headers pass
// both ways; the upstream selects the client's subprotocol and
// permessage-deflate, and compressed messages pass unchanged.
func TestWebSocketNegotiation(t *testing.T) {
	checkLeaks(t)
	up := newWSUpstream(t, plainHTTP1, func(u *wsUpstream) {
		u.accept = websocket.AcceptOptions{Subprotocols: []string{"chat.v1"}, CompressionMode: websocket.CompressionContextTakeover}
	})
	g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{})
	ctx := wsContext(t)
	c, resp, err := newWSDialer(t).dial(ctx, g.url+"/chat", &websocket.DialOptions{
		Subprotocols:    []string{"chat.v1"},
		CompressionMode: websocket.CompressionContextTakeover,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got := c.Subprotocol(); got != "chat.v1" {
		t.Errorf("subprotocol: got %q; want chat.v1", got)
	}
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(got, "permessage-deflate") {
		t.Errorf("response Sec-WebSocket-Extensions: got %q; want permessage-deflate", got)
	}
	h := waitFor(t, up.headers, "the upstream's handshake")
	if got := h.Get("Sec-WebSocket-Protocol"); got != "chat.v1" {
		t.Errorf("upstream saw Sec-WebSocket-Protocol %q; want chat.v1", got)
	}
	if got := h.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(got, "permessage-deflate") {
		t.Errorf("upstream saw Sec-WebSocket-Extensions %q; want permessage-deflate", got)
	}
	text := bytes.Repeat([]byte("compressible text, "), 4000)
	for range 3 {
		if err := echo(ctx, c, websocket.MessageText, text); err != nil {
			t.Fatal(err)
		}
	}
	// Compressed, the frames are far smaller than the messages.
	if s := g.stats(); s.BytesToClient >= uint64(len(text)) {
		t.Errorf("bytes to client: got %d for 3 messages of %d bytes; want them compressed", s.BytesToClient, len(text))
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Error(err)
	}
	waitFor(t, up.ends, "the upstream's end")
}

// TestWebSocketMaxConnections: over the route's cap the handshake gets
// 503 without reaching the upstream; a closed tunnel frees its slot.
func TestWebSocketMaxConnections(t *testing.T) {
	checkLeaks(t)
	up := newWSUpstream(t, plainHTTP1, nil)
	g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{WebSocket: WebSocketOptions{MaxConnections: 2}})
	ctx := wsContext(t)
	d := newWSDialer(t)
	c1 := d.mustDial(ctx, g.url+"/", nil)
	d.mustDial(ctx, g.url+"/", nil)
	_, resp, err := d.dial(ctx, g.url+"/", nil)
	if err == nil || resp == nil {
		t.Fatalf("third dial: got error %v, response %v; want a 503", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "too many websocket connections\n" {
		t.Errorf("third dial: got %d %q; want 503 \"too many websocket connections\\n\"", resp.StatusCode, body)
	}
	if n := up.handshakes.Load(); n != 2 {
		t.Errorf("handshakes at the upstream: got %d; want 2", n)
	}
	if s := g.stats(); s.Rejected != 1 || s.Open != 2 {
		t.Errorf("stats: got rejected %d, open %d; want 1, 2", s.Rejected, s.Open)
	}
	if err := c1.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the closed tunnel's slot", func() bool { return g.stats().Open == 1 })
	c3 := d.mustDial(ctx, g.url+"/", nil)
	if err := echo(ctx, c3, websocket.MessageText, []byte("in")); err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketIdleTimeout: a tunnel with no traffic either way for the
// idle timeout is closed at both ends; traffic keeps one open past the
// idle timeout and the route timeout, which bounds only the handshake.
func TestWebSocketIdleTimeout(t *testing.T) {
	checkLeaks(t)
	t.Run("idle tunnel closed", func(t *testing.T) {
		up := newWSUpstream(t, plainHTTP1, nil)
		const idle = 100 * time.Millisecond
		g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{WebSocket: WebSocketOptions{IdleTimeout: idle}})
		ctx := wsContext(t)
		c := newWSDialer(t).mustDial(ctx, g.url+"/", nil)
		if err := echo(ctx, c, websocket.MessageText, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, _, err := c.Read(ctx) // nothing comes: the gateway closes
		if err == nil || ctx.Err() != nil {
			t.Fatalf("read on an idle tunnel: got %v (context %v); want the connection closed", err, ctx.Err())
		}
		if el := time.Since(start); el < idle/2 {
			t.Errorf("closed after %v; want about the idle timeout %v", el, idle)
		}
		waitFor(t, up.ends, "the upstream's end")
		eventually(t, "the tunnel to close", func() bool { return g.stats().Open == 0 })
		if s := g.stats(); s.IdleClosed != 1 {
			t.Errorf("idle closed: got %d; want 1", s.IdleClosed)
		}
	})
	t.Run("traffic keeps it open", func(t *testing.T) {
		up := newWSUpstream(t, plainHTTP1, nil)
		// Generous against a starved test machine: a pause between
		// two round trips as long as the idle timeout would close it.
		const idle, timeout = 400 * time.Millisecond, 600 * time.Millisecond
		// Middleware too: the route's deadline, armed inside it for
		// ordinary requests, must not reach a tunnel.
		g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{
			Timeout:    timeout,
			WebSocket:  WebSocketOptions{IdleTimeout: idle},
			Middleware: []Middleware{noDeadlineSeen(t)},
		})
		ctx := wsContext(t)
		c := newWSDialer(t).mustDial(ctx, g.url+"/", nil)
		for start := time.Now(); time.Since(start) < 2*timeout; {
			if err := echo(ctx, c, websocket.MessageBinary, []byte("keep")); err != nil {
				t.Fatalf("after %v: %v", time.Since(start), err)
			}
		}
		if s := g.stats(); s.IdleClosed != 0 || s.Open != 1 {
			t.Errorf("stats: got idle closed %d, open %d; want 0, 1", s.IdleClosed, s.Open)
		}
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Error(err)
		}
		waitFor(t, up.ends, "the upstream's end")
	})
}

// TestWebSocketHandshakeTimeout: an upstream that never answers the
// handshake gets the route timeout, 504, and is charged with a timeout
// failure, like any request.
func TestWebSocketHandshakeTimeout(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release) }) // before the backend's Close
	// A route with middleware arms its deadline inside it, but not for
	// an upgrade: the handshake has its own bound either way.
	g := newWSGateway(t, &wsUpstream{backend: be}, ProtoHTTP1, RouteOptions{Timeout: 100 * time.Millisecond, Middleware: []Middleware{noDeadlineSeen(t)}})
	_, resp, err := newWSDialer(t).dial(wsContext(t), g.url+"/", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("dial: got error %v, response %+v; want 504", err, resp)
	}
	eventually(t, "the handshake's slot", func() bool { return g.h.routes[0].ws.active.Load() == 0 })
	u := g.h.routes[0].upstream
	if st := u.Status()[0]; st.ConsecutiveFails != 1 {
		t.Errorf("target's consecutive failures: got %d; want 1", st.ConsecutiveFails)
	}
	if errs := u.Stats().Targets[0].Errors; errs[errTimeout] != 1 {
		t.Errorf("target's errors by kind: got %v; want one timeout", errs)
	}
}

// TestWebSocketShutdown: Shutdown lets open tunnels run during the grace
// and closes them when it ends; when they end sooner it returns at once.
func TestWebSocketShutdown(t *testing.T) {
	checkLeaks(t)
	t.Run("closed when the grace ends", func(t *testing.T) {
		up := newWSUpstream(t, plainHTTP1, nil)
		g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{})
		ctx := wsContext(t)
		c := newWSDialer(t).mustDial(ctx, g.url+"/", nil)
		if err := echo(ctx, c, websocket.MessageText, []byte("before")); err != nil {
			t.Fatal(err)
		}
		grace, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.srv.Shutdown(grace) }()
		// Serve returns once the listener is closed; the tunnel runs on.
		waitFor(t, g.srv.done, "Serve to return")
		if err := echo(ctx, c, websocket.MessageText, []byte("during the grace")); err != nil {
			t.Fatalf("echo during the grace: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with a tunnel open and the grace not over", err)
		default:
		}
		cancel() // the grace ends
		if err := waitFor(t, done, "Shutdown to return"); !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown: got %v; want context.Canceled (a tunnel was closed)", err)
		}
		if _, _, err := c.Read(ctx); err == nil || ctx.Err() != nil {
			t.Errorf("read after the grace: got %v; want the connection closed", err)
		}
		waitFor(t, up.ends, "the upstream's end")
		if s := g.stats(); s.Open != 0 {
			t.Errorf("open after Shutdown: got %d; want 0", s.Open)
		}
	})
	t.Run("returns when tunnels end", func(t *testing.T) {
		up := newWSUpstream(t, plainHTTP1, nil)
		g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{})
		ctx := wsContext(t)
		c := newWSDialer(t).mustDial(ctx, g.url+"/", nil)
		done := make(chan error, 1)
		go func() { done <- g.srv.Shutdown(ctx) }()
		waitFor(t, g.srv.done, "Serve to return")
		if err := echo(ctx, c, websocket.MessageText, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
			t.Error(err)
		}
		if err := waitFor(t, done, "Shutdown to return"); err != nil {
			t.Errorf("Shutdown: got %v; want nil", err)
		}
	})
}

// TestWebSocketBypassesCacheAndCompression: on a route that caches and
// compresses (wired as app.go does), upgrades are neither stored,
// collapsed into one upstream request, nor compressed.
func TestWebSocketBypassesCacheAndCompression(t *testing.T) {
	checkLeaks(t)
	up := newWSUpstream(t, plainHTTP1, nil)
	comp, err := compress.New(compress.Options{MinSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{MaxSize: 1 << 20, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	rt, err := c.Route(cache.RouteOptions{Name: "ws", Compress: encoderAdapter{comp}})
	if err != nil {
		t.Fatal(err)
	}
	g := newWSGateway(t, up, ProtoHTTP1, RouteOptions{Middleware: []Middleware{comp.Wrap, rt.Wrap}})
	ctx := wsContext(t)
	d := newWSDialer(t)
	hdr := http.Header{"Accept-Encoding": {"gzip, br, zstd"}}
	// Several handshakes for one URL at once: each must reach the
	// upstream, none may wait for another's response.
	const n = 5
	conns := make([]*websocket.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn, resp, err := d.dial(ctx, g.url+"/same", &websocket.DialOptions{HTTPHeader: hdr})
			if err != nil {
				errs <- err
				return
			}
			if ce := resp.Header.Get("Content-Encoding"); ce != "" {
				errs <- fmt.Errorf("101 with Content-Encoding %q", ce)
			}
			conns[i] = cn
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := up.handshakes.Load(); got != n {
		t.Errorf("handshakes at the upstream: got %d; want %d", got, n)
	}
	text := bytes.Repeat([]byte("a"), 64<<10)
	for _, cn := range conns {
		if err := echo(ctx, cn, websocket.MessageText, text); err != nil {
			t.Fatal(err)
		}
		if err := cn.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Error(err)
		}
	}
	// Frames pass as sent: the bytes are the messages plus frame headers.
	want := n * (uint64(len(text)) + frameOverhead(len(text), false) + 4)
	eventually(t, "the tunnels to close", func() bool { return g.stats().Open == 0 })
	if s := g.stats(); s.BytesToClient != want {
		t.Errorf("bytes to client: got %d; want %d (uncompressed)", s.BytesToClient, want)
	}
	total, _ := c.Stats()
	if total.Entries != 0 || total.Stores != 0 || total.Hits != 0 {
		t.Errorf("cache: got %d entries, %d stores, %d hits; want none", total.Entries, total.Stores, total.Hits)
	}
}

// encoderAdapter is app.go's adapter of a compressor to cache.Encoder.
type encoderAdapter struct{ *compress.Compressor }

func (encoderAdapter) ETag(etag, coding string) string { return compress.ETag(etag, coding) }

// TestWebSocketStatsExact: the counters are the bytes each side sent
// after the handshake, exactly, with a raw client and a raw upstream;
// bytes the client sent right behind its request are not lost; the admin
// handler serves them.
func TestWebSocketStatsExact(t *testing.T) {
	checkLeaks(t)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		io.Copy(conn, brw) // echo until the client's end of stream
	}))
	g := newWSGateway(t, &wsUpstream{backend: be}, ProtoHTTP1, RouteOptions{})
	conn, err := net.Dial("tcp", g.srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wsTimeout))
	// The first bytes of the tunnel ride with the request.
	early := "early bytes"
	if _, err := io.WriteString(conn, "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"+early); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: got %v, %v; want 101", resp, err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	sent := []byte(early)
	for _, n := range []int{1, 1000, 100_000} {
		p := payload(rng, websocket.MessageBinary, n)
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, p...)
	}
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(got, sent) {
		t.Fatalf("echo differs from the %d bytes sent", len(sent))
	}
	want := uint64(len(sent))
	eventually(t, "the counters", func() bool {
		s := g.stats()
		return s.BytesToUpstream == want && s.BytesToClient == want
	})
	conn.(*net.TCPConn).CloseWrite()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the client's end of stream: got %v; want EOF from the upstream", err)
	}
	eventually(t, "the tunnel to close", func() bool { return g.stats().Open == 0 })

	wantStats := WSStats{Upgraded: 1, BytesToUpstream: want, BytesToClient: want}
	if routes := g.h.WebSocketStats(); routes["ws"] != wantStats || len(routes) != 1 {
		t.Errorf("WebSocketStats: got %+v; want route ws %+v", routes, wantStats)
	}
}
