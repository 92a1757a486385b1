package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gateway/config"
	"gateway/internal/reloadtest"
)

// startAppFile runs a gateway from the config file path, reloadable.
func startAppFile(t *testing.T, path string) *App {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return serveApp(t, cfg, path)
}

// TestHotReloadUnderLoad: ten reloads (POST /reload and the SIGHUP
// path, alternating two configs whose upstream differs) under steady
// load fail no request; each reload takes effect; an invalid config and
// a listener change are refused with their errors while the old config
// keeps serving; a cached entry survives; retired upstreams are closed.
func TestHotReloadUnderLoad(t *testing.T) {
	origin := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/c/") {
				w.Header().Set("Cache-Control", "max-age=600")
			}
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	one, two := origin("one"), origin("two")
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgOne, cfgTwo := string(reloadtest.Config(one.URL)), string(reloadtest.Config(two.URL))
	write(cfgOne)
	a := startAppFile(t, path)
	gw := "http://" + a.server.Addrs()[0].String()
	adm := "http://" + a.adminLn.Addr().String()

	get := func(url string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	reloadAPI := func() (int, string) {
		t.Helper()
		resp, err := http.Post(adm+"/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// A cached entry, from origin one.
	if _, body, _ := get(gw + "/c/x"); body != "one" {
		t.Fatalf("cached body %q", body)
	}
	if _, _, h := get(gw + "/c/x"); !strings.Contains(h.Get("Cache-Status"), "hit") {
		t.Fatalf("second GET not a hit: %q", h.Get("Cache-Status"))
	}

	// Steady load.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(gw + "/api/load")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				ok.Add(1)
			}
		}()
	}

	var retired []*generation
	for i := range 10 {
		want := "two"
		if i%2 == 0 {
			write(cfgTwo)
		} else {
			write(cfgOne)
			want = "one"
		}
		old := a.gen.Load()
		if i%2 == 0 {
			if code, body := reloadAPI(); code != http.StatusOK || !strings.Contains(body, "reloaded") {
				t.Fatalf("reload %d: %d %q", i, code, body)
			}
		} else if err := a.reloadSignal(); err != nil {
			t.Fatalf("reload %d (SIGHUP path): %v", i, err)
		}
		retired = append(retired, old)
		if _, body, _ := get(gw + "/api/x"); body != want {
			t.Fatalf("after reload %d: body %q, want %q", i, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Invalid config: refused with its errors; the old one serves.
	write("listeners: [{address: \"127.0.0.1:0\"}]\nadmin: {address: \"127.0.0.1:0\"}\nroutes:\n  - name: api\n    path: /api\n    upstream: nowhere\n")
	if code, body := reloadAPI(); code != http.StatusBadRequest || !strings.Contains(body, "nowhere") {
		t.Errorf("invalid config: %d %q", code, body)
	}
	if err := a.reloadSignal(); err == nil {
		t.Error("invalid config: SIGHUP path reported no error")
	}
	// A listener change: refused.
	write(strings.Replace(cfgTwo, `"127.0.0.1:0"`, `"127.0.0.1:1"`, 1))
	if code, body := reloadAPI(); code != http.StatusBadRequest || !strings.Contains(body, "listeners/admin changed: restart to apply") {
		t.Errorf("listener change: %d %q", code, body)
	}
	if _, body, _ := get(gw + "/api/x"); body != "one" {
		t.Errorf("after refused reloads: body %q, want one", body)
	}

	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if ok.Load() == 0 {
		t.Error("no request completed")
	}
	t.Logf("%d requests during 10 reloads", ok.Load())

	// The cached entry survived (still origin one's body, a hit).
	if _, body, h := get(gw + "/c/x"); body != "one" || !strings.Contains(h.Get("Cache-Status"), "hit") {
		t.Errorf("cached entry after reloads: %q, Cache-Status %q", body, h.Get("Cache-Status"))
	}
	// Stats keep one entry per route name.
	if _, body, _ := get(adm + "/cache/stats"); strings.Count(body, `"cached"`) != 1 {
		t.Errorf("cache stats: %s", body)
	}
	if code, body, _ := get(adm + "/metrics"); code != http.StatusOK || !strings.Contains(body, "gateway_requests_total") {
		t.Errorf("metrics after reload: %d", code)
	}

	// Every retired generation was closed once idle.
	for i, g := range retired {
		select {
		case <-g.life.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("generation %d not closed", i)
		}
	}
}

// TestWatchReloads: with -watch, writing the config file reloads it.
func TestWatchReloads(t *testing.T) {
	two, path := reloadtest.Fixture(t)
	a := startAppFile(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.watchConfig(ctx, path); err != nil {
		t.Fatal(err)
	}
	gw := "http://" + a.server.Addrs()[0].String()
	get := func() string {
		t.Helper()
		resp, err := http.Get(gw + "/api/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != "one" {
		t.Fatalf("before: %q", got)
	}
	// Replace the file by rename, as editors and ConfigMaps do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, reloadtest.Config(two), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for get() != "two" {
		if time.Now().After(deadline) {
			t.Fatal("config change not picked up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const metricsReloadYAML = `
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
  dead:
    targets: [%q]
    health_check: {max_fails: 1, cool_down: 1m}
routes:%s
  - name: api
    path: /api
    upstream: app
  - name: zipped
    path: /z
    upstream: app
    compress: {enabled: true, encodings: [gzip]}
  - name: dead
    path: /dead
    upstream: dead
`

// TestMetricsSurviveReload: /metrics counters keep counting across a
// reload that rebuilds every route and upstream (and moves the routes'
// indexes), after the old generation has drained and closed, as
// nginx's and Varnish's do; none goes back.
func TestMetricsSurviveReload(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/z" {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, strings.Repeat("compress me ", 400))
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	dead := "http://" + deadAddr(t)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(extraRoute string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(fmt.Sprintf(metricsReloadYAML, origin.URL, dead, extraRoute)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	a := startAppFile(t, path)
	gw := "http://" + a.server.Addrs()[0].String()
	adm := a.adminLn.Addr().String()
	traffic := func(n int) {
		t.Helper()
		for range n {
			if st, _, _ := send(t, "GET", gw+"/api/x"); st != http.StatusOK {
				t.Fatalf("api: %d", st)
			}
		}
		if st, _, h := send(t, "GET", gw+"/z", "Accept-Encoding", "gzip"); st != http.StatusOK || h.Get("Content-Encoding") != "gzip" {
			t.Fatalf("zipped: %d %q", st, h.Get("Content-Encoding"))
		}
		if st, _, _ := send(t, "GET", gw+"/dead/x"); st != http.StatusBadGateway {
			t.Fatalf("dead: %d; want 502", st)
		}
	}
	var (
		api     = `gateway_requests_total{cache="none",method="GET",route="api",status="2xx"}`
		apiDur  = `gateway_request_duration_seconds_count{route="api"}`
		zipped  = `gateway_requests_total{cache="none",method="GET",route="zipped",status="2xx"}`
		gzipped = `gateway_compress_responses_total{coding="gzip"}`
		refused = `gateway_upstream_errors_total{kind="refused",target="` + dead + `",upstream="dead"}`
		upDur   = `gateway_upstream_duration_seconds_count{upstream="dead"}`
		extra   = `gateway_requests_total{cache="none",method="GET",route="extra",status="2xx"}`
	)
	check := func(m map[string]float64, want map[string]float64) {
		t.Helper()
		for k, v := range want {
			if g, ok := m[k]; !ok || g != v {
				t.Errorf("%s = %v (present %v); want %v", k, g, ok, v)
			}
		}
	}

	const n, m = 5, 7
	traffic(n)
	before := scrape(t, adm)
	check(before, map[string]float64{api: n, apiDur: n, zipped: 1, gzipped: 1, refused: 1, upDur: 1})

	// A new route first shifts every other route's index.
	write("\n  - {name: extra, path: /extra, upstream: app}")
	old := a.gen.Load()
	resp, err := http.Post("http://"+adm+"/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	traffic(m)
	if st, _, _ := send(t, "GET", gw+"/extra"); st != http.StatusOK {
		t.Fatalf("extra: %d", st)
	}
	select {
	case <-old.life.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the old generation was not closed")
	}

	after := scrape(t, adm)
	check(after, map[string]float64{api: n + m, apiDur: n + m, zipped: 2, gzipped: 2, refused: 2, upDur: 2, extra: 1})
	for k, v := range before {
		if !strings.HasPrefix(k, "gateway_") || !strings.Contains(k, "_total{") {
			continue
		}
		if g, ok := after[k]; !ok || g < v {
			t.Errorf("%s went from %v to %v (present %v) across the reload", k, v, g, ok)
		}
	}
}

// TestFailedReloadLeavesNoCache: a reload that would create the cache but
// fails later (here its access log cannot be created: no file can be made under /proc) leaves no store
// behind; the next config that caches gets a store of its own sizes.
func TestFailedReloadLeavesNoCache(t *testing.T) {
	two, path := reloadtest.Fixture(t)
	const base = `
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
routes:
  - name: api
    path: /api
    upstream: app
`
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("access_log: {enabled: false}\n" + fmt.Sprintf(base, two))
	a := startAppFile(t, path)
	if a.shared.Cache() != nil {
		t.Fatal("a config without a cached route made a cache")
	}
	cached := fmt.Sprintf(base, two) + "    cache: {enabled: true}\ncache:\n  max_size: %s\n"
	write(fmt.Sprintf(cached, "1MiB") + "access_log:\n  output: /proc/gateway-test-access.log\n")
	if _, err := a.reloadConfig(); err == nil {
		t.Fatal("reload with an access log under /proc: got nil error")
	}
	if a.shared.Cache() != nil {
		total, _ := a.shared.Cache().Stats()
		t.Fatalf("after the failed reload a cache of %d bytes is left; want none", total.MaxBytes)
	}
	write("access_log: {enabled: false}\n" + fmt.Sprintf(cached, "2MiB"))
	if _, err := a.reloadConfig(); err != nil {
		t.Fatal(err)
	}
	if a.shared.Cache() == nil {
		t.Fatal("no cache after a reload with a cached route")
	}
	if total, _ := a.shared.Cache().Stats(); total.MaxBytes != 2<<20 {
		t.Fatalf("cache after the good reload: max %d bytes; want 2MiB", total.MaxBytes)
	}
}
