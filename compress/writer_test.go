package compress

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// server is one real listener with a client that sees raw bytes.
type server struct {
	name   string
	url    string
	client *http.Client
	proto  int // expected ProtoMajor
}

// serve runs h behind an HTTP/1.1 listener and an HTTP/2 TLS one.
func serve(t *testing.T, h http.Handler) []server {
	t.Helper()
	h1 := httptest.NewServer(h)
	t.Cleanup(h1.Close)
	h2 := httptest.NewUnstartedServer(h)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c1 := &http.Client{Transport: &http.Transport{DisableCompression: true}, CheckRedirect: noRedirect}
	c2 := h2.Client()
	c2.Transport.(*http.Transport).DisableCompression = true
	c2.CheckRedirect = noRedirect
	t.Cleanup(func() {
		c1.CloseIdleConnections()
		c2.CloseIdleConnections()
	})
	return []server{{"h1", h1.URL, c1, 1}, {"h2", h2.URL, c2, 2}}
}

// get sends a request with the given Accept-Encoding (nil: none) and
// returns the response with its raw body read.
func (s server) do(t *testing.T, method, path string, ae []string, extra ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ae {
		req.Header.Add("Accept-Encoding", v)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Add(extra[i], extra[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	if resp.ProtoMajor != s.proto {
		t.Fatalf("got HTTP/%d; want HTTP/%d", resp.ProtoMajor, s.proto)
	}
	return resp, body
}

// origin is a configurable test handler: it sets the headers given,
// writes status, then the body in writes of chunk bytes (0: one write).
type origin struct {
	header http.Header
	status int
	body   []byte
	chunk  int
	flush  bool
}

func (o origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range o.header {
		w.Header()[k] = append([]string(nil), v...)
	}
	if o.status != 0 {
		w.WriteHeader(o.status)
	}
	for p := o.body; len(p) > 0; {
		n := len(p)
		if o.chunk > 0 {
			n = min(n, o.chunk)
		}
		if _, err := w.Write(p[:n]); err != nil {
			return
		}
		if o.flush {
			w.(http.Flusher).Flush()
		}
		p = p[n:]
	}
}

func jsonHeader(kv ...string) http.Header {
	return hdr(append([]string{"Content-Type", "application/json"}, kv...)...)
}

func TestStreamRoundTrip(t *testing.T) {
	c := mustNew(t, Options{})
	small := json64k[:3000]
	mux := http.NewServeMux()
	mux.Handle("/one", origin{header: jsonHeader("Etag", `"v1"`), body: json64k})
	mux.Handle("/chunks", origin{header: jsonHeader(), body: json64k, chunk: 1000})
	mux.Handle("/flushed", origin{header: jsonHeader(), body: json64k, chunk: 7000, flush: true})
	mux.Handle("/length", origin{header: jsonHeader("Content-Length", strconv.Itoa(len(small))), body: small, chunk: 100})
	mux.Handle("/random", origin{header: hdr("Content-Type", "text/plain"), body: random1M[:200000], chunk: 30000})
	mux.Handle("/error", origin{header: hdr("Content-Type", "application/problem+json"), status: 503, body: small})
	for _, s := range serve(t, c.Wrap(mux)) {
		for _, coding := range codings {
			for path, want := range map[string][]byte{"/one": json64k, "/chunks": json64k, "/flushed": json64k, "/length": small, "/random": random1M[:200000], "/error": small} {
				t.Run(s.name+"/"+coding+path, func(t *testing.T) {
					resp, raw := s.do(t, "GET", path, []string{coding})
					if got := resp.Header.Get("Content-Encoding"); got != coding {
						t.Fatalf("Content-Encoding %q; want %q", got, coding)
					}
					if resp.ContentLength != -1 && resp.ContentLength != int64(len(raw)) {
						t.Errorf("Content-Length %d for %d encoded bytes", resp.ContentLength, len(raw))
					}
					if got := resp.Header.Values("Vary"); len(got) != 1 || got[0] != "Accept-Encoding" {
						t.Errorf("Vary %q; want Accept-Encoding", got)
					}
					if path == "/one" {
						if got, want := resp.Header.Get("Etag"), `"v1-`+coding+`"`; got != want {
							t.Errorf("ETag %q; want %q", got, want)
						}
					}
					checkDecodes(t, coding, raw, want)
					if path != "/random" && len(raw) >= len(want)/2 {
						t.Errorf("%d bytes encoded to %d; want real compression", len(want), len(raw))
					}
				})
			}
		}
	}
}

// TestStreamStats checks the counters against the bytes on the wire.
func TestStreamStats(t *testing.T) {
	c := mustNew(t, Options{})
	h := c.Wrap(origin{header: jsonHeader(), body: json64k, chunk: 5000})
	s := serve(t, h)[0]
	var wire [numCodings]uint64
	for i := range 3 {
		for _, coding := range codings {
			_, raw := s.do(t, "GET", "/", []string{coding})
			wire[codingIdx(coding)] += uint64(len(raw))
			_ = i
		}
	}
	s.do(t, "GET", "/", nil) // identity: not counted
	st := c.Stats()
	for _, coding := range codings {
		got := st[coding]
		if got.Responses != 3 || got.BytesIn != 3*uint64(len(json64k)) || got.BytesOut != wire[codingIdx(coding)] {
			t.Errorf("%s: %+v; want 3 responses, %d in, %d out", coding, got, 3*len(json64k), wire[codingIdx(coding)])
		}
	}
	if st[DecodedStats] != (CodingStats{}) {
		t.Errorf("decoded: %+v; want zero", st[DecodedStats])
	}
}

func TestStreamLevel(t *testing.T) {
	for _, l := range levels {
		c := mustNew(t, Options{StreamLevel: l})
		s := serve(t, c.Wrap(origin{header: jsonHeader(), body: json64k}))[0]
		for _, coding := range codings {
			_, raw := s.do(t, "GET", "/", []string{coding})
			var buf bytes.Buffer
			enc, _ := NewEncoders().Get(coding, l, &buf)
			enc.Write(json64k)
			enc.Close()
			if !bytes.Equal(raw, buf.Bytes()) {
				t.Errorf("%s at %v: the body is not what the encoder at that level produces", coding, l)
			}
		}
	}
}

func TestPreferenceOrder(t *testing.T) {
	h := origin{header: jsonHeader(), body: json64k}
	for _, tc := range []struct {
		codings []string
		ae      string
		want    string
	}{
		{nil, "gzip, deflate, br, zstd", Brotli},
		{nil, "gzip, zstd", Zstd},
		{[]string{Gzip, Zstd, Brotli}, "gzip, deflate, br, zstd", Gzip},
		{[]string{Zstd}, "gzip, br", ""},
		{nil, "br;q=0.5, gzip", Gzip},
	} {
		s := serve(t, mustNew(t, Options{Codings: tc.codings}).Wrap(h))[0]
		resp, raw := s.do(t, "GET", "/", []string{tc.ae})
		if got := resp.Header.Get("Content-Encoding"); got != tc.want {
			t.Errorf("codings %q, Accept-Encoding %q: got %q; want %q", tc.codings, tc.ae, got, tc.want)
		}
		if tc.want == "" && !bytes.Equal(raw, json64k) {
			t.Errorf("identity body differs")
		}
	}
}

// sseOrigin writes one event, flushes, and waits for the test to say it
// has read it before writing the next: a body that arrived only at the
// end would deadlock (and time out) instead of passing.
type sseOrigin struct {
	events []string
	next   chan struct{}
	rc     bool // flush through http.ResponseController
}

func (o sseOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	for i, e := range o.events {
		if i > 0 {
			select {
			case <-o.next:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, e)
		if o.rc {
			if err := http.NewResponseController(w).Flush(); err != nil {
				panic(err)
			}
		} else {
			w.(http.Flusher).Flush()
		}
	}
}

// streamDecoder returns an independent (not this package's) streaming
// decoder for coding.
func streamDecoder(t *testing.T, coding string, r io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case Brotli:
		return brotli.NewReader(r)
	case Zstd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	return r
}

func TestSSE(t *testing.T) {
	events := []string{"data: one\n\n", "event: tick\ndata: two\n\n", "data: " + strings.Repeat("three ", 2000) + "\n\n", "data: four\n\n"}
	for _, rc := range []bool{false, true} {
		next := make(chan struct{})
		c := mustNew(t, Options{})
		for _, s := range serve(t, c.Wrap(sseOrigin{events: events, next: next, rc: rc})) {
			for _, coding := range append([]string{""}, codings...) {
				t.Run(fmt.Sprintf("%s/%s/rc=%v", s.name, coding, rc), func(t *testing.T) {
					req, _ := http.NewRequest("GET", s.url, nil)
					if coding != "" {
						req.Header.Set("Accept-Encoding", coding)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					resp, err := s.client.Do(req.WithContext(ctx))
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					if got := resp.Header.Get("Content-Encoding"); got != coding {
						t.Fatalf("Content-Encoding %q; want %q", got, coding)
					}
					d := streamDecoder(t, coding, resp.Body)
					for i, e := range events {
						if i > 0 {
							next <- struct{}{}
						}
						got := make([]byte, len(e))
						if _, err := io.ReadFull(d, got); err != nil {
							t.Fatalf("event %d: %v", i, err)
						}
						if string(got) != e {
							t.Fatalf("event %d: got %.40q; want %.40q", i, got, e)
						}
					}
					if rest, err := io.ReadAll(d); err != nil || len(rest) > 0 {
						t.Fatalf("after the events: %q, %v", rest, err)
					}
				})
			}
		}
	}
}

// TestNotCompressed covers each reason to leave a response alone.
func TestNotCompressed(t *testing.T) {
	preGzip, _ := NewEncoders().Encode(nil, Gzip, Default, json64k)
	preBr, _ := NewEncoders().Encode(nil, Brotli, Default, json64k)
	big := json64k[:5000]
	for _, tc := range []struct {
		name   string
		h      origin
		method string
		ae     string
		status int
		ce     string // Content-Encoding the client sees
		body   []byte // body the client sees, raw
		vary   bool   // Vary: Accept-Encoding expected
	}{
		{"encoded upstream, client accepts", origin{header: jsonHeader("Content-Encoding", "br"), body: preBr}, "GET", "br, gzip", 200, "br", preBr, true},
		{"encoded upstream, no-transform", origin{header: jsonHeader("Content-Encoding", "gzip", "Cache-Control", "no-transform"), body: preGzip}, "GET", "br", 200, "gzip", preGzip, false},
		{"stacked codings", origin{header: jsonHeader("Content-Encoding", "gzip, br"), body: []byte("opaque")}, "GET", "", 200, "gzip, br", []byte("opaque"), false},
		{"unknown coding", origin{header: jsonHeader("Content-Encoding", "deflate"), body: []byte("opaque")}, "GET", "gzip", 200, "deflate", []byte("opaque"), false},
		{"no-transform", origin{header: jsonHeader("Cache-Control", "public, no-transform"), body: big}, "GET", "gzip", 200, "", big, false},
		{"206", origin{header: jsonHeader("Content-Range", "bytes 0-4999/65536"), status: 206, body: big}, "GET", "gzip", 206, "", big, false},
		{"Content-Range on 200", origin{header: jsonHeader("Content-Range", "bytes 0-4999/65536"), body: big}, "GET", "gzip", 200, "", big, false},
		{"204", origin{header: jsonHeader(), status: 204}, "GET", "gzip", 204, "", nil, false},
		{"205", origin{header: jsonHeader(), status: 205}, "GET", "gzip", 205, "", nil, false},
		{"304", origin{header: jsonHeader("Etag", `"v"`), status: 304}, "GET", "gzip", 304, "", nil, true},
		{"type not listed", origin{header: hdr("Content-Type", "image/png"), body: big}, "GET", "gzip", 200, "", big, false},
		{"no type", origin{header: hdr("Content-Type", ""), body: big}, "GET", "gzip", 200, "", big, false},
		{"below min_size", origin{header: jsonHeader("Content-Length", "1000"), body: big[:1000]}, "GET", "gzip", 200, "", big[:1000], false},
		{"empty", origin{header: jsonHeader("Content-Length", "0")}, "GET", "gzip", 200, "", nil, false},
		{"redirect", origin{header: hdr("Content-Type", "text/html", "Location", "/x"), status: 302, body: big}, "GET", "gzip", 302, "", big, false},
		{"no Accept-Encoding", origin{header: jsonHeader(), body: big}, "GET", "", 200, "", big, true},
		{"identity only", origin{header: jsonHeader(), body: big}, "GET", "identity", 200, "", big, true},
		{"gzip refused", origin{header: jsonHeader(), body: big}, "GET", "gzip;q=0, deflate", 200, "", big, true},
		{"identity refused, nothing offered accepted", origin{header: jsonHeader(), body: big}, "GET", "identity;q=0", 200, "", big, true},
		{"star refused", origin{header: jsonHeader(), body: big}, "GET", "*;q=0", 200, "", big, true},
		{"identity preferred", origin{header: jsonHeader(), body: big}, "GET", "gzip;q=0.5, identity", 200, "", big, true},
		{"skipped", origin{header: jsonHeader(), body: big}, "SKIP", "gzip", 200, "", big, false},
	} {
		c := mustNew(t, Options{})
		h := http.Handler(tc.h)
		method := tc.method
		if method == "SKIP" {
			method = "GET"
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.(Skipper).SkipCompression()
				tc.h.ServeHTTP(w, r)
			})
		}
		for _, s := range serve(t, c.Wrap(h)) {
			t.Run(s.name+"/"+tc.name, func(t *testing.T) {
				var ae []string
				if tc.ae != "" {
					ae = []string{tc.ae}
				}
				resp, raw := s.do(t, method, "/", ae)
				if resp.StatusCode != tc.status {
					t.Errorf("status %d; want %d", resp.StatusCode, tc.status)
				}
				if got := resp.Header.Get("Content-Encoding"); got != tc.ce {
					t.Errorf("Content-Encoding %q; want %q", got, tc.ce)
				}
				if !bytes.Equal(raw, tc.body) {
					t.Errorf("body of %d bytes; want the origin's %d bytes unchanged", len(raw), len(tc.body))
				}
				if got := strings.Join(resp.Header.Values("Vary"), ","); (got == "Accept-Encoding") != tc.vary || (got != "" && got != "Accept-Encoding") {
					t.Errorf("Vary %q; want Accept-Encoding: %v", got, tc.vary)
				}
				for k, st := range c.Stats() {
					if st != (CodingStats{}) {
						t.Errorf("stats[%s] = %+v; want nothing counted", k, st)
					}
				}
			})
		}
	}
}

// TestIdentityRefused: "identity;q=0, gzip" is gzip, not a refusal.
func TestIdentityRefused(t *testing.T) {
	c := mustNew(t, Options{})
	for _, s := range serve(t, c.Wrap(origin{header: jsonHeader(), body: json64k})) {
		resp, raw := s.do(t, "GET", "/", []string{"identity;q=0, gzip"})
		if resp.Header.Get("Content-Encoding") != Gzip {
			t.Fatalf("%s: Content-Encoding %q; want gzip", s.name, resp.Header.Get("Content-Encoding"))
		}
		checkDecodes(t, Gzip, raw, json64k)
	}
}

func TestHEAD(t *testing.T) {
	c := mustNew(t, Options{})
	mux := http.NewServeMux()
	// The body is written, as a handler that ignores the method would.
	mux.Handle("/plain", origin{header: jsonHeader("Etag", `"v"`, "Content-Length", strconv.Itoa(len(json64k)), "Accept-Ranges", "bytes"), body: json64k})
	pre, _ := NewEncoders().Encode(nil, Gzip, Default, json64k)
	mux.Handle("/encoded", origin{header: jsonHeader("Etag", `"v"`, "Content-Encoding", "gzip", "Content-Length", strconv.Itoa(len(pre))), body: pre})
	for _, s := range serve(t, c.Wrap(mux)) {
		for _, path := range []string{"/plain", "/encoded"} {
			for _, ae := range []string{"gzip", "br", ""} {
				t.Run(s.name+path+"/"+ae, func(t *testing.T) {
					get, _ := s.do(t, "GET", path, []string{ae})
					head, body := s.do(t, "HEAD", path, []string{ae})
					if len(body) != 0 {
						t.Errorf("HEAD: %d body bytes", len(body))
					}
					for _, k := range []string{"Content-Encoding", "Vary", "Etag", "Content-Type", "Accept-Ranges"} {
						if g, h := get.Header.Get(k), head.Header.Get(k); g != h {
							t.Errorf("%s: GET %q, HEAD %q; want the same", k, g, h)
						}
					}
					// A transformed HEAD response has no length: the
					// length of GET's body is not known in advance.
					transformed := path == "/plain" && ae != "" || path == "/encoded" && ae != "gzip"
					if transformed && head.Header.Get("Content-Length") != "" {
						t.Errorf("HEAD Content-Length %q; want none", head.Header.Get("Content-Length"))
					}
				})
			}
		}
	}
}

func TestVaryOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, []string{"Accept-Encoding"}},
		{[]string{"Origin"}, []string{"Origin, Accept-Encoding"}},
		{[]string{"Origin", "Accept-Language"}, []string{"Origin", "Accept-Language, Accept-Encoding"}},
		{[]string{"Origin, accept-encoding"}, []string{"Origin, accept-encoding"}},
		{[]string{"Accept-Encoding", "Origin"}, []string{"Accept-Encoding", "Origin"}},
		{[]string{"*"}, []string{"*"}},
	} {
		h := jsonHeader()
		h["Vary"] = tc.in
		c := mustNew(t, Options{})
		for _, s := range serve(t, c.Wrap(origin{header: h, body: json64k})) {
			for _, ae := range []string{"gzip", ""} {
				resp, _ := s.do(t, "GET", "/", []string{ae})
				got := resp.Header.Values("Vary")
				if strings.Join(got, "|") != strings.Join(tc.want, "|") {
					t.Errorf("%s: Vary %q, Accept-Encoding %q: got %q; want %q", s.name, tc.in, ae, got, tc.want)
				}
			}
		}
	}
}

func TestETagOnTheWire(t *testing.T) {
	for _, tc := range []struct{ etag, coding, want string }{
		{`"abc"`, Gzip, `"abc-gzip"`},
		{`"abc"`, Brotli, `"abc-br"`},
		{`"abc"`, Zstd, `"abc-zstd"`},
		{`"abc"`, "", `"abc"`},
		{`W/"abc"`, Gzip, `W/"abc"`},
		{`W/"abc"`, Zstd, `W/"abc"`},
	} {
		c := mustNew(t, Options{})
		for _, s := range serve(t, c.Wrap(origin{header: jsonHeader("Etag", tc.etag), body: json64k})) {
			resp, _ := s.do(t, "GET", "/", []string{tc.coding})
			if got := resp.Header.Get("Etag"); got != tc.want {
				t.Errorf("%s: ETag %s with %q: got %s; want %s", s.name, tc.etag, tc.coding, got, tc.want)
			}
		}
	}
}

// TestRevalidate: a client holding "v-gzip" gets a 304 from an origin
// that only knows "v", with its own validator back, when gzip is what it
// would be sent again; a client that would now get another coding, or
// identity, gets the whole response in that form.
func TestRevalidate(t *testing.T) {
	var seen sync.Map
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inm := r.Header.Values("If-None-Match")
		seen.Store(r.URL.Path+" "+r.Method, inm)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Etag", `"v"`)
		for _, v := range inm {
			for t := range entityTags(v) {
				if t == `"v"` || t == `W/"v"` {
					w.WriteHeader(http.StatusNotModified)
					return
				}
			}
		}
		w.Write(json64k)
	})
	c := mustNew(t, Options{})
	for _, s := range serve(t, c.Wrap(h)) {
		for _, tc := range []struct {
			inm, ae    string
			status     int
			etag       string
			originSees string
		}{
			{`"v-gzip"`, "gzip", 304, `"v-gzip"`, `"v-gzip", "v"`},
			{`"v-br"`, "br, gzip", 304, `"v-br"`, `"v-br", "v"`},
			// The client holds the gzip variant but now gets br, or
			// identity: the gzip bytes are not what it would be sent.
			{`"v-gzip"`, "br", 200, `"v-br"`, `"v-gzip"`},
			{`"v-gzip"`, "", 200, `"v"`, `"v-gzip"`},
			{`"v-gzip"`, "gzip;q=0", 200, `"v"`, `"v-gzip"`},
			{`"v-gzip", "v-br"`, "br", 304, `"v-br"`, `"v-gzip", "v-br", "v"`},
			{`"old-gzip", "v-zstd"`, "zstd", 304, `"v-zstd"`, `"old-gzip", "v-zstd", "v"`},
			{`"v"`, "", 304, `"v"`, `"v"`},
			{`W/"v"`, "gzip", 304, `"v"`, `W/"v"`},
			{`"old-gzip"`, "gzip", 200, `"v-gzip"`, `"old-gzip", "old"`},
			{`"v-deflate"`, "gzip", 200, `"v-gzip"`, `"v-deflate"`},
		} {
			resp, raw := s.do(t, "GET", "/", []string{tc.ae}, "If-None-Match", tc.inm)
			if resp.StatusCode != tc.status || resp.Header.Get("Etag") != tc.etag {
				t.Errorf("%s: If-None-Match %s, Accept-Encoding %q: got %d %s; want %d %s", s.name, tc.inm, tc.ae, resp.StatusCode, resp.Header.Get("Etag"), tc.status, tc.etag)
			}
			if tc.status == 304 && (len(raw) != 0 || resp.Header.Get("Vary") != "Accept-Encoding") {
				t.Errorf("%s: 304 with %d bytes, Vary %q", s.name, len(raw), resp.Header.Get("Vary"))
			}
			got, _ := seen.Load("/ GET")
			if strings.Join(got.([]string), "|") != tc.originSees {
				t.Errorf("%s: origin saw If-None-Match %q; want %q", s.name, got, tc.originSees)
			}
		}
		// Other methods are left alone.
		s.do(t, "DELETE", "/", []string{"gzip"}, "If-None-Match", `"v-gzip"`)
		if got, _ := seen.Load("/ DELETE"); strings.Join(got.([]string), "|") != `"v-gzip"` {
			t.Errorf("DELETE: origin saw %q", got)
		}
	}
}

// TestIfMatch: a client that was sent "v-gzip" and makes its update
// conditional on it (If-Match) reaches an origin that only knows "v"
// with "v" beside it, whatever coding it accepts now, so the update
// succeeds; a stale tag still fails. If-Range is passed on as sent.
func TestIfMatch(t *testing.T) {
	var seen sync.Map
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Method+" If-Match", r.Header.Values("If-Match"))
		seen.Store(r.Method+" If-Range", r.Header.Values("If-Range"))
		w.Header().Set("Etag", `"v"`)
		if im := r.Header.Values("If-Match"); len(im) > 0 {
			match := false
			for _, v := range im {
				if strings.TrimSpace(v) == "*" {
					match = true
				}
				for t := range entityTags(v) {
					match = match || t == `"v"` // strong comparison
				}
			}
			if !match {
				w.WriteHeader(http.StatusPreconditionFailed)
				return
			}
		}
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(json64k)
	})
	c := mustNew(t, Options{})
	for _, s := range serve(t, c.Wrap(h)) {
		for _, tc := range []struct {
			method, im, ae string
			status         int
			originSees     string
		}{
			{"PUT", `"v-gzip"`, "gzip", 204, `"v-gzip", "v"`},
			{"PUT", `"v-gzip"`, "", 204, `"v-gzip", "v"`},
			{"PUT", `"v-br"`, "gzip", 204, `"v-br", "v"`},
			{"PUT", `"old-gzip", "v-zstd"`, "", 204, `"old-gzip", "v-zstd", "old", "v"`},
			{"PUT", `"old-gzip"`, "gzip", 412, `"old-gzip", "old"`},
			{"PUT", `W/"v-gzip"`, "gzip", 412, `W/"v-gzip"`},
			{"PUT", `"v-deflate"`, "gzip", 412, `"v-deflate"`},
			{"PUT", `"v"`, "gzip", 204, `"v"`},
			{"PUT", `*`, "gzip", 204, `*`},
			{"DELETE", `"v-gzip"`, "gzip", 200, `"v-gzip", "v"`},
			// A GET's If-Match guards a range of a stored form: passed
			// as sent, the origin's 412 keeps identity bytes from being
			// spliced onto encoded ones.
			{"GET", `"v-gzip"`, "gzip", 412, `"v-gzip"`},
		} {
			resp, _ := s.do(t, tc.method, "/", []string{tc.ae}, "If-Match", tc.im)
			if resp.StatusCode != tc.status {
				t.Errorf("%s: %s If-Match %s, Accept-Encoding %q: got %d; want %d", s.name, tc.method, tc.im, tc.ae, resp.StatusCode, tc.status)
			}
			got, _ := seen.Load(tc.method + " If-Match")
			if strings.Join(got.([]string), "|") != tc.originSees {
				t.Errorf("%s: %s: origin saw If-Match %q; want %q", s.name, tc.method, got, tc.originSees)
			}
		}
		// If-Range is not mapped: a range of the origin's identity bytes
		// must not be taken for one of the gzip variant the client holds.
		s.do(t, "GET", "/", []string{"gzip"}, "Range", "bytes=0-9", "If-Range", `"v-gzip"`)
		if got, _ := seen.Load("GET If-Range"); strings.Join(got.([]string), "|") != `"v-gzip"` {
			t.Errorf("%s: origin saw If-Range %q; want it as sent", s.name, got)
		}
	}
}

// encodedOrigin serves body pre-encoded with coding, in chunks, as an
// upstream that compresses by itself would.
func encodedOrigin(coding string, body []byte, extra ...string) (http.Handler, []byte) {
	enc, err := NewEncoders().Encode(nil, coding, Default, body)
	if err != nil {
		panic(err)
	}
	return origin{header: jsonHeader(append([]string{"Content-Encoding", coding, "Content-Length", strconv.Itoa(len(enc)), "Etag", `"up"`, "Accept-Ranges", "bytes"}, extra...)...), body: enc, chunk: 4000, flush: true}, enc
}

func TestUpstreamEncoded(t *testing.T) {
	for _, coding := range codings {
		c := mustNew(t, Options{})
		h, enc := encodedOrigin(coding, json64k)
		mux := http.NewServeMux()
		mux.Handle("/", h)
		mux.Handle("/empty", origin{header: jsonHeader("Content-Encoding", coding)})
		mux.Handle("/text", origin{header: hdr("Content-Type", "image/png", "Content-Encoding", coding), body: enc, chunk: 999})
		for _, s := range serve(t, c.Wrap(mux)) {
			t.Run(s.name+"/"+coding, func(t *testing.T) {
				// A client that accepts the coding gets the bytes as sent.
				resp, raw := s.do(t, "GET", "/", []string{coding + ", identity"})
				if resp.Header.Get("Content-Encoding") != coding || !bytes.Equal(raw, enc) ||
					resp.Header.Get("Etag") != `"up"` || resp.ContentLength != int64(len(enc)) || resp.Header.Get("Accept-Ranges") != "bytes" {
					t.Errorf("accepting client: got %q, %d bytes, ETag %s, length %d; want it unchanged",
						resp.Header.Get("Content-Encoding"), len(raw), resp.Header.Get("Etag"), resp.ContentLength)
				}
				if resp.Header.Get("Vary") != "Accept-Encoding" {
					t.Errorf("accepting client: Vary %q", resp.Header.Get("Vary"))
				}
				// Others get it decoded.
				for _, ae := range []string{"", "identity", "deflate", coding + ";q=0", otherCoding(coding)} {
					before := c.Stats()[DecodedStats]
					resp, raw := s.do(t, "GET", "/", []string{ae})
					if ce := resp.Header.Get("Content-Encoding"); ce != "" {
						t.Errorf("Accept-Encoding %q: Content-Encoding %q; want the body decoded", ae, ce)
					}
					if !bytes.Equal(raw, json64k) {
						t.Errorf("Accept-Encoding %q: decoded %d bytes; want the original %d", ae, len(raw), len(json64k))
					}
					if resp.Header.Get("Etag") != `W/"up"` || resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Accept-Ranges") != "" {
						t.Errorf("Accept-Encoding %q: ETag %s, Vary %q, Accept-Ranges %q", ae, resp.Header.Get("Etag"), resp.Header.Get("Vary"), resp.Header.Get("Accept-Ranges"))
					}
					if resp.ContentLength != -1 && resp.ContentLength != int64(len(json64k)) {
						t.Errorf("Accept-Encoding %q: Content-Length %d", ae, resp.ContentLength)
					}
					after := c.Stats()[DecodedStats]
					if after.Responses != before.Responses+1 || after.BytesIn-before.BytesIn != uint64(len(enc)) || after.BytesOut-before.BytesOut != uint64(len(json64k)) {
						t.Errorf("decoded stats went from %+v to %+v", before, after)
					}
					// Whatever the type: decoding is about the client
					// being able to read it at all.
					_, raw = s.do(t, "GET", "/text", []string{ae})
					if !bytes.Equal(raw, json64k) {
						t.Errorf("image/png, Accept-Encoding %q: not decoded", ae)
					}
				}
				// An empty body declared encoded stays empty.
				resp, raw = s.do(t, "GET", "/empty", nil)
				if resp.StatusCode != 200 || len(raw) != 0 || resp.Header.Get("Content-Encoding") != "" {
					t.Errorf("empty: got %d, %d bytes, %q", resp.StatusCode, len(raw), resp.Header.Get("Content-Encoding"))
				}
			})
		}
	}
	waitNoDecoders(t)
}

func otherCoding(c string) string {
	if c == Gzip {
		return Brotli
	}
	return Gzip
}

// TestCacheHitSkip is how the cache serves an object it stored encoded:
// it marks the response with the route's Compressor (PassThrough), sets
// the headers itself and writes the bytes.
func TestCacheHitSkip(t *testing.T) {
	c := mustNew(t, Options{})
	enc, _ := c.Encode(nil, Gzip, json64k)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.PassThrough(w.Header())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Etag", ETag(`"v"`, Gzip))
		w.Write(enc)
	})
	// A wrapper between the middleware and the cache, as a logging or
	// metrics stage would be, hides the Skipper, not the mark.
	between := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(unwrapper{w}, r)
		})
	}
	for _, s := range serve(t, c.Wrap(between(inner))) {
		for _, ae := range []string{"gzip", ""} {
			resp, raw := s.do(t, "GET", "/", []string{ae})
			if !bytes.Equal(raw, enc) || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Etag") != `"v-gzip"` || resp.Header.Get("Vary") != "" {
				t.Errorf("%s %q: got %d bytes, %q, %s, Vary %q; want the writes passed as they are",
					s.name, ae, len(raw), resp.Header.Get("Content-Encoding"), resp.Header.Get("Etag"), resp.Header.Get("Vary"))
			}
		}
	}
	// The mark is never sent, also with no Wrap in front.
	for _, s := range serve(t, between(inner)) {
		resp, _ := s.do(t, "GET", "/", []string{"gzip"})
		for k := range resp.Header {
			if strings.Contains(k, "pass-through") {
				t.Errorf("%s: the mark was sent: %q", s.name, k)
			}
		}
	}
}

type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func TestSkipAfterHeaderIgnored(t *testing.T) {
	c := mustNew(t, Options{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
		w.(Skipper).SkipCompression()
		w.Write(json64k)
	})
	s := serve(t, c.Wrap(h))[0]
	resp, raw := s.do(t, "GET", "/", []string{"gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q; want gzip: the decision was made at WriteHeader", resp.Header.Get("Content-Encoding"))
	}
	checkDecodes(t, Gzip, raw, json64k)
}

func TestSniffedType(t *testing.T) {
	html := []byte("<!DOCTYPE html><html><body>" + strings.Repeat("<p>hello</p>", 500) + "</body></html>")
	c := mustNew(t, Options{})
	s := serve(t, c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(html) })))[0]
	resp, raw := s.do(t, "GET", "/", []string{"gzip"})
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("got %q, %q; want sniffed text/html, gzip", resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"))
	}
	checkDecodes(t, Gzip, raw, html)
}

// TestNoBodyWritten: the handler sets an eligible type and returns.
func TestNoBodyWritten(t *testing.T) {
	c := mustNew(t, Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("/header", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
	})
	mux.HandleFunc("/nothing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
	})
	mux.HandleFunc("/flush", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.(http.Flusher).Flush()
	})
	for _, s := range serve(t, c.Wrap(mux)) {
		for _, coding := range codings {
			resp, raw := s.do(t, "GET", "/header", []string{coding})
			if resp.Header.Get("Content-Encoding") != coding {
				t.Fatalf("%s: Content-Encoding %q", s.name, resp.Header.Get("Content-Encoding"))
			}
			checkDecodes(t, coding, raw, nil)
			resp, raw = s.do(t, "GET", "/flush", []string{coding})
			if resp.Header.Get("Content-Encoding") != coding {
				t.Fatalf("%s: Content-Encoding %q", s.name, resp.Header.Get("Content-Encoding"))
			}
			checkDecodes(t, coding, raw, nil)
			// No WriteHeader at all: net/http's implicit empty 200, left
			// alone.
			resp, raw = s.do(t, "GET", "/nothing", []string{coding})
			if resp.StatusCode != 200 || len(raw) != 0 || resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("%s: nothing written: %d, %d bytes, %q", s.name, resp.StatusCode, len(raw), resp.Header.Get("Content-Encoding"))
			}
		}
	}
}

func TestEarlyHints(t *testing.T) {
	c := mustNew(t, Options{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "text/css")
		w.Write(json64k)
	})
	for _, s := range serve(t, c.Wrap(h)) {
		var hints []int
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
			hints = append(hints, code)
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", s.url, nil)
		req.Header.Set("Accept-Encoding", "zstd")
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(hints) != 1 || hints[0] != 103 {
			t.Errorf("%s: 1xx responses %v; want [103]", s.name, hints)
		}
		if resp.Header.Get("Content-Encoding") != Zstd {
			t.Fatalf("%s: Content-Encoding %q", s.name, resp.Header.Get("Content-Encoding"))
		}
		checkDecodes(t, Zstd, raw, json64k)
	}
}

func TestResponseController(t *testing.T) {
	c := mustNew(t, Options{})
	errs := make(chan error, 10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
		errs <- rc.SetReadDeadline(time.Now().Add(time.Minute))
		w.Header().Set("Content-Type", "text/plain")
		w.Write(json64k[:5000])
		errs <- rc.Flush()
		w.Write(json64k[5000:])
	})
	for _, s := range serve(t, c.Wrap(h)) {
		_, raw := s.do(t, "GET", "/", []string{"br"})
		checkDecodes(t, Brotli, raw, json64k)
		for range 3 {
			if err := <-errs; err != nil {
				t.Errorf("%s: %v", s.name, err)
			}
		}
	}
}

// echoUpgraded answers on a hijacked connection with a 101 carrying the
// extra header lines hdr, then echoes one line back, and closes it.
func echoUpgraded(t *testing.T, conn net.Conn, brw *bufio.ReadWriter, err error, hdr string) {
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n" + hdr + "\r\n")
	brw.Flush()
	line, _ := brw.ReadString('\n')
	brw.WriteString("echo: " + line)
	brw.Flush()
}

// TestUpgrade runs a WebSocket-style upgrade through ReverseProxy, which
// hijacks the client connection after the upstream's 101.
func TestUpgrade(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want an upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		echoUpgraded(t, conn, brw, err, "Content-Type: text/plain\r\n")
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	c := mustNew(t, Options{})
	front := httptest.NewServer(c.Wrap(httputil.NewSingleHostReverseProxy(u)))
	defer front.Close()

	// The handler may also use the old interface directly.
	direct := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		echoUpgraded(t, conn, brw, err, "")
	})))
	defer direct.Close()

	for _, srv := range []*httptest.Server{front, direct} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\nAccept-Encoding: gzip\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Vary") != "" {
			t.Fatalf("got %d, Content-Encoding %q, Vary %q; want 101 untouched", resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
		}
		fmt.Fprintf(conn, "hello\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "echo: hello\n" {
			t.Fatalf("got %q, %v; want the raw echo", line, err)
		}
	}
	// HTTP/2 has no Hijack; the error comes through.
	h2 := httptest.NewUnstartedServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := w.(http.Hijacker).Hijack(); err == nil {
			t.Error("Hijack on HTTP/2 succeeded")
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(json64k)
	})))
	h2.EnableHTTP2 = true
	h2.StartTLS()
	defer h2.Close()
	cl := h2.Client()
	cl.Transport.(*http.Transport).DisableCompression = true
	s := server{"h2", h2.URL, cl, 2}
	_, raw := s.do(t, "GET", "/", []string{"gzip"})
	checkDecodes(t, Gzip, raw, json64k)
}

// waitNoDecoders checks that no decoding goroutine is left, by the
// counter and by the goroutine stacks.
func waitNoDecoders(t *testing.T) {
	t.Helper()
	// The handler returns before the connection's own goroutine is
	// done with the response, so give the server a moment to finish;
	// the middleware's own goroutine must be gone when the handler
	// returns, which the tests below check without waiting.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := decodeGoroutines.Load()
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		leaked := strings.Contains(stacks, "compress.(*decodeState).run")
		if n == 0 && !leaked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d decoding goroutines left:\n%s", n, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// handlerDone wraps h so that the test can wait for it to return (the
// client may see the end of the response first).
func handlerDone(h http.Handler) (http.Handler, <-chan struct{}) {
	done := make(chan struct{}, 100)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		h.ServeHTTP(w, r)
	}), done
}

func TestDecodeNoLeak(t *testing.T) {
	enc, _ := NewEncoders().Encode(nil, Gzip, Default, random1M)
	c := mustNew(t, Options{})
	started := make(chan struct{}, 10)
	mux := http.NewServeMux()
	// Panics halfway through the body.
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(enc[:len(enc)/2])
		panic(http.ErrAbortHandler)
	})
	// Returns halfway through: the body is truncated.
	mux.HandleFunc("/truncated", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(enc[:len(enc)/2])
	})
	// Corrupt data after a valid start.
	mux.HandleFunc("/corrupt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		bad := bytes.Clone(enc)
		for i := 1000; i < len(bad); i += 7 {
			bad[i] ^= 0x55
		}
		for p := bad; len(p) > 0; p = p[min(len(p), 10000):] {
			if _, err := w.Write(p[:min(len(p), 10000)]); err != nil {
				return
			}
		}
	})
	// Streams until the client leaves.
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write(random1M[:1000])
		zw.Flush()
		started <- struct{}{}
		for r.Context().Err() == nil {
			if _, err := zw.Write(random1M); err != nil {
				return
			}
		}
	})
	// Trailing garbage after a complete stream.
	mux.HandleFunc("/trailing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "br")
		b, _ := NewEncoders().Encode(nil, Brotli, Fastest, json64k)
		w.Write(b)
		w.Write([]byte("trailing garbage"))
	})
	h, done := handlerDone(c.Wrap(mux))
	for _, s := range serve(t, h) {
		for _, path := range []string{"/panic", "/truncated", "/corrupt", "/trailing"} {
			t.Run(s.name+path, func(t *testing.T) {
				resp, err := s.client.Get(s.url + path)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err == nil {
					t.Errorf("the client read a complete response; want an error")
				}
				<-done
				if n := decodeGoroutines.Load(); n != 0 {
					t.Errorf("%d decoding goroutines after the handler returned", n)
				}
			})
		}
		t.Run(s.name+"/client leaves", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/endless", nil)
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			<-started
			buf := make([]byte, 1000)
			if _, err := io.ReadFull(resp.Body, buf); err != nil || !bytes.Equal(buf, random1M[:1000]) {
				t.Fatalf("first bytes: %v", err)
			}
			cancel()
			resp.Body.Close()
			<-done
			if n := decodeGoroutines.Load(); n != 0 {
				t.Errorf("%d decoding goroutines after the handler returned", n)
			}
		})
	}
	waitNoDecoders(t)
}

// TestEncodePanic: a response cut short is not finished as if whole.
func TestEncodePanic(t *testing.T) {
	c := mustNew(t, Options{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(json64k[:20000])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	for _, s := range serve(t, c.Wrap(h)) {
		for _, coding := range codings {
			req, _ := http.NewRequest("GET", s.url, nil)
			req.Header.Set("Accept-Encoding", coding)
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("%s %s: read %d bytes without error; want the response aborted", s.name, coding, len(raw))
			}
			// What arrived is a prefix without an end.
			if _, err := io.ReadAll(streamDecoder(t, coding, bytes.NewReader(raw))); err == nil {
				t.Errorf("%s %s: the truncated body decodes as complete", s.name, coding)
			}
		}
	}
}

// TestWriteAfterClientGone: the handler sees write errors, not a hang.
func TestWriteAfterClientGone(t *testing.T) {
	c := mustNew(t, Options{})
	started := make(chan struct{}, 1)
	result := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(random1M[:100])
		w.(http.Flusher).Flush()
		started <- struct{}{}
		<-r.Context().Done()
		var err error
		for range 1000 {
			if _, err = w.Write(random1M); err != nil {
				break
			}
		}
		result <- err
	})
	s := serve(t, c.Wrap(h))[0]
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	resp.Body.Close()
	if err := <-result; err == nil {
		t.Error("writes kept succeeding after the client left")
	}
}

func TestRequestNoTransform(t *testing.T) {
	c := mustNew(t, Options{})
	mux := http.NewServeMux()
	mux.Handle("/", origin{header: jsonHeader(), body: json64k})
	h, enc := encodedOrigin(Gzip, json64k)
	mux.Handle("/encoded", h)
	for _, s := range serve(t, c.Wrap(mux)) {
		resp, raw := s.do(t, "GET", "/", []string{"gzip"}, "Cache-Control", "no-cache, no-transform")
		if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(raw, json64k) {
			t.Errorf("%s: got %q; want the body untouched", s.name, resp.Header.Get("Content-Encoding"))
		}
		resp, raw = s.do(t, "GET", "/encoded", nil, "Cache-Control", "no-transform")
		if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(raw, enc) {
			t.Errorf("%s: got %q; want the encoded body untouched", s.name, resp.Header.Get("Content-Encoding"))
		}
	}
}
