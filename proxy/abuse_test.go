package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2conn is a raw HTTP/2 client connection: a framer over a TCP (or TLS)
// connection that has sent the preface and its SETTINGS. Frames the
// server sends are read on a goroutine and delivered on frames.
type h2conn struct {
	c      net.Conn
	fr     *http2.Framer
	hbuf   bytes.Buffer
	enc    *hpack.Encoder
	frames chan http2.Frame // closed when reading fails
	next   uint32           // next client stream id
}

// dialH2 opens a raw HTTP/2 connection to the gateway at addr, over TLS
// with ALPN h2 when roots is not nil.
func dialH2(t *testing.T, addr string, tlsConf *tls.Config) *h2conn {
	t.Helper()
	var c net.Conn
	var err error
	if tlsConf != nil {
		tlsConf = tlsConf.Clone()
		tlsConf.NextProtos = []string{"h2"}
		c, err = tls.Dial("tcp", addr, tlsConf)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	hc := &h2conn{c: c, frames: make(chan http2.Frame, 1<<16), next: 1}
	hc.enc = hpack.NewEncoder(&hc.hbuf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	hc.fr = http2.NewFramer(c, bufio.NewReader(c))
	if err := hc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	// A second framer reads: Framer's read and write halves are
	// independent, and ReadFrame's frames are only valid until the next
	// call, so the ones the tests look at are copied.
	rd := http2.NewFramer(nil, bufio.NewReader(c))
	rd.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	go func() {
		defer close(hc.frames)
		for {
			f, err := rd.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				hc.frames <- &http2.GoAwayFrame{LastStreamID: f.LastStreamID, ErrCode: f.ErrCode}
			case *http2.MetaHeadersFrame:
				hc.frames <- &http2.MetaHeadersFrame{HeadersFrame: &http2.HeadersFrame{FrameHeader: f.FrameHeader}, Fields: append([]hpack.HeaderField(nil), f.Fields...)}
			}
		}
	}()
	return hc
}

// headers opens a stream with a GET for path and returns its id.
func (hc *h2conn) headers(t *testing.T, path string) (uint32, error) {
	id := hc.next
	hc.next += 2
	hc.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "gw"}, {":path", path}} {
		_ = hc.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return id, hc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hc.hbuf.Bytes(), EndStream: true, EndHeaders: true})
}

// goAway waits for the server's GOAWAY and returns its code; it fails t
// if the connection ends without one.
func (hc *h2conn) goAway(t *testing.T) http2.ErrCode {
	t.Helper()
	for f := range hc.frames {
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			return ga.ErrCode
		}
	}
	t.Fatal("connection ended without a GOAWAY")
	return 0
}

// status waits for the response headers of stream id and returns
// :status; GOAWAY or the end of the connection fail t.
func (hc *h2conn) status(t *testing.T, id uint32) string {
	t.Helper()
	for f := range hc.frames {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			t.Fatalf("got GOAWAY %v waiting for stream %d", f.ErrCode, id)
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				return f.PseudoValue("status")
			}
		}
	}
	t.Fatalf("connection ended waiting for stream %d", id)
	return ""
}

// countingGateway serves a gateway, on the package's own Server, in front
// of an upstream that counts the requests it gets.
func countingGateway(t *testing.T, lo ListenerOptions) (addr string, upstream *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, "ok")
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
	return startServer(t, h, lo).addr, &n
}

// TestRapidResetFlood: 100,000 HEADERS and RST_STREAM pairs on one
// connection end in GOAWAY ENHANCE_YOUR_CALM after the connection's
// budget of resets, so only a few hundred requests reach the upstream;
// another client's requests meanwhile all succeed. Over h2c and over TLS
// (ALPN h2), whose frames the gateway reads above the TLS layer.
func TestRapidResetFlood(t *testing.T) {
	checkLeaks(t)
	certFile, keyFile, roots := writeCert(t, t.TempDir())
	for _, tt := range []struct {
		name string
		lo   ListenerOptions
		tls  *tls.Config
	}{
		{"h2c", ListenerOptions{H2C: true}, nil},
		{"TLS", ListenerOptions{CertFile: certFile, KeyFile: keyFile}, &tls.Config{RootCAs: roots}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, upstream := countingGateway(t, tt.lo)
			hc := dialH2(t, addr, tt.tls)
			sent := 0
			for ; sent < 100_000; sent++ {
				id, err := hc.headers(t, "/flood")
				if err == nil {
					err = hc.fr.WriteRSTStream(id, http2.ErrCodeCancel)
				}
				if err != nil {
					break // the server closed the connection
				}
			}
			if code := hc.goAway(t); code != http2.ErrCodeEnhanceYourCalm {
				t.Errorf("GOAWAY code: got %v; want ENHANCE_YOUR_CALM", code)
			}
			if n := upstream.Load(); n > 400 {
				t.Errorf("upstream got %d requests of %d reset streams; want at most 400", n, sent)
			}
			t.Logf("%d streams sent and reset, %d requests upstream", sent, upstream.Load())

			// Another client is served as before.
			var c *http.Client
			base := "http://" + addr
			if tt.tls != nil {
				tr := &http.Transport{TLSClientConfig: tt.tls, ForceAttemptHTTP2: true}
				t.Cleanup(tr.CloseIdleConnections)
				c = &http.Client{Transport: tr, Timeout: clientTimeout}
				base = "https://" + addr
			} else {
				c = newH2CClient(t)
			}
			for i := range 20 {
				if code, body := get(t, c, base+"/after"); code != http.StatusOK || body != "ok" {
					t.Fatalf("request %d of another client: got %d %q; want 200 ok", i, code, body)
				}
			}
		})
	}
}

// TestControlFrameFloods: PING, SETTINGS, PRIORITY, empty DATA and
// frames of undefined types, a thousand each, are each answered with
// GOAWAY ENHANCE_YOUR_CALM.
func TestControlFrameFloods(t *testing.T) {
	checkLeaks(t)
	addr, _ := countingGateway(t, ListenerOptions{H2C: true})
	for _, tt := range []struct {
		name string
		send func(hc *h2conn, i int) error
	}{
		{"PING", func(hc *h2conn, i int) error { return hc.fr.WritePing(false, [8]byte{byte(i)}) }},
		{"SETTINGS", func(hc *h2conn, i int) error { return hc.fr.WriteSettings() }},
		{"PRIORITY", func(hc *h2conn, i int) error {
			return hc.fr.WritePriority(uint32(2*i+1), http2.PriorityParam{Weight: 16})
		}},
		{"empty DATA", func(hc *h2conn, i int) error {
			if i == 0 {
				// An open stream for the DATA frames: a POST whose body
				// never comes.
				hc.hbuf.Reset()
				for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "gw"}, {":path", "/upload"}} {
					_ = hc.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
				}
				if err := hc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hc.hbuf.Bytes(), EndHeaders: true}); err != nil {
					return err
				}
			}
			return hc.fr.WriteData(1, false, nil)
		}},
		{"undefined type", func(hc *h2conn, i int) error { return hc.fr.WriteRawFrame(0xfa, 0, 0, []byte("x")) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hc := dialH2(t, addr, nil)
			for i := range 1000 {
				if err := tt.send(hc, i); err != nil {
					break
				}
			}
			if code := hc.goAway(t); code != http2.ErrCodeEnhanceYourCalm {
				t.Errorf("GOAWAY code: got %v; want ENHANCE_YOUR_CALM", code)
			}
		})
	}
}

// TestBrowserCancelsWithinBudget: a client that cancels fifty streams,
// pings and re-sends its settings, as browsers do when a page is left,
// keeps its connection and gets its next requests answered.
func TestBrowserCancelsWithinBudget(t *testing.T) {
	checkLeaks(t)
	addr, _ := countingGateway(t, ListenerOptions{H2C: true})
	hc := dialH2(t, addr, nil)
	for range 50 {
		id, err := hc.headers(t, "/page")
		if err != nil {
			t.Fatal(err)
		}
		if err := hc.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if err := hc.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if err := hc.fr.WritePriority(hc.next+uint32(100+2*i), http2.PriorityParam{Weight: 8}); err != nil {
			t.Fatal(err)
		}
	}
	if err := hc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		id, err := hc.headers(t, "/next")
		if err != nil {
			t.Fatal(err)
		}
		if got := hc.status(t, id); got != "200" {
			t.Fatalf("stream %d: got :status %q; want 200", id, got)
		}
	}
}

// TestResetCancelsUpstream: a client's RST_STREAM ends the request the
// gateway has open upstream, which sees its connection go.
func TestResetCancelsUpstream(t *testing.T) {
	checkLeaks(t)
	arrived := make(chan struct{}, 1)
	canceled := make(chan struct{}, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
		canceled <- struct{}{}
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
	srv := startServer(t, h, ListenerOptions{H2C: true})
	hc := dialH2(t, srv.addr, nil)
	id, err := hc.headers(t, "/slow")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, arrived, "the request at the upstream")
	if err := hc.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	waitFor(t, canceled, "the upstream request to be canceled")
}

// TestContentLengthWithChunked: a request with both Content-Length and
// Transfer-Encoding: chunked is answered and its connection closed, so
// the bytes after its chunked body never become a request; over
// cleartext, an h2c listener and TLS, with the field in any case and
// split across TCP segments. A chunked request without the field, or one
// after a request that had it, keeps the connection.
func TestContentLengthWithChunked(t *testing.T) {
	checkLeaks(t)
	certFile, keyFile, roots := writeCert(t, t.TempDir())
	var smuggled atomic.Int64
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/smuggled" {
			smuggled.Add(1)
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
	listeners := []struct {
		name string
		lo   ListenerOptions
		tls  *tls.Config
	}{
		{"cleartext", ListenerOptions{}, nil},
		{"h2c listener", ListenerOptions{H2C: true}, nil},
		{"TLS", ListenerOptions{CertFile: certFile, KeyFile: keyFile}, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}},
	}
	const next = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, l := range listeners {
		srv := startServer(t, h, l.lo)
		dial := func(t *testing.T) net.Conn {
			var c net.Conn
			var err error
			if l.tls != nil {
				c, err = tls.Dial("tcp", srv.addr, l.tls)
			} else {
				c, err = net.Dial("tcp", srv.addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(30 * time.Second))
			return c
		}
		for _, tt := range []struct {
			name     string
			segments []string // written one after another
			closed   bool
		}{
			{"CL before TE", []string{"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next}, true},
			{"TE before lower-case CL", []string{"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\ncontent-LENGTH: 40\r\n\r\n0\r\n\r\n" + next}, true},
			{"field split across segments", []string{"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConte", "nt-Len", "gth: 4\r\n\r\n0\r\n\r\n" + next}, true},
			{"after a request with Content-Length", []string{"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next}, true},
			{"chunked alone", []string{"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n" + next}, false},
			{"chunked after Content-Length", []string{"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next}, false},
		} {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				before := smuggled.Load()
				c := dial(t)
				br := bufio.NewReader(c)
				for i, seg := range tt.segments {
					if _, err := io.WriteString(c, seg); err != nil {
						t.Fatal(err)
					}
					if strings.HasSuffix(seg, "hi") || i == len(tt.segments)-1 {
						resp, err := http.ReadResponse(br, nil)
						if err != nil {
							t.Fatalf("reading a response: %v", err)
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							t.Fatalf("got %d; want 200", resp.StatusCode)
						}
					}
				}
				resp, err := http.ReadResponse(br, nil)
				if tt.closed {
					if err == nil {
						resp.Body.Close()
						t.Fatalf("got a response to the bytes after the chunked body (%d); want the connection closed", resp.StatusCode)
					}
					if n := smuggled.Load() - before; n != 0 {
						t.Errorf("upstream got %d smuggled requests; want 0", n)
					}
					return
				}
				if err != nil {
					t.Fatalf("reading the next request's response: %v; want the connection kept", err)
				}
				resp.Body.Close()
			})
		}
	}
}

// TestHTTP09RefusedAtOnce: an HTTP/0.9 request line on an h2c listener
// gets its 400 at once, not after the header timeout (an hour here).
func TestHTTP09RefusedAtOnce(t *testing.T) {
	checkLeaks(t)
	addr, upstream := countingGateway(t, ListenerOptions{H2C: true, ReadHeaderTimeout: time.Hour})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET /\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response: %v; want a 400 at once", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("got %d; want 400", resp.StatusCode)
	}
	if n := upstream.Load(); n != 0 {
		t.Errorf("upstream got %d requests; want 0", n)
	}
}

// TestTraceRefused: TRACE and TRACK get 405 from a route that does not
// list them, without reaching the upstream, whose echo would show a
// page the client's cookies; a route that lists TRACE passes it on.
func TestTraceRefused(t *testing.T) {
	checkLeaks(t)
	var got atomic.Int64
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		io.WriteString(w, r.Method)
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{
		{Name: "all", Path: "/", Upstream: u},
		{Name: "traced", Path: "/debug", Methods: []string{"GET", "TRACE"}, Upstream: u},
	}})
	gw := serveHandler(t, h)
	addr := gw.Listener.Addr().String()
	for _, m := range []string{"TRACE", "TRACK"} {
		resp, body := rawRequest(t, addr, m+" /x HTTP/1.1\r\nHost: a\r\nCookie: session=secret\r\n\r\n")
		if resp.StatusCode != http.StatusMethodNotAllowed || strings.Contains(body, "secret") {
			t.Errorf("%s: got %d %q; want 405 without the request echoed", m, resp.StatusCode, body)
		}
		if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") || strings.Contains(allow, "TRACE") {
			t.Errorf("%s: Allow %q; want the usual methods without TRACE", m, allow)
		}
	}
	if n := got.Load(); n != 0 {
		t.Errorf("upstream got %d requests; want 0", n)
	}
	if resp, body := rawRequest(t, addr, "TRACE /debug HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != http.StatusOK || body != "TRACE" {
		t.Errorf("TRACE through a route that lists it: got %d %q; want 200 TRACE", resp.StatusCode, body)
	}
}
