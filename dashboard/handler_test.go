package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gateway/internal/leakcheck"
	"gateway/internal/routes"
)

// sseEvent is one Server-Sent Event as read off the wire.
type sseEvent struct {
	name, data string
	comment    bool
}

// readEvent reads the next event or comment block.
func readEvent(t *testing.T, br *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" || ev.comment {
				return ev
			}
		case strings.HasPrefix(line, ":"):
			ev.comment = true
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		case strings.HasPrefix(line, "retry: "):
		default:
			t.Fatalf("unexpected stream line %q", line)
		}
	}
}

// openStream GETs the event stream as the page does, with fetch(): a
// plain request, read as it comes.
func openStream(t *testing.T, ctx context.Context, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+eventsPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("events: got %d %q; want 200 text/event-stream", resp.StatusCode, ct)
	}
	return resp, bufio.NewReader(resp.Body)
}

// waitFor polls cond until it holds, for what the server does after a
// client's disconnect, which no event of the test's marks.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEventStream: the first event is the full snapshot, then a tick
// per sample (no history, no config); the stream ends when the client
// goes, and nothing is left running.
func TestEventStream(t *testing.T) {
	leakcheck.Check(t, "dashboard.(*Dashboard).")
	r := newRig(t)
	srv := httptest.NewServer(r.d)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	resp, br := openStream(t, ctx, srv.URL)
	defer resp.Body.Close()
	first := readEvent(t, br)
	var full Snapshot
	if err := json.Unmarshal([]byte(first.data), &full); first.name != "snapshot" || err != nil || !full.Full || full.History == nil || full.Config == nil {
		t.Fatalf("first event: %q %v full=%v; want a full snapshot", first.name, err, full.Full)
	}
	if got := r.d.Watchers(); got != 1 {
		t.Errorf("watchers: got %d; want 1", got)
	}

	r.serve(routes.Of(0), 7, 200, time.Millisecond)
	r.clock.Add(time.Second)
	r.ticker.c <- r.clock.Now()
	ev := readEvent(t, br)
	var tick map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ev.data), &tick); ev.name != "tick" || err != nil {
		t.Fatalf("second event: %q %v; want a tick", ev.name, err)
	}
	if _, ok := tick["history"]; ok {
		t.Error("a tick carries the history")
	}
	if _, ok := tick["config"]; ok {
		t.Error("a tick carries the config")
	}
	var now Point
	_ = json.Unmarshal(tick["now"], &now)
	if now.RPS != 7 || now.Totals.Requests != 7 {
		t.Errorf("tick: rps %v, total %d; want 7, 7", now.RPS, now.Totals.Requests)
	}

	cancel()
	waitFor(t, "the stream's watch to end", func() bool { return r.d.Watchers() == 0 })
	r.clock.Add(time.Minute)
	r.ticker.c <- r.clock.Now()
	<-r.ticker.stoppedOnce
}

// TestCloseEndsStreams: Close (the admin listener's shutdown) ends
// every open stream, and later requests are refused.
func TestCloseEndsStreams(t *testing.T) {
	leakcheck.Check(t, "dashboard.(*Dashboard).")
	r := newRig(t)
	srv := httptest.NewServer(r.d)
	defer srv.Close()
	resp, br := openStream(t, context.Background(), srv.URL)
	defer resp.Body.Close()
	readEvent(t, br)
	r.d.Close()
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("after Close: %v; want the stream to end", err)
	}
	res, err := http.Get(srv.URL + dataPath)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET after Close: %d; want 503", res.StatusCode)
	}
}

// TestManyWatchersOneGather: a hundred streams cost one gather a tick,
// and all get the same bytes.
func TestManyWatchersOneGather(t *testing.T) {
	r := newRig(t)
	srv := httptest.NewServer(r.d)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readers []*bufio.Reader
	for range 100 {
		resp, br := openStream(t, ctx, srv.URL)
		defer resp.Body.Close()
		readEvent(t, br)
		readers = append(readers, br)
	}
	before := r.gather.n.Load()
	r.clock.Add(time.Second)
	r.ticker.c <- r.clock.Now()
	var data string
	for i, br := range readers {
		ev := readEvent(t, br)
		if i == 0 {
			data = ev.data
		} else if ev.data != data {
			t.Fatalf("stream %d got another tick than stream 0", i)
		}
	}
	if n := r.gather.n.Load() - before; n != 1 {
		t.Errorf("gathers for one tick of 100 streams: got %d; want 1", n)
	}
	if before != 1 {
		t.Errorf("gathers to open 100 streams: got %d; want 1 (the first takes a sample, the rest share it)", before)
	}
}

func TestSnapshotEndpoint(t *testing.T) {
	r := newRig(t)
	srv := httptest.NewServer(r.d)
	defer srv.Close()
	resp, err := http.Get(srv.URL + dataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("headers: Content-Type %q, Cache-Control %q; want application/json, no-store", ct, cc)
	}
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["full"] != true {
		t.Errorf("full: got %v; want true", got["full"])
	}
	// docs/admin-api.md shows the snapshot's fields.
	doc, err := os.ReadFile("../docs/admin-api.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### GET /api/v1/dashboard\n.*?```json\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/admin-api.md has no example of GET /api/v1/dashboard")
	}
	var want map[string]any
	if err := json.Unmarshal(m[1], &want); err != nil {
		t.Fatalf("the example: %v", err)
	}
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Errorf("fields: got %v; docs/admin-api.md shows %v", g, w)
	}
}

func TestStaticFiles(t *testing.T) {
	r := newRig(t)
	srv := httptest.NewServer(r.d)
	defer srv.Close()
	get := func(method, path string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, c := range []struct {
		path, status, ctype string
	}{
		{"/ui/", "200", "text/html; charset=utf-8"},
		{"/ui/index.html", "200", "text/html; charset=utf-8"},
		{"/ui/app.js", "200", "text/javascript; charset=utf-8"},
		{"/ui/app.css", "200", "text/css; charset=utf-8"},
		{"/ui/nope.js", "404", ""},
		{"/ui", "301", ""},
	} {
		resp := get("GET", c.path)
		h := resp.Header
		if got := resp.Status[:3]; got != c.status {
			t.Errorf("GET %s: got %s; want %s", c.path, got, c.status)
		}
		if c.ctype != "" && h.Get("Content-Type") != c.ctype {
			t.Errorf("GET %s: Content-Type %q; want %q", c.path, h.Get("Content-Type"), c.ctype)
		}
		if h.Get("Content-Security-Policy") != csp || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: CSP %q, nosniff %q, referrer %q; want the page's security headers", c.path,
				h.Get("Content-Security-Policy"), h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
		if c.path == "/ui" && h.Get("Location") != "ui/" {
			t.Errorf("GET /ui: Location %q; want ui/ (relative)", h.Get("Location"))
		}
	}
	etag := get("GET", "/ui/app.js").Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if st := get("GET", "/ui/app.js", "If-None-Match", etag).StatusCode; st != http.StatusNotModified {
		t.Errorf("If-None-Match: got %d; want 304", st)
	}
	if st := get("POST", "/ui/").StatusCode; st != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: got %d; want 405", st)
	}
	if n := r.gather.n.Load(); n != 0 {
		t.Errorf("serving the page gathered %d times; want 0", n)
	}
}
