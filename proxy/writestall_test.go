package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// streamEnd is how an endless upstream response ended.
type streamEnd struct {
	n   int64 // bytes the upstream handler got written
	err error // the write error, or the request context's
}

// newEndlessGateway is a gateway whose upstream streams a response with
// no length until the request ends. started gets a value when the
// upstream handler runs, ended when it returns.
func newEndlessGateway(t *testing.T) (h http.Handler, started <-chan struct{}, ended <-chan streamEnd) {
	t.Helper()
	st := make(chan struct{}, 1)
	en := make(chan streamEnd, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		send(r, st, struct{}{})
		buf := bytes.Repeat([]byte("endless "), 4<<10) // 32 KiB
		var end streamEnd
		for end.err == nil {
			if end.err = r.Context().Err(); end.err != nil {
				break
			}
			var k int
			k, end.err = w.Write(buf)
			end.n += int64(k)
		}
		// Buffered and not blocking: a second request (none is
		// expected) must not hang its handler.
		select {
		case en <- end:
		default:
		}
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	return newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}}), st, en
}

// TestWriteStall: with WriteTimeout, a client that stops reading its
// response is cut off, on HTTP/1.1 and on an HTTP/2 stream, and the
// upstream request ends too; a client that reads slowly but steadily
// gets the whole response even when that takes longer than the timeout.
func TestWriteStall(t *testing.T) {
	checkLeaks(t)

	t.Run("http1 stalled", func(t *testing.T) {
		h, started, ended := newEndlessGateway(t)
		addr := startServer(t, h, ListenerOptions{WriteTimeout: 300 * time.Millisecond}).addr
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /endless HTTP/1.1\r\nHost: gw.test\r\n\r\n"); err != nil {
			t.Fatalf("writing request: %v", err)
		}
		// Nothing is read from here on: the socket buffers fill and the
		// gateway's write blocks.
		waitFor(t, started, "the upstream to get the request")
		end := waitFor(t, ended, "the upstream request to end after the client stalled")
		t.Logf("upstream wrote %d bytes, then: %v", end.n, end.err)

		// The gateway must have closed the connection too: what it
		// sent is still buffered, then EOF (or a reset, which may drop
		// the buffered bytes). Only a timeout means it is still open.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if isTimeout(err) {
			t.Fatalf("the gateway left the connection open after %d bytes; want it closed", n)
		}
		t.Logf("client connection: %d bytes, then closed (%v)", n, err)
	})

	t.Run("h2c stalled", func(t *testing.T) {
		h, started, ended := newEndlessGateway(t)
		addr := startServer(t, h, ListenerOptions{H2C: true, WriteTimeout: 300 * time.Millisecond}).addr
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Far longer than the timeout: only the gateway resetting the
		// stream or closing ends the read loop below early.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
			t.Fatalf("writing preface: %v", err)
		}
		fr := http2.NewFramer(c, c)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		// A stream window of 0, never raised: the server may send
		// headers but no DATA, so the response stalls at once.
		if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
			t.Fatalf("writing SETTINGS: %v", err)
		}
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, f := range []hpack.HeaderField{
			{Name: ":method", Value: "GET"},
			{Name: ":scheme", Value: "http"},
			{Name: ":path", Value: "/endless"},
			{Name: ":authority", Value: "gw.test"},
		} {
			if err := enc.WriteField(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatalf("writing HEADERS: %v", err)
		}
		waitFor(t, started, "the upstream to get the request")

	frames:
		for {
			f, err := fr.ReadFrame()
			if isTimeout(err) {
				t.Fatalf("stream 1 was neither reset nor the connection closed within 10s")
			}
			if err != nil {
				t.Logf("no RST_STREAM; the connection ended instead: %v", err)
				break
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					if err := fr.WriteSettingsAck(); err != nil {
						t.Fatalf("writing SETTINGS ack: %v", err)
					}
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					if err := fr.WritePing(true, f.Data); err != nil {
						t.Fatalf("writing PING ack: %v", err)
					}
				}
			case *http2.MetaHeadersFrame:
				t.Logf("stream %d: response headers, status %s", f.StreamID, f.PseudoValue("status"))
			case *http2.DataFrame:
				if f.StreamID == 1 && len(f.Data()) > 0 {
					t.Fatalf("got %d bytes of DATA on stream 1 with a window of 0: the response never stalled", len(f.Data()))
				}
			case *http2.RSTStreamFrame:
				if f.StreamID == 1 {
					t.Logf("stream 1 reset: %v", f.ErrCode)
					break frames
				}
			case *http2.GoAwayFrame:
				t.Logf("no RST_STREAM; GOAWAY instead: last stream %d, %v", f.LastStreamID, f.ErrCode)
				break frames
			}
		}
		end := waitFor(t, ended, "the upstream request to end after the stream stalled")
		t.Logf("upstream wrote %d bytes, then: %v", end.n, end.err)
	})

	t.Run("h1 slow but steady reader", func(t *testing.T) {
		// Loopback socket buffers take several MiB (the gateway's send
		// buffer alone grows to 4 MiB on Linux), so the response is
		// far larger: the gateway must still be writing well after the
		// deadline net/http armed when it read the request.
		const (
			timeout = time.Second
			size    = 32 << 20
			ticks   = 40 // one every timeout/20: about 2s in all
		)
		body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		}))
		u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
		h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
		// How long the gateway went on writing, to check that the test
		// exercised the timeout at all.
		served := make(chan time.Duration, 1)
		gw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			h.ServeHTTP(w, r)
			select {
			case served <- time.Since(start):
			default:
			}
		})
		addr := startServer(t, gw, ListenerOptions{WriteTimeout: timeout}).addr

		// A receive buffer fixed before connecting, so the kernel does
		// not grow it to hold much of the response.
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
			})
			if err != nil {
				return err
			}
			return serr
		}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(clientTimeout))
		if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: gw.test\r\n\r\n"); err != nil {
			t.Fatalf("writing request: %v", err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("reading response: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET: got %d; want 200", resp.StatusCode)
		}
		// Equal chunks a twentieth of the timeout apart: the gateway's
		// writes block for no longer than that, but the whole response
		// takes about twice the timeout.
		start := time.Now()
		tick := time.NewTicker(timeout / 20)
		defer tick.Stop()
		var got int64
		for range ticks {
			<-tick.C
			n, err := io.CopyN(io.Discard, resp.Body, size/ticks)
			got += n
			if err != nil {
				t.Fatalf("reading body: got %v after %d bytes; want %d bytes", err, got, size)
			}
		}
		n, err := io.Copy(io.Discard, resp.Body)
		got += n
		if err != nil || got != size {
			t.Fatalf("reading body: got %d bytes and %v; want %d bytes and EOF", got, err, size)
		}
		wrote := waitFor(t, served, "the gateway handler to return")
		t.Logf("read %d bytes in %v; the gateway wrote for %v", got, time.Since(start).Round(time.Millisecond), wrote.Round(time.Millisecond))
		// Load only makes the writes take longer. Were they done before
		// the first deadline, socket buffers held the response and the
		// test showed nothing.
		if wrote < timeout {
			t.Errorf("the gateway wrote the response in %v, within the %v timeout; want longer, or the test does not exercise the timeout (raise size)", wrote, timeout)
		}
	})
}
