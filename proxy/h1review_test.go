package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestH1ReviewExtraBytesAfterResponse: an upstream sends more bytes than
// the response's framing covers (a body longer than its Content-Length,
// or a body after a HEAD response). Those bytes must not be read as the
// response to the next request sent on the connection: that would hand
// one client a response the upstream never sent for its request.
func TestH1ReviewExtraBytesAfterResponse(t *testing.T) {
	checkLeaks(t)
	const forged = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
	for _, tt := range []struct {
		name, method, reply, want string
	}{
		{"body longer than Content-Length", http.MethodGet, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + forged, "ok"},
		{"body after HEAD", http.MethodHead, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + forged, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newH1RawServer(t, func(_ *h1RawServer, c net.Conn, br *bufio.Reader) {
				h1KeepAlive(c, br, func(req *http.Request) string {
					if req.URL.Path == "/first" {
						return tt.reply // one write: the extra bytes come with the response
					}
					return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"
				})
			})
			tr := newH1TestTransport(t)
			resp, body := h1Fetch(t, tr, h1NewRequest(t, context.Background(), tt.method, s.url+"/first", nil))
			if resp.StatusCode != http.StatusOK || body != tt.want {
				t.Fatalf("%s /first: got %d %q; want 200 %q", tt.method, resp.StatusCode, body, tt.want)
			}
			h1Get(t, tr, s.url+"/second", "real")
			h1CheckState(t, tr, s.url, h1PoolState{open: 1, idle: 1})
		})
	}
}

// TestH1ReviewResponseTimeoutNotRetried: a request that times out waiting
// for response headers on a reused connection is not sent again: that
// would send it to the slow upstream once more and make the client wait
// a multiple of the timeout for its 504.
func TestH1ReviewResponseTimeoutNotRetried(t *testing.T) {
	checkLeaks(t)
	var slow atomic.Int64
	s := newH1RawServer(t, func(_ *h1RawServer, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/slow" {
				slow.Add(1)
				io.Copy(io.Discard, br) // never answer; end when the client closes
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	tr := newH1TestTransport(t)
	tr.responseTimeout = 200 * time.Millisecond
	var dials atomic.Int64
	dial := tr.dial
	tr.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	h1Get(t, tr, s.url+"/fast", "ok")
	h1CheckState(t, tr, s.url, h1PoolState{open: 1, idle: 1})
	res := waitFor(t, h1Go(tr, h1NewRequest(t, context.Background(), http.MethodGet, s.url+"/slow", nil)), "the round trip to time out")
	if res.err == nil {
		res.resp.Body.Close()
		t.Fatalf("GET /slow: got status %d; want a timeout", res.resp.StatusCode)
	}
	if !isTimeout(res.err) {
		t.Errorf("GET /slow: got error %v; want a timeout", res.err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("dials: got %d; want 1 (the request was sent again)", n)
	}
	h1CheckState(t, tr, s.url, h1PoolState{})
}

// gatedBody gives its first byte at once and the rest once released.
type gatedBody struct {
	first   bool
	release chan struct{}
	rest    io.Reader
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if !b.first {
		b.first = true
		p[0] = 'a'
		return 1, nil
	}
	<-b.release
	return b.rest.Read(p)
}

// TestH1ReviewResponseTimeoutAfterBody: the response header timeout
// starts once the request body is written, as net/http's
// ResponseHeaderTimeout does. An upload that takes longer than the
// timeout, to an upstream that reads it as it comes and then answers at
// once, succeeds.
func TestH1ReviewResponseTimeoutAfterBody(t *testing.T) {
	checkLeaks(t)
	const timeout = 200 * time.Millisecond
	started := make(chan struct{}, 1)
	s := newH1RawServer(t, func(_ *h1RawServer, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		var b [1]byte
		if _, err := io.ReadFull(req.Body, b[:]); err != nil {
			return
		}
		started <- struct{}{}
		rest, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(1+len(rest))+"\r\n\r\n"+string(b[:])+string(rest))
		io.Copy(io.Discard, br)
	})
	tr := newH1TestTransport(t)
	tr.responseTimeout = timeout
	body := &gatedBody{release: make(chan struct{}), rest: strings.NewReader("bc")}
	req := h1NewRequest(t, context.Background(), http.MethodPost, s.url+"/upload", body)
	ch := h1Go(tr, req)
	waitFor(t, started, "the upstream to read the first byte")
	// The upload goes on for longer than the response header timeout.
	time.Sleep(3 * timeout)
	close(body.release)
	res := waitFor(t, ch, "the round trip")
	if res.err != nil {
		t.Fatalf("POST: got error %v; want 200", res.err)
	}
	got, err := io.ReadAll(res.resp.Body)
	res.resp.Body.Close()
	if err != nil || res.resp.StatusCode != http.StatusOK || string(got) != "abc" {
		t.Errorf("POST: got %d %q %v; want 200 \"abc\"", res.resp.StatusCode, got, err)
	}
}

// TestH1ReviewPostOnClosedIdleConn: a bodiless POST is never sent twice,
// so before it goes out on a reused connection the transport checks the
// upstream has not closed it; the POST then goes on a new connection and
// reaches the upstream exactly once.
func TestH1ReviewPostOnClosedIdleConn(t *testing.T) {
	checkLeaks(t)
	closed := make(chan struct{}, 10)
	var posts atomic.Int64
	s := newH1RawServer(t, func(_ *h1RawServer, c net.Conn, br *bufio.Reader) {
		defer func() { closed <- struct{}{} }()
		defer c.Close()
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Method == http.MethodPost {
			posts.Add(1)
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := newH1TestTransport(t)
	h1Get(t, tr, s.url+"/first", "ok")
	waitFor(t, closed, "the upstream to close the connection")
	p := tr.pool("http", strings.TrimPrefix(s.url, "http://"))
	h1WaitUntil(t, "alive() to see the upstream close the idle connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.idle) == 1 && !p.idle[0].alive()
	})
	resp, body := h1Fetch(t, tr, h1NewRequest(t, context.Background(), http.MethodPost, s.url+"/second", nil))
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("POST: got %d %q; want 200 \"ok\"", resp.StatusCode, body)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("POSTs at the upstream: got %d; want 1", n)
	}
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("connections accepted: got %d; want 2", n)
	}
}

// TestH1ReviewTooManyInterim: an upstream that answers only with 1xx
// responses gets an error after a handful, not an endless wait.
func TestH1ReviewTooManyInterim(t *testing.T) {
	checkLeaks(t)
	s := newH1RawServer(t, func(_ *h1RawServer, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		for range 100 {
			if _, err := io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"); err != nil {
				return
			}
		}
	})
	tr := newH1TestTransport(t)
	_, err := tr.RoundTrip(h1NewRequest(t, context.Background(), http.MethodGet, s.url+"/", nil))
	if err == nil || !strings.Contains(err.Error(), "too many 1xx") {
		t.Fatalf("got %v; want the too-many-1xx error", err)
	}
	h1CheckState(t, tr, s.url, h1PoolState{})
}
