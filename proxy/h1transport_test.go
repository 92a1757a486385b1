package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of h1Transport on its own: real upstreams on loopback, either
// httptest servers or raw listeners for byte-level control, and the
// transport built directly, as newH1Transport would.

// h1TestServer is an httptest upstream that counts the connections it
// accepts and reports every connection it sees closed.
type h1TestServer struct {
	*httptest.Server
	accepted atomic.Int64
	closed   chan struct{} // one value per connection closed or hijacked
}

func newH1TestServer(t *testing.T, useTLS bool, h http.HandlerFunc) *h1TestServer {
	t.Helper()
	s := &h1TestServer{Server: httptest.NewUnstartedServer(h), closed: make(chan struct{}, 1024)}
	s.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.accepted.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed <- struct{}{}
		}
	}
	if useTLS {
		s.StartTLS() // EnableHTTP2 is false: ALPN offers http/1.1 only
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	// First, so that a handler a failed test left stalled ends.
	t.Cleanup(s.CloseClientConnections)
	return s
}

// h1RawServer accepts connections on loopback and hands each to serve,
// which owns it until it returns; the connection is closed then. Cleanup
// closes the listener and every connection and waits for serve to end.
type h1RawServer struct {
	url      string
	accepted atomic.Int64
	done     chan struct{} // closed at cleanup

	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	stopping bool
}

func newH1RawServer(t *testing.T, serve func(s *h1RawServer, c net.Conn, br *bufio.Reader)) *h1RawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &h1RawServer{url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.stopping {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns = append(s.conns, c)
			s.accepted.Add(1)
			s.wg.Go(func() {
				defer c.Close()
				serve(s, c, bufio.NewReader(c))
			})
			s.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		close(s.done)
		ln.Close()
		s.mu.Lock()
		s.stopping = true
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// h1KeepAlive serves requests on c until it fails, answering each with
// the raw bytes reply returns, after reading the request's body.
func h1KeepAlive(c net.Conn, br *bufio.Reader, reply func(*http.Request) string) {
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		if _, err := io.WriteString(c, reply(req)); err != nil {
			return
		}
	}
}

// newH1TestTransport is the transport as newH1Transport builds it with
// default options; tests adjust fields before the first request.
func newH1TestTransport(t *testing.T) *h1Transport {
	t.Helper()
	tr := &h1Transport{
		dial:        (&net.Dialer{}).DialContext,
		maxIdle:     64,
		idleTimeout: time.Minute,
		now:         time.Now,
	}
	t.Cleanup(tr.closeIdle)
	return tr
}

func h1NewRequest(t testing.TB, ctx context.Context, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		t.Fatalf("NewRequest(%s %s): %v", method, u, err)
	}
	return req
}

// h1Fetch sends req and reads the whole response body.
func h1Fetch(t testing.TB, tr *h1Transport, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: got error %v; want nil", req.Method, req.URL, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading body: got error %v; want nil", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// h1Get is a GET through tr that must answer 200 with body want.
func h1Get(t testing.TB, tr *h1Transport, u, want string) {
	t.Helper()
	resp, body := h1Fetch(t, tr, h1NewRequest(t, context.Background(), http.MethodGet, u, nil))
	if resp.StatusCode != http.StatusOK || body != want {
		t.Fatalf("GET %s: got %d %q; want 200 %q", u, resp.StatusCode, body, want)
	}
}

// h1PoolState is the accounting of one target's pool.
type h1PoolState struct{ open, idle, waiters int }

func h1State(tr *h1Transport, rawURL string) h1PoolState {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	p := tr.pool(u.Scheme, canonicalAddr(u.Scheme, u.Host))
	p.mu.Lock()
	defer p.mu.Unlock()
	return h1PoolState{open: p.open, idle: len(p.idle), waiters: len(p.waiters)}
}

func h1CheckState(t testing.TB, tr *h1Transport, u string, want h1PoolState) {
	t.Helper()
	if got := h1State(tr, u); got != want {
		t.Errorf("pool state: got %+v; want %+v", got, want)
	}
}

// h1WaitUntil polls cond, for states that send no event (the pool's
// queue, a socket's EOF), failing t after a generous deadline.
func h1WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// h1Result is what a RoundTrip in another goroutine returns.
type h1Result struct {
	resp *http.Response
	err  error
}

func h1Go(tr *h1Transport, req *http.Request) <-chan h1Result {
	ch := make(chan h1Result, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		ch <- h1Result{resp, err}
	}()
	return ch
}

// h1Drain waits for the requests h1Go started, reads their bodies and
// closes them, so that their connections go back to the pool.
func h1Drain(t *testing.T, results []<-chan h1Result) {
	t.Helper()
	for _, ch := range results {
		r := <-ch
		if r.err != nil {
			t.Fatalf("GET: %v", r.err)
		}
		io.Copy(io.Discard, r.resp.Body)
		r.resp.Body.Close()
	}
}

// endless is a reader that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestH1KeepAlive sends 100 GETs one after the other: they must share one
// connection.
func TestH1KeepAlive(t *testing.T) {
	checkLeaks(t)
	s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	tr := newH1TestTransport(t)
	for range 100 {
		h1Get(t, tr, s.URL+"/x", "ok")
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("connections accepted: got %d; want 1", n)
	}
	h1CheckState(t, tr, s.URL, h1PoolState{open: 1, idle: 1})
}

// TestH1MaxConns sends 200 GETs from 50 goroutines with a cap of 4
// connections. The handler holds the first requests until 4 are at the
// upstream and the other 46 queue for a connection, so the hand-over
// queue is surely used; then every request must succeed on at most 4
// connections.
func TestH1MaxConns(t *testing.T) {
	checkLeaks(t)
	const maxConns, workers, perWorker = 4, 50, 4
	var inflight, maxInflight atomic.Int64
	gate := make(chan struct{})
	s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for m := maxInflight.Load(); n > m && !maxInflight.CompareAndSwap(m, n); m = maxInflight.Load() {
		}
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		inflight.Add(-1)
		io.WriteString(w, "ok")
	})
	var openGate sync.Once
	release := func() { openGate.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the server closes, if the test fails
	tr := newH1TestTransport(t)
	tr.maxConns = maxConns

	var failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+"/x", nil)
				if err != nil {
					failed.Add(1)
					t.Errorf("NewRequest: %v", err)
					return
				}
				resp, err := tr.RoundTrip(req)
				if err != nil {
					failed.Add(1)
					t.Errorf("GET: got error %v; want nil", err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || string(b) != "ok" {
					failed.Add(1)
					t.Errorf("GET: got %d %q (read error %v); want 200 \"ok\"", resp.StatusCode, b, err)
					return
				}
			}
		})
	}
	h1WaitUntil(t, "4 requests at the upstream and 46 queued", func() bool {
		return inflight.Load() == maxConns && h1State(tr, s.URL) == h1PoolState{open: maxConns, waiters: workers - maxConns}
	})
	release()
	wg.Wait()

	if n := failed.Load(); n != 0 {
		t.Errorf("failed requests: got %d; want 0", n)
	}
	if n := s.accepted.Load(); n > maxConns {
		t.Errorf("connections accepted: got %d; want at most %d", n, maxConns)
	}
	if n := maxInflight.Load(); n > maxConns {
		t.Errorf("requests at the upstream at once: got %d; want at most %d", n, maxConns)
	}
	st := h1State(tr, s.URL)
	if st.open > maxConns || st.idle != st.open || st.waiters != 0 {
		t.Errorf("pool state after the run: got %+v; want open at most %d, all idle, no waiters", st, maxConns)
	}
}

// TestH1WaiterCancel: a request queued for the only connection leaves the
// queue when its context is canceled, and the pool stays consistent.
func TestH1WaiterCancel(t *testing.T) {
	checkLeaks(t)
	entered := make(chan struct{}, 1)
	unblock := make(chan struct{})
	s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			select {
			case <-unblock:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	})
	var once sync.Once
	release := func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(release)
	tr := newH1TestTransport(t)
	tr.maxConns = 1

	first := h1Go(tr, h1NewRequest(t, context.Background(), http.MethodGet, s.URL+"/hold", nil))
	waitFor(t, entered, "the first request at the upstream")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	second := h1Go(tr, h1NewRequest(t, ctx, http.MethodGet, s.URL+"/x", nil))
	h1WaitUntil(t, "the second request to queue", func() bool { return h1State(tr, s.URL).waiters == 1 })
	cancel()
	res := waitFor(t, second, "the canceled request to return")
	if !errors.Is(res.err, context.Canceled) {
		t.Fatalf("canceled request: got error %v; want %v", res.err, context.Canceled)
	}
	h1CheckState(t, tr, s.URL, h1PoolState{open: 1})

	release()
	res = waitFor(t, first, "the first request to return")
	if res.err != nil {
		t.Fatalf("first request: got error %v; want nil", res.err)
	}
	if b, err := io.ReadAll(res.resp.Body); err != nil || string(b) != "ok" {
		t.Fatalf("first request's body: got %q, error %v; want \"ok\", nil", b, err)
	}
	res.resp.Body.Close()
	h1CheckState(t, tr, s.URL, h1PoolState{open: 1, idle: 1})

	h1Get(t, tr, s.URL+"/x", "ok")
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("connections accepted: got %d; want 1", n)
	}
	h1CheckState(t, tr, s.URL, h1PoolState{open: 1, idle: 1})
}

// TestH1CanceledWaiterPassesHandOverOn: put and release take a waiter
// off the queue before they send it a connection or a slot. A waiter
// canceled in between must still take what was sent and pass it on;
// otherwise a connection is lost with its slot still counted, and at a
// cap of 1 every later request waits forever.
func TestH1CanceledWaiterPassesHandOverOn(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name string
		conn bool // hand over a connection; else a slot (nil)
		want h1PoolState
	}{
		{"connection", true, h1PoolState{open: 1, idle: 1}},
		{"slot", false, h1PoolState{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newH1TestTransport(t)
			tr.maxConns = 1
			p := tr.pool("http", "127.0.0.1:1")
			p.mu.Lock()
			p.open = 1 // the one connection is in use
			p.mu.Unlock()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan error, 1)
			go func() {
				c, _, err := p.get(ctx)
				if c != nil {
					err = fmt.Errorf("got a connection (error %v)", err)
				}
				got <- err
			}()
			h1WaitUntil(t, "get to queue", func() bool { return h1State(tr, "http://127.0.0.1:1").waiters == 1 })

			// What put and release do first, under the lock.
			p.mu.Lock()
			w := p.waiters[0]
			p.waiters = p.waiters[1:]
			p.mu.Unlock()
			cancel()
			// get must wait for what it was promised; give a wrong
			// implementation a moment to return without it.
			select {
			case err := <-got:
				t.Fatalf("get returned before the hand-over it was promised: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
			var c *h1Conn
			if tt.conn {
				a, b := net.Pipe()
				defer b.Close()
				c = &h1Conn{Conn: a, host: p, br: bufio.NewReader(a), bw: bufio.NewWriter(a)}
			}
			w <- c
			if err := waitFor(t, got, "get to return"); !errors.Is(err, context.Canceled) {
				t.Fatalf("get: got error %v; want %v", err, context.Canceled)
			}
			h1CheckState(t, tr, "http://127.0.0.1:1", tt.want)
		})
	}
}

// TestH1StaleConnRetry: the upstream closes each connection after one
// response, so the second request finds its idle connection dead. A GET
// is sent again on a new connection; a POST, whose body cannot be sent
// twice, must notice the dead connection before it is used.
func TestH1StaleConnRetry(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name   string
		method string
		body   string
	}{
		{"GET", http.MethodGet, ""},
		{"POST", http.MethodPost, "payload"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			closed := make(chan struct{}, 10)
			bodies := make(chan string, 10)
			s := newH1RawServer(t, func(_ *h1RawServer, c net.Conn, br *bufio.Reader) {
				defer func() { closed <- struct{}{} }()
				defer c.Close()
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				b, _ := io.ReadAll(req.Body)
				bodies <- string(b)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			})
			tr := newH1TestTransport(t)
			send := func() {
				t.Helper()
				var body io.Reader
				if tt.body != "" {
					// Neither a known length nor a GetBody: it can be
					// read once only.
					body = io.MultiReader(strings.NewReader(tt.body))
				}
				resp, got := h1Fetch(t, tr, h1NewRequest(t, context.Background(), tt.method, s.url+"/x", body))
				if resp.StatusCode != http.StatusOK || got != "ok" {
					t.Fatalf("%s: got %d %q; want 200 \"ok\"", tt.method, resp.StatusCode, got)
				}
				if b := waitFor(t, bodies, "the upstream to read the request"); b != tt.body {
					t.Fatalf("body at the upstream: got %q; want %q", b, tt.body)
				}
			}
			send()
			waitFor(t, closed, "the upstream to close the connection")
			if tt.body != "" {
				// The FIN has surely arrived once the check sees it.
				p := tr.pool("http", strings.TrimPrefix(s.url, "http://"))
				h1WaitUntil(t, "alive() to see the upstream close the idle connection", func() bool {
					p.mu.Lock()
					defer p.mu.Unlock()
					return len(p.idle) == 1 && !p.idle[0].alive()
				})
			}
			h1CheckState(t, tr, s.url, h1PoolState{open: 1, idle: 1})
			send()
			if n := s.accepted.Load(); n != 2 {
				t.Errorf("connections accepted: got %d; want 2", n)
			}
			h1CheckState(t, tr, s.url, h1PoolState{open: 1, idle: 1})
		})
	}
}

// TestH1EarlyResponse: the upstream answers 413 without reading a large
// request body. The response comes through, the body writer ends, and
// the connection, with a body half sent, is not used again.
func TestH1EarlyResponse(t *testing.T) {
	checkLeaks(t)
	const tooLarge = "too large"
	tests := []struct {
		name string
		// upstream returns the base URL and the count of connections
		upstream func(t *testing.T) (string, *atomic.Int64)
		body     io.Reader
		length   int64
	}{
		{
			// net/http's server adds Connection: close, as it will not
			// read that much of the body.
			name: "net/http server, 8 MiB",
			upstream: func(t *testing.T) (string, *atomic.Int64) {
				s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost {
						http.Error(w, tooLarge, http.StatusRequestEntityTooLarge)
						return
					}
					io.WriteString(w, "ok")
				})
				return s.URL, &s.accepted
			},
			body:   io.LimitReader(endless{}, 8<<20),
			length: 8 << 20,
		},
		{
			// A keep-alive answer: the transport itself must see that
			// the body was not all sent.
			name: "keep-alive answer, endless chunked body",
			upstream: func(t *testing.T) (string, *atomic.Int64) {
				s := newH1RawServer(t, func(s *h1RawServer, c net.Conn, br *bufio.Reader) {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.Method == http.MethodPost {
						fmt.Fprintf(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: %d\r\n\r\n%s", len(tooLarge), tooLarge)
						<-s.done // never read the body
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					h1KeepAlive(c, br, func(*http.Request) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" })
				})
				return s.url, &s.accepted
			},
			body:   endless{},
			length: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, accepted := tt.upstream(t)
			tr := newH1TestTransport(t)
			req := h1NewRequest(t, context.Background(), http.MethodPost, u+"/upload", tt.body)
			req.ContentLength = tt.length
			res := waitFor(t, h1Go(tr, req), "the response to the POST")
			if res.err != nil {
				t.Fatalf("POST: got error %v; want nil", res.err)
			}
			if res.resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("POST: got status %d; want %d", res.resp.StatusCode, http.StatusRequestEntityTooLarge)
			}
			b, err := io.ReadAll(res.resp.Body)
			if err != nil || strings.TrimSpace(string(b)) != tooLarge {
				t.Errorf("413 body: got %q, error %v; want %q, nil", b, err, tooLarge)
			}
			res.resp.Body.Close()
			// The body writer has returned before the slot was given up.
			h1CheckState(t, tr, u, h1PoolState{})
			h1Get(t, tr, u+"/x", "ok")
			if n := accepted.Load(); n != 2 {
				t.Errorf("connections accepted: got %d; want 2", n)
			}
		})
	}
}

// boomError is the request body's own failure.
type boomError struct{ at int }

func (e *boomError) Error() string { return "body failed after " + strconv.Itoa(e.at) + " bytes" }

// failingBody returns n bytes, then a *boomError.
type failingBody struct{ n, read int }

func (b *failingBody) Read(p []byte) (int, error) {
	if b.read >= b.n {
		return 0, &boomError{at: b.read}
	}
	p = p[:min(len(p), b.n-b.read)]
	for i := range p {
		p[i] = 'x'
	}
	b.read += len(p)
	return len(p), nil
}

// TestH1RequestBodyError: a request body that fails midway fails the
// round trip with the body's own error, and the upstream, left with half
// a body, sees the request end in an error instead of waiting for more.
func TestH1RequestBodyError(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name   string
		length int64
	}{
		{"chunked", -1},
		{"content-length", 1 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			handlerErr := make(chan error, 1)
			s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				handlerErr <- err
			})
			tr := newH1TestTransport(t)
			req := h1NewRequest(t, context.Background(), http.MethodPost, s.URL+"/upload", &failingBody{n: 64 << 10})
			req.ContentLength = tt.length
			res := waitFor(t, h1Go(tr, req), "the round trip to fail")
			if res.err == nil {
				res.resp.Body.Close()
				t.Fatalf("POST: got status %d; want an error", res.resp.StatusCode)
			}
			var boom *boomError
			if !errors.As(res.err, &boom) {
				t.Errorf("POST: got error %v (%T); want a *boomError", res.err, res.err)
			} else if !errors.Is(res.err, boom) || boom.at != 64<<10 {
				t.Errorf("POST: got %v; want the body's error after %d bytes", boom, 64<<10)
			}
			if err := waitFor(t, handlerErr, "the upstream handler to finish reading"); err == nil {
				t.Errorf("upstream reading the body: got error nil; want an error")
			}
			h1CheckState(t, tr, s.URL, h1PoolState{})
		})
	}
}

// TestH1CancelDuringBody: canceling the request while its response body
// is being read ends the read at once and closes the connection.
func TestH1CancelDuringBody(t *testing.T) {
	checkLeaks(t)
	s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stall" {
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
			<-r.Context().Done() // until the connection closes
			return
		}
		io.WriteString(w, "ok")
	})
	tr := newH1TestTransport(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := tr.RoundTrip(h1NewRequest(t, ctx, http.MethodGet, s.URL+"/stall", nil))
	if err != nil {
		t.Fatalf("GET: got error %v; want nil", err)
	}
	defer resp.Body.Close()
	part := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, part); err != nil || string(part) != "part" {
		t.Fatalf("first bytes of the body: got %q, error %v; want \"part\", nil", part, err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(make([]byte, 10))
		readErr <- err
	}()
	cancel()
	if err := waitFor(t, readErr, "the body read to end after cancel"); err == nil {
		t.Errorf("body read after cancel: got error nil; want an error")
	}
	h1CheckState(t, tr, s.URL, h1PoolState{})
	waitFor(t, s.closed, "the upstream to see the connection closed")
	h1Get(t, tr, s.URL+"/x", "ok")
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("connections accepted: got %d; want 2", n)
	}
}

// TestH1CloseBodyEarly: closing a response body before its end closes the
// connection at once, however much of the body is left.
func TestH1CloseBodyEarly(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name   string
		length string // Content-Length the handler sets; "" is chunked
	}{
		{"endless chunked", ""},
		{"1 GiB content-length", strconv.Itoa(1 << 30)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/big" {
					io.WriteString(w, "ok")
					return
				}
				if tt.length != "" {
					w.Header().Set("Content-Length", tt.length)
				}
				buf := bytes.Repeat([]byte("x"), 32<<10)
				for {
					if _, err := w.Write(buf); err != nil {
						return // the client went away
					}
				}
			})
			tr := newH1TestTransport(t)
			resp, err := tr.RoundTrip(h1NewRequest(t, context.Background(), http.MethodGet, s.URL+"/big", nil))
			if err != nil {
				t.Fatalf("GET: got error %v; want nil", err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 100<<10)); err != nil {
				t.Fatalf("reading the start of the body: got error %v; want nil", err)
			}
			closed := make(chan error, 1)
			go func() { closed <- resp.Body.Close() }()
			if err := waitFor(t, closed, "Body.Close to return"); err != nil {
				t.Errorf("Body.Close: got error %v; want nil", err)
			}
			h1CheckState(t, tr, s.URL, h1PoolState{})
			waitFor(t, s.closed, "the upstream to see the connection closed")
			h1Get(t, tr, s.URL+"/x", "ok")
			if n := s.accepted.Load(); n != 2 {
				t.Errorf("connections accepted: got %d; want 2", n)
			}
		})
	}
}

// TestH1NoBodyResponses: HEAD, 204 and 304 have no body, whatever their
// headers say, and leave the connection ready for the next request.
func TestH1NoBodyResponses(t *testing.T) {
	checkLeaks(t)
	s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "1234")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		}
	})
	tr := newH1TestTransport(t)
	for _, tt := range []struct {
		method, path string
		status       int
		length       int64
	}{
		{http.MethodHead, "/head", http.StatusOK, 1234},
		{http.MethodGet, "/204", http.StatusNoContent, 0},
		{http.MethodGet, "/304", http.StatusNotModified, 0},
	} {
		for range 2 {
			resp, body := h1Fetch(t, tr, h1NewRequest(t, context.Background(), tt.method, s.URL+tt.path, nil))
			if resp.StatusCode != tt.status || body != "" || resp.ContentLength != tt.length {
				t.Errorf("%s %s: got %d, body %q, length %d; want %d, empty, %d",
					tt.method, tt.path, resp.StatusCode, body, resp.ContentLength, tt.status, tt.length)
			}
			h1CheckState(t, tr, s.URL, h1PoolState{open: 1, idle: 1})
		}
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("connections accepted: got %d; want 1", n)
	}
}

// TestH1Trailers: the trailers of a chunked response are in resp.Trailer
// once the body has been read.
func TestH1Trailers(t *testing.T) {
	checkLeaks(t)
	s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "chunk one,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "chunk two")
		w.Header().Set("X-Checksum", "abc123")
		w.Header().Set(http.TrailerPrefix+"X-Late", "undeclared")
	})
	tr := newH1TestTransport(t)
	for range 2 {
		resp, err := tr.RoundTrip(h1NewRequest(t, context.Background(), http.MethodGet, s.URL+"/x", nil))
		if err != nil {
			t.Fatalf("GET: got error %v; want nil", err)
		}
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("Transfer-Encoding: got %q; want [chunked]", resp.TransferEncoding)
		}
		if _, declared := resp.Trailer["X-Checksum"]; !declared {
			t.Errorf("declared trailers before the body: got %v; want X-Checksum", resp.Trailer)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "chunk one,chunk two" {
			t.Fatalf("body: got %q, error %v; want \"chunk one,chunk two\", nil", b, err)
		}
		if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
			t.Errorf("trailer X-Checksum: got %q; want \"abc123\"", got)
		}
		if got := resp.Trailer.Get("X-Late"); got != "undeclared" {
			t.Errorf("trailer X-Late: got %q; want \"undeclared\"", got)
		}
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("connections accepted: got %d; want 1", n)
	}
}

// TestH1InterimResponses: 1xx responses before the final one are skipped.
func TestH1InterimResponses(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name    string
		interim string
	}{
		{"100 Continue", "HTTP/1.1 100 Continue\r\n\r\n"},
		{"103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"},
		{"100 and 103", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newH1RawServer(t, func(_ *h1RawServer, c net.Conn, br *bufio.Reader) {
				h1KeepAlive(c, br, func(*http.Request) string {
					return tt.interim + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
				})
			})
			tr := newH1TestTransport(t)
			h1Get(t, tr, s.url+"/x", "ok")
			resp, body := h1Fetch(t, tr, h1NewRequest(t, context.Background(), http.MethodPost, s.url+"/x", strings.NewReader("data")))
			if resp.StatusCode != http.StatusOK || body != "ok" {
				t.Errorf("POST: got %d %q; want 200 \"ok\"", resp.StatusCode, body)
			}
			if n := s.accepted.Load(); n != 1 {
				t.Errorf("connections accepted: got %d; want 1", n)
			}
		})
	}
}

// TestH1SwitchingProtocols: after 101 the response body is the
// connection, read and written both ways, and it leaves the pool.
func TestH1SwitchingProtocols(t *testing.T) {
	checkLeaks(t)
	s := newH1RawServer(t, func(_ *h1RawServer, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		// A greeting in the same write as the 101: the transport's
		// reader may hold it already.
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello")
		io.Copy(c, br) // echo until the client closes
	})
	tr := newH1TestTransport(t)
	req := h1NewRequest(t, context.Background(), http.MethodGet, s.url+"/echo", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("upgrade: got error %v; want nil", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got status %d; want 101", resp.StatusCode)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body: got %T; want an io.ReadWriteCloser", resp.Body)
	}
	h1CheckState(t, tr, s.url, h1PoolState{})

	done := make(chan string, 1)
	go func() {
		buf := make([]byte, len("helloping"))
		n, err := io.ReadFull(rw, buf[:5])
		if err == nil {
			_, err = io.WriteString(rw, "ping")
		}
		if err == nil {
			var m int
			m, err = io.ReadFull(rw, buf[5:])
			n += m
		}
		done <- fmt.Sprintf("%q %v", buf[:n], err)
	}()
	if got, want := waitFor(t, done, "the echo"), fmt.Sprintf("%q %v", "helloping", nil); got != want {
		t.Errorf("greeting and echo: got %s; want %s", got, want)
	}
	if err := rw.Close(); err != nil {
		t.Errorf("Close: got error %v; want nil", err)
	}
}

// TestH1ResponseTimeout: an upstream that never answers fails the round
// trip with a timeout after responseTimeout, whatever clock t.now reads:
// a deadline is wall-clock time.
func TestH1ResponseTimeout(t *testing.T) {
	checkLeaks(t)
	const timeout = 200 * time.Millisecond
	for _, tt := range []struct {
		name string
		at   time.Time // what t.now says; zero is time.Now
	}{
		{"real clock", time.Time{}},
		{"clock ahead", time.Now().Add(24 * time.Hour)},
		{"clock behind", time.Now().Add(-24 * time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newH1RawServer(t, func(s *h1RawServer, c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.Copy(io.Discard, br) // never answer; end when the client closes
			})
			tr := newH1TestTransport(t)
			tr.responseTimeout = timeout
			if !tt.at.IsZero() {
				clock := &fakeClock{}
				clock.ns.Store(tt.at.UnixNano())
				tr.now = clock.Now
			}
			start := time.Now()
			res := waitFor(t, h1Go(tr, h1NewRequest(t, context.Background(), http.MethodGet, s.url+"/x", nil)), "the round trip to time out")
			elapsed := time.Since(start)
			if res.err == nil {
				res.resp.Body.Close()
				t.Fatalf("GET: got status %d; want a timeout", res.resp.StatusCode)
			}
			if !isTimeout(res.err) {
				t.Errorf("GET: got error %v; want a net.Error that is a Timeout", res.err)
			}
			if elapsed < timeout {
				t.Errorf("GET failed after %v; want at least %v", elapsed, timeout)
			}
			h1CheckState(t, tr, s.url, h1PoolState{})
		})
	}
}

// TestH1IdleTimeout: a connection idle for longer than idleTimeout is
// closed by sweep, and is not used but closed when a request finds it.
func TestH1IdleTimeout(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name   string
		expire func(t *testing.T, tr *h1Transport, u string) // acts once the idle connection is stale
		want   h1PoolState                                   // after expire
	}{
		{"sweep", func(_ *testing.T, tr *h1Transport, _ string) { tr.sweep() }, h1PoolState{}},
		{"checkout", func(t *testing.T, tr *h1Transport, u string) { h1Get(t, tr, u+"/x", "ok") }, h1PoolState{open: 1, idle: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			})
			clock := newClock()
			tr := newH1TestTransport(t)
			tr.now = clock.Now

			h1Get(t, tr, s.URL+"/x", "ok")
			clock.Advance(tr.idleTimeout / 2)
			tr.sweep()
			h1CheckState(t, tr, s.URL, h1PoolState{open: 1, idle: 1})
			h1Get(t, tr, s.URL+"/x", "ok") // reused, and idle anew
			if n := s.accepted.Load(); n != 1 {
				t.Fatalf("connections accepted before expiry: got %d; want 1", n)
			}

			clock.Advance(tr.idleTimeout + time.Second)
			tt.expire(t, tr, s.URL)
			waitFor(t, s.closed, "the upstream to see the stale connection closed")
			h1CheckState(t, tr, s.URL, tt.want)
			h1Get(t, tr, s.URL+"/x", "ok")
			if n := s.accepted.Load(); n != 2 {
				t.Errorf("connections accepted: got %d; want 2", n)
			}
			h1CheckState(t, tr, s.URL, h1PoolState{open: 1, idle: 1})
		})
	}
}

// TestH1TLS: an https target with protocol http1 is spoken to over TLS
// as HTTP/1.1, on one kept-alive connection.
func TestH1TLS(t *testing.T) {
	checkLeaks(t)
	s := newH1TestServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "no TLS", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Proto, b)
	})
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	tr := newH1TestTransport(t)
	tr.tlsConfig = &tls.Config{RootCAs: roots}
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("server URL: got %s; want https", s.URL)
	}
	for range 10 {
		h1Get(t, tr, s.URL+"/x", "HTTP/1.1 ")
	}
	resp, body := h1Fetch(t, tr, h1NewRequest(t, context.Background(), http.MethodPost, s.URL+"/x", io.MultiReader(strings.NewReader("body"))))
	if resp.StatusCode != http.StatusOK || body != "HTTP/1.1 body" {
		t.Errorf("POST: got %d %q; want 200 \"HTTP/1.1 body\"", resp.StatusCode, body)
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("connections accepted: got %d; want 1", n)
	}
	h1CheckState(t, tr, s.URL, h1PoolState{open: 1, idle: 1})
}

// TestH1ConnectionClose: a response or a request with Connection: close
// ends its connection.
func TestH1ConnectionClose(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name        string
		serverClose bool
		clientClose bool
	}{
		{"from the server", true, false},
		{"from the client", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				if tt.serverClose {
					w.Header().Set("Connection", "close")
				}
				io.WriteString(w, "ok")
			})
			tr := newH1TestTransport(t)
			for i := range 3 {
				req := h1NewRequest(t, context.Background(), http.MethodGet, s.URL+"/x", nil)
				req.Close = tt.clientClose
				resp, body := h1Fetch(t, tr, req)
				if resp.StatusCode != http.StatusOK || body != "ok" || !resp.Close {
					t.Fatalf("GET %d: got %d %q, Close %v; want 200 \"ok\", Close true", i, resp.StatusCode, body, resp.Close)
				}
				h1CheckState(t, tr, s.URL, h1PoolState{})
				waitFor(t, s.closed, "the connection to close")
			}
			if n := s.accepted.Load(); n != 3 {
				t.Errorf("connections accepted: got %d; want 3", n)
			}
		})
	}
}

// closeCounter is a request body that counts its Close calls.
type closeCounter struct {
	io.Reader
	closes atomic.Int64
}

func (c *closeCounter) Close() error { c.closes.Add(1); return nil }

// TestH1ClosesRequestBodyOnError: RoundTrip closes the request body even
// when it fails before the request is written, as http.RoundTripper
// requires.
func TestH1ClosesRequestBodyOnError(t *testing.T) {
	checkLeaks(t)
	s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		url  string
	}{
		{"dial refused", context.Background(), "http://" + deadAddr(t)},
		{"context canceled", canceled, s.URL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newH1TestTransport(t)
			body := &closeCounter{Reader: strings.NewReader("data")}
			req := h1NewRequest(t, tt.ctx, http.MethodPost, tt.url+"/x", body)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("POST: got status %d; want an error", resp.StatusCode)
			}
			if n := body.closes.Load(); n != 1 {
				t.Errorf("request body closed: got %d times; want 1", n)
			}
		})
	}
}

// h1HookConn calls hook before each SetReadDeadline, and reports each
// deadline set in the past, as the transport does on cancellation.
type h1HookConn struct {
	net.Conn
	hook     func(time.Time)
	pastDone chan struct{} // a value per SetDeadline in the past
}

func (c *h1HookConn) SetReadDeadline(t time.Time) error {
	c.hook(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *h1HookConn) SetDeadline(t time.Time) error {
	err := c.Conn.SetDeadline(t)
	if !t.IsZero() && t.Before(time.Now()) {
		select {
		case c.pastDone <- struct{}{}:
		default:
		}
	}
	return err
}

// TestH1CancelAroundResponseTimeout: the response timeout is a read
// deadline too, set before the response and cleared after its headers.
// A cancellation that set its past deadline just before must not be
// undone by either, or the request waits out the response timeout, or
// its body read waits for a stalled upstream forever.
func TestH1CancelAroundResponseTimeout(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name    string
		clear   bool // cancel as the deadline is cleared after the headers; else as it is set
		wantErr bool // from RoundTrip; else from reading the body
	}{
		{"before the response", false, true},
		{"after the headers", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				if tt.clear {
					io.WriteString(w, "part")
					w.(http.Flusher).Flush()
				}
				<-r.Context().Done() // stall until the connection closes
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tr := newH1TestTransport(t)
			tr.responseTimeout = time.Minute
			dial := tr.dial
			tr.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				hc := &h1HookConn{Conn: conn, pastDone: make(chan struct{}, 1)}
				hc.hook = func(d time.Time) {
					if d.IsZero() == tt.clear {
						// Cancel, and let the cancellation's deadline be
						// set before this one.
						cancel()
						select {
						case <-hc.pastDone:
						case <-time.After(10 * time.Second):
						}
					}
				}
				return hc, nil
			}
			res := waitFor(t, h1Go(tr, h1NewRequest(t, ctx, http.MethodGet, s.URL+"/x", nil)), "the round trip to return")
			if tt.wantErr {
				if !errors.Is(res.err, context.Canceled) {
					t.Fatalf("GET: got error %v; want %v", res.err, context.Canceled)
				}
			} else {
				if res.err != nil {
					t.Fatalf("GET: got error %v; want nil", res.err)
				}
				readErr := make(chan error, 1)
				go func() {
					_, err := io.ReadAll(res.resp.Body)
					readErr <- err
				}()
				if err := waitFor(t, readErr, "the body read to fail"); err == nil {
					t.Errorf("body read after cancel: got error nil; want an error")
				}
				res.resp.Body.Close()
			}
			h1CheckState(t, tr, s.URL, h1PoolState{})
		})
	}
}

// TestH1UpstreamRestart: when an upstream restarts, every idle
// connection in the pool is dead at once; a GET must still succeed,
// trying past all of them to a new connection.
func TestH1UpstreamRestart(t *testing.T) {
	checkLeaks(t)
	const idle = 4
	gate := make(chan struct{})
	var arrived atomic.Int64
	s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gate" && arrived.Add(1) <= idle {
			<-gate
		}
		io.WriteString(w, "ok")
	})
	tr := newH1TestTransport(t)
	// Fill the pool with idle connections: idle requests held at once.
	var results []<-chan h1Result
	for range idle {
		results = append(results, h1Go(tr, h1NewRequest(t, context.Background(), http.MethodGet, s.URL+"/gate", nil)))
	}
	h1WaitUntil(t, "every request to reach the upstream", func() bool { return arrived.Load() == idle })
	close(gate)
	h1Drain(t, results)
	h1CheckState(t, tr, s.URL, h1PoolState{open: idle, idle: idle})

	s.CloseClientConnections() // the restart
	for range idle {
		waitFor(t, s.closed, "the upstream to close a connection")
	}
	h1Get(t, tr, s.URL+"/after", "ok")
	if n := s.accepted.Load(); n != idle+1 {
		t.Errorf("connections accepted: got %d; want %d", n, idle+1)
	}
	h1CheckState(t, tr, s.URL, h1PoolState{open: 1, idle: 1})
}

// TestH1TLSHandshakeTimeout: a target that accepts the connection but
// never answers the TLS handshake fails the request after the handshake
// timeout, not after the request's own (much longer) deadline.
func TestH1TLSHandshakeTimeout(t *testing.T) {
	checkLeaks(t)
	s := newH1RawServer(t, func(s *h1RawServer, c net.Conn, br *bufio.Reader) {
		<-s.done // say nothing until the test ends
	})
	tr := newH1TestTransport(t)
	tr.handshakeTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := "https://" + strings.TrimPrefix(s.url, "http://") + "/"
	start := time.Now()
	_, err := tr.RoundTrip(h1NewRequest(t, ctx, http.MethodGet, u, nil))
	if err == nil {
		t.Fatal("RoundTrip to a silent TLS target: got nil error; want a handshake timeout")
	}
	if ctx.Err() != nil {
		t.Fatalf("the request's own deadline ran out (after %v): the handshake timeout did not apply", time.Since(start))
	}
	h1CheckState(t, tr, u, h1PoolState{})
}

// TestH1SurplusIdle: connections beyond maxIdle are kept after a burst,
// so the next burst reuses them instead of dialing, and the sweep closes
// them (the least recently used first) once idle for surplusIdle, down
// to maxIdle.
func TestH1SurplusIdle(t *testing.T) {
	checkLeaks(t)
	const burst, maxIdle = 5, 2
	var gate atomic.Pointer[chan struct{}]
	var arrived atomic.Int64
	s := newH1TestServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		<-*gate.Load()
		io.WriteString(w, "ok")
	})
	clock := newClock()
	tr := newH1TestTransport(t)
	tr.now = clock.Now
	tr.maxIdle, tr.surplusIdle = maxIdle, 2*time.Second
	// run holds burst requests at the upstream at once, then lets them go.
	run := func() {
		g := make(chan struct{})
		gate.Store(&g)
		start := arrived.Load()
		var results []<-chan h1Result
		for range burst {
			results = append(results, h1Go(tr, h1NewRequest(t, context.Background(), http.MethodGet, s.URL+"/x", nil)))
		}
		h1WaitUntil(t, "the burst to reach the upstream", func() bool { return arrived.Load() == start+burst })
		close(g)
		h1Drain(t, results)
	}
	run()
	h1CheckState(t, tr, s.URL, h1PoolState{open: burst, idle: burst})
	clock.Advance(time.Second)
	tr.sweep() // within surplusIdle: all stay
	h1CheckState(t, tr, s.URL, h1PoolState{open: burst, idle: burst})
	run()
	if n := s.accepted.Load(); n != burst {
		t.Errorf("connections accepted after two bursts: got %d; want %d", n, burst)
	}
	clock.Advance(3 * time.Second)
	tr.sweep()
	for range burst - maxIdle {
		waitFor(t, s.closed, "the upstream to see a surplus connection closed")
	}
	h1CheckState(t, tr, s.URL, h1PoolState{open: maxIdle, idle: maxIdle})
	h1Get(t, tr, s.URL+"/x", "ok")
	if n := s.accepted.Load(); n != burst {
		t.Errorf("connections accepted after the sweep: got %d; want %d (a kept one reused)", n, burst)
	}
}

// h1EventLog is an ordered record of events from several goroutines.
type h1EventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *h1EventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *h1EventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// stallingBody gives n bytes, then reports stalled and blocks its next
// Read until release is closed; it logs that Read's end and its Close.
type stallingBody struct {
	n       int
	stalled chan struct{}
	release chan struct{}
	log     *h1EventLog
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if b.n > 0 {
		p = p[:min(len(p), b.n)]
		b.n -= len(p)
		clear(p)
		return len(p), nil
	}
	close(b.stalled)
	<-b.release
	b.log.add("body read")
	return 0, errors.New("client went away")
}

func (b *stallingBody) Close() error {
	b.log.add("body closed")
	return nil
}

// h1CloseConn reports its first Close on closed.
type h1CloseConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *h1CloseConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestH1UpstreamFailsMidUpload: the upstream closes the connection while
// the body writer waits for the client's next bytes. RoundTrip fails,
// but only after the writer is done with the client's body: its last
// Read and its Close come before RoundTrip returns, so that nothing
// reads the client's body (or writes to the connection) afterwards.
func TestH1UpstreamFailsMidUpload(t *testing.T) {
	checkLeaks(t)
	const sent = 64 << 10
	var log h1EventLog
	body := &stallingBody{n: sent, stalled: make(chan struct{}), release: make(chan struct{}), log: &log}
	s := newH1RawServer(t, func(s *h1RawServer, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, req.Body, sent); err != nil {
			return
		}
		select {
		case <-body.stalled:
		case <-s.done:
		}
		// Return: the connection closes mid-upload.
	})
	tr := newH1TestTransport(t)
	connClosed := make(chan struct{})
	dial := tr.dial
	tr.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &h1CloseConn{Conn: conn, closed: connClosed}, nil
	}
	req := h1NewRequest(t, context.Background(), http.MethodPost, s.url+"/upload", body)
	req.ContentLength = 1 << 20
	res := make(chan h1Result, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		log.add("RoundTrip returned")
		res <- h1Result{resp, err}
	}()
	// The transport saw the upstream's end and closed the connection;
	// the body writer is still blocked reading the client's body.
	waitFor(t, connClosed, "the transport to close the connection")
	close(body.release)
	r := waitFor(t, res, "the round trip to return")
	if r.err == nil {
		r.resp.Body.Close()
		t.Fatalf("POST: got status %d; want an error", r.resp.StatusCode)
	}
	want := []string{"body read", "body closed", "RoundTrip returned"}
	if got := log.all(); !slices.Equal(got, want) {
		t.Errorf("events: got %q; want %q", got, want)
	}
	h1CheckState(t, tr, s.url, h1PoolState{})
}
