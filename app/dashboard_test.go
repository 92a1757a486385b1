package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gateway/dashboard"
	"gateway/internal/leakcheck"
)

const dashboardYAML = `
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
  token: s3cret
  path_prefix: /ops
upstreams:
  app:
    targets: [%q]
routes:
  - name: cached
    path: /c/
    upstream: app
    cache: {enabled: true}
  - name: api
    path: /
    upstream: app
`

// startDashboardApp serves the gateway of dashboardYAML from a file and
// returns it with its client and admin base URLs.
func startDashboardApp(t *testing.T) (a *App, gw, adm, path string) {
	t.Helper()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/c/") {
			w.Header().Set("Cache-Control", "max-age=600")
		}
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusBadGateway)
		}
		io.WriteString(w, "hello")
	}))
	t.Cleanup(origin.Close)
	path = filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(dashboardYAML, origin.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	a = startAppFile(t, path)
	return a, "http://" + a.server.Addrs()[0].String(), "http://" + a.adminLn.Addr().String() + "/ops", path
}

func adminGet(t *testing.T, url, token string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// sumSeries reads the sum of a metric's series from /metrics text, by
// name, over the series whose labels contain match.
func sumSeries(body, name, match string) uint64 {
	var sum float64
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		if !strings.Contains(line, match) {
			continue
		}
		v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		sum += v
	}
	return uint64(sum)
}

// TestDashboardMatchesMetrics: on the real app, behind its token and
// path prefix, the snapshot's totals equal a /metrics scrape of the
// same registry taken right after, with no traffic between.
func TestDashboardMatchesMetrics(t *testing.T) {
	_, gw, adm, _ := startDashboardApp(t)
	for i := range 20 {
		for _, p := range []string{"/c/a", "/c/a", "/x", "/fail", "/c/b" + strconv.Itoa(i%3)} {
			resp, err := http.Get(gw + p)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	st, h, body := adminGet(t, adm+"/api/v1/dashboard", "s3cret")
	if st != http.StatusOK || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET dashboard: %d %q", st, h.Get("Cache-Control"))
	}
	var snap dashboard.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		t.Fatal(err)
	}
	_, _, m := adminGet(t, adm+"/metrics", "s3cret")
	metrics := string(m)
	tot := snap.Now.Totals
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"requests", tot.Requests, sumSeries(metrics, "gateway_requests_total", "")},
		{"errors", tot.Errors, sumSeries(metrics, "gateway_requests_total", `status="5xx"`)},
		{"hits", tot.Hits, sumSeries(metrics, "gateway_cache_hits_total", "")},
		{"misses", tot.Misses, sumSeries(metrics, "gateway_cache_misses_total", "") + sumSeries(metrics, "gateway_cache_revalidations_total", "")},
		{"passes", tot.Passes, sumSeries(metrics, "gateway_cache_passes_total", "")},
	} {
		if c.got != c.want {
			t.Errorf("%s: snapshot %d; /metrics %d", c.name, c.got, c.want)
		}
	}
	if tot.Requests != 100 || tot.Errors != 20 || tot.Hits == 0 {
		t.Errorf("totals %+v; want 100 requests, 20 errors, some hits", tot)
	}
	if len(snap.Routes) != 2 || snap.Routes[0].Route != "cached" || snap.Routes[1].Route != "api" {
		t.Errorf("routes %+v; want cached, api in config order", snap.Routes)
	}
	if snap.Cache == nil || len(snap.Cache.Routes) != 1 || snap.Cache.Routes[0].Hits != tot.Hits {
		t.Errorf("cache view %+v; want the cached route with %d hits", snap.Cache, tot.Hits)
	}
	if len(snap.Upstreams) != 1 || len(snap.Upstreams[0].Targets) != 1 || snap.Upstreams[0].Targets[0].State != "up" {
		t.Errorf("upstreams %+v; want app with one target up", snap.Upstreams)
	}
	if !snap.Full || snap.History == nil || !strings.Contains(string(snap.Config), "REDACTED") || strings.Contains(string(snap.Config), "s3cret") {
		t.Errorf("full snapshot: full %v, config %s; want the redacted config", snap.Full, snap.Config)
	}
}

// TestDashboardOnAdminListener: the page is served under the prefix
// without the token, its data only with it, nothing outside the
// prefix; the event stream works with a plain request carrying the
// token, and ends when the admin listener shuts down.
func TestDashboardOnAdminListener(t *testing.T) {
	leakcheck.Check(t, "dashboard.(*Dashboard).")
	_, _, adm, _ := startDashboardApp(t)
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/ui/", "", 200},
		{"/ui/app.js", "", 200},
		{"/api/v1/dashboard", "", 401},
		{"/api/v1/dashboard/events", "", 401},
		{"/api/v1/status", "", 401},
		{"/metrics", "", 401},
		{"/api/v1/nope", "s3cret", 404},
	} {
		st, h, _ := adminGet(t, adm+c.path, c.token)
		if st != c.want {
			t.Errorf("GET /ops%s (token %q): %d; want %d", c.path, c.token, st, c.want)
		}
		if strings.HasPrefix(c.path, "/ui/") && !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET /ops%s: CSP %q", c.path, h.Get("Content-Security-Policy"))
		}
	}
	root := strings.TrimSuffix(adm, "/ops")
	for _, p := range []string{"/ui/", "/metrics", "/healthz"} {
		if st, _, _ := adminGet(t, root+p, "s3cret"); st != http.StatusNotFound {
			t.Errorf("GET %s outside the prefix: %d; want 404", p, st)
		}
	}
	if _, _, idx := adminGet(t, adm+"/", "s3cret"); !strings.HasPrefix(strings.SplitN(string(idx), "\n", 4)[2], "GET   /ops/ui/") {
		t.Errorf("index: got\n%s\nwant /ops/ui/ first", idx)
	}

	req, _ := http.NewRequestWithContext(context.Background(), "GET", adm+"/api/v1/dashboard/events", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var sawSnapshot bool
	for !sawSnapshot {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		sawSnapshot = line == "event: snapshot\n"
	}
	// The test's cleanup shuts the app down, which must end the stream;
	// leakcheck then finds no stream handler left.
}

// TestLastReloadRecorded: a reload applied and one refused are each
// kept, with when and why, for the status and the dashboard.
func TestLastReloadRecorded(t *testing.T) {
	a, _, adm, path := startDashboardApp(t)
	if st := a.Status(context.Background()); st.LastReload != nil {
		t.Fatalf("before any reload: %+v; want nil", st.LastReload)
	}
	if err := a.reloadSignal(); err != nil {
		t.Fatal(err)
	}
	st := a.Status(context.Background())
	if r := st.LastReload; r == nil || !r.OK || !strings.Contains(r.Summary, "reloaded") || r.Error != "" || r.At.IsZero() {
		t.Fatalf("after a reload: %+v; want ok with its summary", r)
	}
	if err := os.WriteFile(path, []byte("listeners: [{address: \"127.0.0.1:0\"}]\nroutes:\n  - path: /\n    upstream: nowhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reload(context.Background()); err == nil {
		t.Fatal("a broken config reloaded")
	}
	_, _, body := adminGet(t, adm+"/api/v1/dashboard", "s3cret")
	var snap dashboard.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		t.Fatal(err)
	}
	if r := snap.Gateway.LastReload; r == nil || r.OK || !strings.Contains(r.Error, "nowhere") {
		t.Errorf("dashboard's last reload %+v; want the refused one, with its error", r)
	}
	_, _, body = adminGet(t, adm+"/api/v1/status", "s3cret")
	var status struct {
		LastReload struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"last_reload"`
	}
	if err := json.Unmarshal(body, &status); err != nil || status.LastReload.OK || status.LastReload.Error == "" {
		t.Errorf("/api/v1/status last_reload: %s", body)
	}
}
