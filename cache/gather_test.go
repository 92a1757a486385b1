package cache_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// gatherRecorder is a writer that offers GatherWrites, as the gateway's
// HTTP/1 listener does, and records what the handler does with it.
type gatherRecorder struct {
	http.ResponseWriter
	mu     *sync.Mutex
	events *[]string
}

func (g gatherRecorder) note(e string) {
	g.mu.Lock()
	*g.events = append(*g.events, e)
	g.mu.Unlock()
}

func (g gatherRecorder) GatherWrites(on bool) {
	if on {
		g.note("gather")
	} else {
		g.note("send")
	}
}

func (g gatherRecorder) WriteHeader(code int) { g.note("header"); g.ResponseWriter.WriteHeader(code) }

func (g gatherRecorder) Write(p []byte) (int, error) {
	g.note("write")
	return g.ResponseWriter.Write(p)
}

func (g gatherRecorder) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// unwrapper is a writer in front of another, reachable by Unwrap only.
type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestHitGathersWrites: a GET hit whose body is larger than the
// server's first buffer brackets its header and body with GatherWrites,
// found through the writers in front of it (Unwrap), identity and gzip
// alike; a smaller body, a HEAD and a miss do not gather.
func TestHitGathersWrites(t *testing.T) {
	var mu sync.Mutex
	var events []string
	// The recorder sits in front of another writer, so the cache must
	// unwrap to find it.
	between := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := gatherRecorder{ResponseWriter: w, mu: &mu, events: &events}
			next.ServeHTTP(unwrapper{rec}, r)
		})
	}
	g := newGateway(t, gwConfig{compress: newCompressor(t), between: between})
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "application/json")
		// Digits of a sequence, which gzip leaves larger than 2 KiB.
		var b []byte
		for i := 0; len(b) < n; i++ {
			b = strconv.AppendInt(b, int64(i)*7919%100003, 10)
		}
		_, _ = w.Write(b[:n])
	})
	take := func() string {
		mu.Lock()
		defer mu.Unlock()
		s := strings.Join(events, " ")
		events = nil
		return s
	}
	requests := 0
	do := func(method, path string, hdr ...string) result {
		requests++
		r := g.do(t, method, path, hdr...)
		// The client may have the whole body before the handler is
		// done with its writer.
		g.waitExited(t, requests)
		return r
	}
	for _, c := range []struct {
		n      int
		method string
		ae     string
		want   string
	}{
		{65536, "GET", "", "gather header write send"},
		{65536, "GET", "gzip", "gather header write send"},
		{65536, "HEAD", "", "header"},
		{2048, "GET", "", "header write"},
		{2049, "GET", "", "gather header write send"},
	} {
		path := "/" + strconv.Itoa(c.n)
		do("GET", path) // the miss stores it (or finds it stored)
		take()
		var hdr []string
		if c.ae != "" {
			hdr = []string{"Accept-Encoding", c.ae}
		}
		r := do(c.method, path, hdr...)
		if st := r.header.Get("Cache-Status"); !strings.Contains(st, "hit") {
			t.Fatalf("%s %s (%q): Cache-Status %q; want a hit", c.method, path, c.ae, st)
		}
		if got := take(); got != c.want {
			t.Errorf("%s %s (%q): %q; want %q", c.method, path, c.ae, got, c.want)
		}
	}
	// A miss streams what the origin sends and does not gather.
	do("GET", "/70000")
	if got := take(); strings.Contains(got, "gather") {
		t.Errorf("a miss: %q; want no gathering", got)
	}
}
