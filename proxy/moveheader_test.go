package proxy

import (
	"bufio"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// copyHeaderRef is ReverseProxy's copy of the response header.
func copyHeaderRef(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

func cloneHeader(h http.Header) http.Header {
	c := make(http.Header, len(h))
	for k, vv := range h {
		if vv == nil {
			c[k] = nil
			continue
		}
		c[k] = slices.Clone(vv)
	}
	return c
}

// TestMoveHeader: moving the fields it can, then ReverseProxy's copy of
// the rest, gives the client's header that the copy alone gives, and a
// Content-Type that may be text/event-stream stays for ReverseProxy to
// read.
func TestMoveHeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dst, src http.Header
		stays    []string // fields moveHeader must leave in src
	}{
		{
			name: "plain",
			dst:  http.Header{"Content-Type": nil},
			src: http.Header{
				"Content-Type": {"application/json"}, "Content-Length": {"1024"},
				"Cache-Control": {"no-store"}, "Date": {"Mon, 07 Dec 2026 22:00:00 GMT"},
				"Set-Cookie": {"a=1", "b=2"}, "Via": {"1.1 gateway"},
			},
		},
		{
			name:  "values already there",
			dst:   http.Header{"Vary": {"Accept"}, "Date": nil},
			src:   http.Header{"Vary": {"Accept-Encoding"}, "Date": {"x"}},
			stays: []string{"Vary"},
		},
		{
			name:  "no values",
			dst:   http.Header{},
			src:   http.Header{"X-Empty": {}, "X-Nil": nil},
			stays: []string{"X-Empty", "X-Nil"},
		},
		{
			name:  "not canonical",
			dst:   http.Header{"X-Foo": {"1"}},
			src:   http.Header{"x-foo": {"2"}, "x-bar": {"3"}},
			stays: []string{"x-foo", "x-bar"},
		},
		{
			name:  "event stream",
			dst:   http.Header{"Content-Type": nil},
			src:   http.Header{"Content-Type": {"Text/Event-Stream; charset=utf-8"}},
			stays: []string{"Content-Type"},
		},
		{
			name:  "event stream second",
			dst:   http.Header{"Content-Type": nil},
			src:   http.Header{"Content-Type": {"text/plain", "text/event-stream"}},
			stays: []string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := cloneHeader(tc.dst)
			copyHeaderRef(want, cloneHeader(tc.src))
			got, src := cloneHeader(tc.dst), cloneHeader(tc.src)
			moveHeader(got, src)
			if tc.stays != nil {
				if left := slices.Sorted(maps.Keys(src)); !slices.Equal(left, slices.Sorted(slices.Values(tc.stays))) {
					t.Errorf("left in src %q; want %q", left, tc.stays)
				}
			}
			copyHeaderRef(got, src)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v; want %v", got, want)
			}
		})
	}
}

func TestMayBeEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream":                 true,
		" TEXT/EVENT-STREAM ; charset=utf8": true,
		"application/x-event-stream":        true,
		"text/event-strea":                  false,
		"application/json":                  false,
		"":                                  false,
	} {
		if got := mayBeEventStream(ct); got != want {
			t.Errorf("mayBeEventStream(%q) = %v; want %v", ct, got, want)
		}
	}
}

// TestObservedResponseHeader: a route without middleware answers an
// observed request (whose header fields the proxy hands over itself)
// with the header an unobserved one gets, and with the middleware's
// writer in between the fields reach that writer.
func TestObservedResponseHeader(t *testing.T) {
	checkLeaks(t)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Set-Cookie"] = []string{"a=1", "b=2"}
		h["Cache-Control"] = []string{"no-store"}
		w.Write([]byte("{}"))
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	var mwHeader http.Header
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			mwHeader = rec.Header()
			w.WriteHeader(rec.Code)
		})
	}
	h := newHandler(t, Options{Routes: []RouteOptions{
		{Path: "/", Upstream: u, Timeout: time.Minute},
		{Path: "/mw", Upstream: u, Middleware: []Middleware{mw}},
	}})
	serve := func(o *Observation, path string) http.Header {
		rec := httptest.NewRecorder()
		var w http.ResponseWriter = rec
		if o != nil {
			w = obsWriter{rec, o}
		}
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: got %d %q", path, rec.Code, rec.Body)
		}
		hdr := rec.Header()
		delete(hdr, "Date")
		return hdr
	}
	plain := serve(nil, "/x")
	if got := serve(&Observation{}, "/x"); !reflect.DeepEqual(got, plain) {
		t.Errorf("observed: got %v; want %v", got, plain)
	}
	if got := plain["Set-Cookie"]; !slices.Equal(got, []string{"a=1", "b=2"}) {
		t.Errorf("Set-Cookie %q", got)
	}
	serve(&Observation{}, "/mw")
	if got := mwHeader.Get("Content-Type"); got != "application/json" {
		t.Errorf("behind middleware: Content-Type %q reached the middleware's writer; want application/json", got)
	}
}

// TestObservedEventStream: server-sent events of known length through
// an observed request still reach the client as each is written, not
// when the response ends: ReverseProxy reads their Content-Type to
// flush every write, so it is left for it.
func TestObservedEventStream(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Length", "20")
		w.Write([]byte("data: one\n\n"))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte("data: 2\n\n"))
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Path: "/", Upstream: u}}})
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(flushObsWriter{obsWriter{w, &Observation{}}}, r)
	}))
	defer gw.Close()
	defer close(release)
	resp, err := http.Get(gw.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		first <- line
	}()
	// The second event waits for release: the first arrives on its own
	// only if the gateway flushed it.
	select {
	case line := <-first:
		if !strings.HasPrefix(line, "data: one") {
			t.Fatalf("first event: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first event was not flushed to the client")
	}
}

// flushObsWriter is an obsWriter that lets http.ResponseController
// reach the server's writer, as the access log's writer does.
type flushObsWriter struct{ obsWriter }

func (w flushObsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
