package observe

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gateway/internal/routes"
)

// TestTextLine: the text format's exact line for known requests at a
// fixed time: every field in its place, the optional ones only when
// they say something, nothing empty.
func TestTextLine(t *testing.T) {
	at := time.Date(2026, 11, 27, 15, 4, 5, 123456789, time.UTC)
	for _, tc := range []struct {
		l    accessLine
		want string
	}{
		{accessLine{id: "x", client: "127.0.0.1", method: "GET", host: "example.com", path: "/api/x", proto: "HTTP/1.1",
			route: "api", status: 200, bytes: 512, duration: 1234 * time.Microsecond, cache: "hit"},
			"15:04:05.123 200 GET example.com /api/x 1.2ms cache=hit 512B\n"},
		{accessLine{method: "GET", host: "example.com", path: "/api/x", status: 200, bytes: 1536, duration: 71 * time.Microsecond,
			cache: "miss", encoding: "gzip", upstream: "app", target: "http://127.0.0.1:3000", upstreamDur: time.Millisecond, hasUpstream: true},
			"15:04:05.123 200 GET example.com /api/x 71µs cache=miss 1.5KiB upstream=app/127.0.0.1:3000\n"},
		// No route, no upstream, no cache, no Host: nothing empty.
		{accessLine{method: "DELETE", path: "/nowhere", route: "(none)", status: 404, bytes: 19, duration: 250 * time.Millisecond, cache: "none"},
			"15:04:05.123 404 DELETE - /nowhere 250.0ms 19B\n"},
		// What would split the line or a field is escaped.
		{accessLine{method: "GET", host: "h", path: "/a b\n\xff", status: 499, duration: 12345678 * time.Microsecond, cache: "pass",
			upstream: "app", target: "https://10.0.0.1:8443", hasUpstream: true, aborted: true},
			"15:04:05.123 499 GET h /a%20b%0A%FF 12.34s cache=pass 0B upstream=app/10.0.0.1:8443 aborted\n"},
		{accessLine{method: "GET", host: "h", path: "/", status: 200, bytes: 3 << 20, duration: -time.Millisecond, cache: "stale"},
			"15:04:05.123 200 GET h / 0µs cache=stale 3.0MiB\n"},
		{accessLine{method: "GET", host: "h", path: "/", status: 200, bytes: 5<<30 + 1<<29, duration: time.Hour},
			"15:04:05.123 200 GET h / 3600.00s 5.5GiB\n"},
		// A protocol other than HTTP/1.1 is said.
		{accessLine{method: "GET", host: "h", path: "/", proto: "HTTP/3.0", status: 200, bytes: 10, duration: time.Millisecond, cache: "hit"},
			"15:04:05.123 200 GET h / 1.0ms cache=hit 10B proto=HTTP/3.0\n"},
		{accessLine{method: "GET", host: "h", path: "/", proto: "HTTP/2.0", status: 200, bytes: 10, duration: time.Millisecond, job: "j1"},
			"15:04:05.123 200 GET h / 1.0ms 10B proto=HTTP/2.0 job=j1\n"},
	} {
		var buf bytes.Buffer
		if err := newTextHandler(&buf).writeAccess(at, &tc.l); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.want {
			t.Errorf("got  %q\nwant %q", buf.String(), tc.want)
		}
	}
}

// TestTextLineAllocs: a request logged as text costs no more
// allocations than one logged as JSON (the line itself costs none).
func TestTextLineAllocs(t *testing.T) {
	rt := routes.New([]string{"api"}, false)
	allocs := func(format string) float64 {
		h := Wrap(stub, Options{Routes: rt, Log: NewHandler(format, NewOutput(io.Discard, nil))})
		req := httptest.NewRequest("GET", "http://example.com/api/items?id=7", nil)
		w := &discardWriter{h: http.Header{}}
		return testing.AllocsPerRun(200, func() {
			clear(w.h)
			h.ServeHTTP(w, req)
		})
	}
	if text, js := allocs("text"), allocs("json"); text > js {
		t.Errorf("text: %v allocations per request; json: %v", text, js)
	}
}
