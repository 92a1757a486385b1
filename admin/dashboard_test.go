package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// newDashServer is an admin listener with a stand-in dashboard that
// answers every request with the path it saw.
func newDashServer(t *testing.T, token, prefix string) *httptest.Server {
	t.Helper()
	dash := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("dashboard " + r.URL.Path))
	})
	h, err := New(Options{Address: "127.0.0.1:0", Token: token, Backend: newFakeBackend(), Dashboard: dash,
		PathPrefix: prefix, Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }),
		Now: func() time.Time { return fakeStart.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// TestDashboardToken: with a token, the page's static files are served
// without it and everything that holds data still needs it.
func TestDashboardToken(t *testing.T) {
	srv := newDashServer(t, "s3cret", "")
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/ui/", 200},
		{"HEAD", "/ui/app.js", 200},
		{"GET", "/ui/app.css", 200},
		{"GET", "/ui", 200}, // the dashboard redirects it
		{"POST", "/ui/", 401},
		{"GET", "/ui/../api/v1/config", 401},
		{"GET", "/ui/./app.js", 401},
		{"GET", "/uix", 401},
		{"GET", "/api/v1/dashboard", 401},
		{"GET", "/api/v1/dashboard/events", 401},
		{"GET", "/api/v1/status", 401},
		{"GET", "/metrics", 401},
		{"GET", "/", 401},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed, no path cleaned
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s without token: got %d; want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}
	for _, p := range []string{"/api/v1/dashboard", "/api/v1/dashboard/events"} {
		st, _, body := do(t, srv, "GET", p, "Authorization", "Bearer s3cret")
		if st != 200 || body != "dashboard "+p {
			t.Errorf("GET %s with token: got %d %q; want 200 from the dashboard", p, st, body)
		}
	}
}

// TestPathPrefix: every endpoint moves under admin.path_prefix and
// nothing is served outside it.
func TestPathPrefix(t *testing.T) {
	srv := newDashServer(t, "", "/ops")
	for _, c := range []struct {
		path string
		want int
		body string
	}{
		{"/ops/ui/", 200, "dashboard /ui/"},
		{"/ops/ui/app.js", 200, "dashboard /ui/app.js"},
		{"/ops/api/v1/dashboard", 200, "dashboard /api/v1/dashboard"},
		{"/ops/metrics", 200, "metrics"},
		{"/ops/healthz", 200, "ok\n"},
		{"/ops/api/v1/status", 200, ""},
		{"/ops/", 200, "GET   /ops/ui/"},
		{"/ui/", 404, ""},
		{"/metrics", 404, ""},
		{"/healthz", 404, ""},
		{"/opsx/metrics", 404, ""},
		{"/", 404, ""},
	} {
		st, _, body := do(t, srv, "GET", c.path)
		if st != c.want || !strings.Contains(body, c.body) {
			t.Errorf("GET %s: got %d %q; want %d with %q", c.path, st, body, c.want, c.body)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/ops", nil)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != "ops/" {
		t.Errorf("GET /ops: got %d Location %q; want 301 to ops/ (relative)", resp.StatusCode, loc)
	}
	if _, err := New(Options{Address: "127.0.0.1:0", PathPrefix: "ops/"}); err == nil {
		t.Error("New with path prefix ops/: no error")
	}
}

// TestIndexListsUIFirst: the index shows the page before the rest.
func TestIndexListsUIFirst(t *testing.T) {
	srv := newDashServer(t, "", "")
	_, _, body := do(t, srv, "GET", "/")
	lines := strings.Split(body, "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[2], "GET   /ui/") {
		t.Errorf("GET /: got\n%s\nwant /ui/ listed first", body)
	}
}
