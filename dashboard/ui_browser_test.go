package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gateway/internal/browsertest"
)

// The page's tests serve dashboard/ui from disk, under an admin path
// prefix (/gw), with the Content-Security-Policy the admin listener
// sends, and fake the data endpoints with fixtures built from the
// Snapshot type itself, so the page and the JSON's shape cannot drift
// apart unnoticed.

const (
	uiPrefix = "/gw"
	uiCSP    = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// uiServer is a fake admin listener for the page.
type uiServer struct {
	*httptest.Server
	token string
	ticks chan Snapshot // each is sent as an event "tick" on an open stream
	done  chan struct{} // closed when the test ends, to end the streams

	mu          sync.Mutex
	snap        Snapshot // what GET dashboard and the stream's first event answer
	eventsDown  bool     // the stream answers 503, so the page must poll
	eventsMute  bool     // the stream answers 200 and never an event, as behind a buffering proxy
	eventsCRLF  bool     // the stream ends its lines with CRLF, each split across two writes
	purges      []url.Values
	purgeAuth   []string
	auths       []string // Authorization of every API request
	apiURLs     []string // every API request's URL, as the server saw it
	dashboardGN int      // GETs of the snapshot endpoint
}

func newUIServer(t *testing.T, token string, snap Snapshot) *uiServer {
	s := &uiServer{token: token, ticks: make(chan Snapshot), done: make(chan struct{}), snap: snap}
	mux := http.NewServeMux()
	files := http.StripPrefix(uiPrefix+"/ui/", http.FileServerFS(os.DirFS("ui")))
	mux.Handle(uiPrefix+"/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", uiCSP)
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET "+uiPrefix+"/api/v1/dashboard", s.api(s.dashboard))
	mux.HandleFunc("GET "+uiPrefix+"/api/v1/dashboard/events", s.api(s.events))
	mux.HandleFunc("POST "+uiPrefix+"/api/v1/cache/purge", s.api(s.purge))
	s.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(s.done)
		s.Close()
	})
	return s
}

// api checks the token as the admin API does and records the request.
func (s *uiServer) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		s.apiURLs = append(s.apiURLs, r.URL.String())
		s.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		if s.token != "" && r.Header.Get("Authorization") != "Bearer "+s.token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gateway admin"`)
			writeTestJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		h(w, r)
	}
}

func (s *uiServer) dashboard(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	snap := s.snap
	s.dashboardGN++
	s.mu.Unlock()
	writeTestJSON(w, http.StatusOK, snap)
}

func (s *uiServer) events(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	snap, down, mute, crlf := s.snap, s.eventsDown, s.eventsMute, s.eventsCRLF
	s.mu.Unlock()
	if down {
		writeTestJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no stream"})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	if mute {
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	send := func(event string, v Snapshot) {
		b, _ := json.Marshal(v)
		text := fmt.Sprintf("event: %s\ndata: %s\n\n", event, b)
		if !crlf {
			io.WriteString(w, text)
			http.NewResponseController(w).Flush()
			return
		}
		// Each CR goes in one write and its LF in the next; the pause
		// keeps the browser from reading the two as one chunk (the test
		// holds without it, it only tests less).
		for part := range strings.SplitAfterSeq(strings.ReplaceAll(text, "\n", "\r\n"), "\r") {
			io.WriteString(w, part)
			http.NewResponseController(w).Flush()
			time.Sleep(30 * time.Millisecond)
		}
	}
	send("snapshot", snap)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case tick := <-s.ticks:
			send("tick", tick)
		}
	}
}

func (s *uiServer) purge(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.purges = append(s.purges, q)
	s.purgeAuth = append(s.purgeAuth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	switch {
	case q.Has("all"):
		writeTestJSON(w, http.StatusOK, map[string]any{"purged": 0, "soft": false, "reason": "nothing stored"})
	case q.Get("tag") == "broken":
		writeTestJSON(w, http.StatusInternalServerError, map[string]any{"purged": 1, "soft": false, "error": "shared tier: connection refused"})
	default:
		writeTestJSON(w, http.StatusOK, map[string]any{"purged": 3, "soft": q.Get("soft") == "true", "scope": "cluster"})
	}
}

// set changes the server's behaviour under its lock.
func (s *uiServer) set(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

func writeTestJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// uiFixture is a gateway with two routes (one caching), an upstream with
// a target up, one down and one probing, a shared tier, async jobs,
// WebSocket tunnels and a failed reload.
func uiFixture(now time.Time) Snapshot {
	point := func(i int, rps float64, requests uint64) Point {
		return Point{
			T: now.Add(time.Duration(i-4) * time.Second).UnixMilli(), RPS: rps, Hit: rps * 0.6, Stale: 0.5, Miss: rps * 0.2, Pass: 0.25, Error: 0.125,
			P50Ms: 3.25, P95Ms: 18.5, P99Ms: 42.75, InFlight: 7, Shed: 0.5, RateLimited: 1.5,
			CacheSavedBytes: 524288, CompressSavedBytes: 65536,
			Totals: Totals{Requests: requests, Errors: 321, Hits: 80000, StaleHits: 1500, Misses: 20000, Passes: 4000,
				Shed: 42, RateLimited: 99, CacheSavedBytes: 3 << 30, CompressSavedBytes: 5 << 20},
		}
	}
	var gw, api, static []Point
	for i := range 5 {
		gw = append(gw, point(i, 10+float64(i), 123456-uint64(4-i)*12))
		api = append(api, point(i, 8+float64(i), 100000-uint64(4-i)*10))
		static = append(static, point(i, 2, 23456-uint64(4-i)*2))
	}
	cfg, _ := json.Marshal(map[string]any{"listen": "127.0.0.1:8080", "admin": map[string]any{"address": "127.0.0.1:9090", "token": "REDACTED"}})
	return Snapshot{
		Time: now, IntervalSeconds: 1, Full: true,
		Gateway: GatewayInfo{
			Version: "v1.9.0-test", StartedAt: now.Add(-(3*24*time.Hour + 4*time.Hour)), UptimeSeconds: 3*86400 + 4*3600 + 120,
			Ready: true, Generation: 4, LoadedAt: now.Add(-time.Hour),
			LastReload: &ReloadView{At: now.Add(-time.Minute), OK: false, Error: "routes[1].upstream: no upstream named nope"},
		},
		Now:     gw[4],
		Routes:  []RoutePoint{{Route: "api", Point: api[4]}, {Route: "static", Point: static[4]}},
		History: &History{Gateway: gw, Routes: map[string][]Point{"api": api, "static": static}},
		Cache: &CacheView{
			BytesUsed: 96 << 20, MaxBytes: 256 << 20, Entries: 1234, Evictions: 56, Purges: 7,
			Routes: []CacheRouteView{{
				Route: "api", HitRatio: 0.8125, Hits: 80000, StaleHits: 1500, Misses: 20000, Passes: 4000, Stores: 19000,
				NotStored: []ReasonCount{{"set-cookie", 12}, {"status", 3}},
				TopHits:   []KeyCount{{Key: "example.com/api/items?page=1", Count: 900}, {Key: "example.com/api/users", Count: 450}},
				TopMisses: []KeyCount{{Key: "example.com/api/search?q=a%20very%20long%20query%20string%20that%20goes%20on", Count: 77}},
			}},
			Shared: &SharedView{State: "up", Breaker: "closed", Hits: 500, Misses: 60, Errors: 2},
		},
		Upstreams: []UpstreamView{{
			Name: "app", Healthy: true,
			Targets: []TargetView{
				{URL: "http://10.0.0.1:8000", State: "up", Healthy: true, ActiveCheck: "passing", LastCheck: now.Add(-2 * time.Second), Breaker: "closed", InFlight: 3, Connections: 12, P50Ms: 2.5, P99Ms: 30},
				{URL: "http://10.0.0.2:8000", State: "down", ActiveCheck: "failing", LastCheck: now.Add(-time.Second), LastError: "dial tcp 10.0.0.2:8000: connect: connection refused", Breaker: "open"},
				{URL: "http://10.0.0.3:8000", State: "probing", ActiveCheck: "pending", Breaker: "half-open", InFlight: 1, Connections: 1, P50Ms: 4, P99Ms: 9.5},
			},
		}},
		Jobs:      &JobsView{Queued: 5, Running: 2, Succeeded: 1000, Failed: 3, Cancelled: 1, Retries: 9, Rejected: 4, WaitP50Ms: 12.5, RunP50Ms: 250},
		WebSocket: &WebSocketView{Open: 4, Upgraded: 40, Rejected: 1, Routes: []WebSocketItem{{Route: "api", Open: 4, Upgraded: 40}}},
		Config:    cfg,
	}
}

// uiTick is the tick after s: one second later, with history and
// configuration left out as the stream leaves them out.
func uiTick(s Snapshot) Snapshot {
	s.Time = s.Time.Add(time.Second)
	s.Full, s.History, s.Config = false, nil, nil
	s.Now.T += 1000
	s.Now.RPS = 20
	s.Now.Totals.Requests += 20
	routes := []RoutePoint{}
	for _, r := range s.Routes {
		r.T += 1000
		r.Totals.Requests += 10
		routes = append(routes, r)
	}
	s.Routes = routes
	return s
}

// uiBadText finds words on the page that betray a value the page could
// not read.
const uiBadText = `(document.body.innerText.match(/\b(null|undefined|NaN|Infinity)\b|\[object Object\]/) || [''])[0]`

func uiNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// openUI loads the page and waits for the snapshot's numbers.
func openUI(t *testing.T, b *browsertest.Browser, s *uiServer, wantRequests uint64) {
	t.Helper()
	b.Run(chromedp.Navigate(s.URL + uiPrefix + "/ui/"))
	waitValue(b, "total-requests", uiNum(float64(wantRequests)))
}

func waitValue(b *browsertest.Browser, id, want string) {
	b.WaitFor(id+" = "+want, fmt.Sprintf(`document.querySelector('[data-testid=%q]')?.dataset.value === %q`, id, want))
}

func pageValues(b *browsertest.Browser) map[string]string {
	return browsertest.Eval[map[string]string](b, `Object.fromEntries([...document.querySelectorAll('[data-testid][data-value]')].map(e => [e.dataset.testid, e.dataset.value]))`)
}

// checkClean fails the test when the page threw, broke its CSP, reached
// another origin or shows a value it could not read ("null", "NaN");
// allow names the log texts expected here.
func checkClean(t *testing.T, b *browsertest.Browser, s *uiServer, allow ...string) {
	t.Helper()
	b.CheckOrigin(s.URL)
	if bad := browsertest.Eval[string](b, uiBadText); bad != "" {
		t.Errorf("the page shows %q", bad)
	}
next:
	for _, p := range b.Problems() {
		for _, a := range allow {
			if strings.Contains(p.Text, a) {
				continue next
			}
		}
		t.Errorf("page problem: %s: %s (%s)", p.Kind, p.Text, p.URL)
	}
}

func TestUIShowsSnapshot(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	snap := uiFixture(now)
	s := newUIServer(t, "", snap)
	b := browsertest.New(t)
	openUI(t, b, s, snap.Now.Totals.Requests)

	n, api, c := snap.Now, snap.Routes[0], snap.Cache
	want := map[string]string{
		"rps": uiNum(n.RPS), "hit": uiNum(n.Hit), "stale": uiNum(n.Stale), "miss": uiNum(n.Miss), "pass": uiNum(n.Pass), "error": uiNum(n.Error),
		"p50": uiNum(n.P50Ms), "p95": uiNum(n.P95Ms), "p99": uiNum(n.P99Ms), "in-flight": uiNum(n.InFlight),
		"shed": uiNum(n.Shed), "rate-limited": uiNum(n.RateLimited),
		"cache-saved-bytes": uiNum(n.CacheSavedBytes), "compress-saved-bytes": uiNum(n.CompressSavedBytes),
		"total-requests": "123456", "total-errors": "321", "total-hits": "80000", "total-stale-hits": "1500",
		"total-misses": "20000", "total-passes": "4000", "total-shed": "42", "total-rate-limited": "99",
		"total-cache-saved-bytes": strconv.Itoa(3 << 30), "total-compress-saved-bytes": strconv.Itoa(5 << 20),
		"uptime": uiNum(snap.Gateway.UptimeSeconds), "config-generation": "4", "version": "v1.9.0-test", "ready": "ready",
		"route-api-rps": uiNum(api.RPS), "route-api-hit": uiNum(api.Hit), "route-api-p99": uiNum(api.P99Ms), "route-api-in-flight": uiNum(api.InFlight),
		"route-api-requests": "100000", "route-static-requests": "23456",
		"cache-entries": "1234", "cache-bytes-used": strconv.Itoa(96 << 20), "cache-max-bytes": strconv.Itoa(256 << 20),
		"cache-evictions": "56", "cache-purges": "7",
		"route-api-hit-ratio": "0.8125", "route-api-hits": "80000", "route-api-stale-hits": "1500", "route-api-misses": "20000",
		"route-api-passes": "4000", "route-api-stores": "19000",
		"cache-api-top-hits-0": "900", "cache-api-top-hits-1": "450", "cache-api-top-misses-0": "77",
		"cache-api-not-stored-set-cookie": "12", "cache-api-not-stored-status": "3",
		"shared-state": "up", "shared-breaker": "closed", "shared-hits": "500", "shared-misses": "60", "shared-errors": "2",
		"target-app-0-state": "up", "target-app-1-state": "down", "target-app-2-state": "probing",
		"target-app-0-in-flight": "3", "target-app-0-connections": "12", "target-app-0-p50": "2.5", "target-app-0-p99": "30",
		"target-app-1-check": "failing", "target-app-1-breaker": "open",
		"target-app-1-last-error": "dial tcp 10.0.0.2:8000: connect: connection refused",
		"jobs-queued":             "5", "jobs-running": "2", "jobs-succeeded": "1000", "jobs-failed": "3", "jobs-cancelled": "1",
		"jobs-retries": "9", "jobs-rejected": "4", "jobs-wait-p50": "12.5", "jobs-run-p50": "250",
		"ws-open": "4", "ws-upgraded": "40", "ws-rejected": "1", "ws-api-open": "4", "ws-api-upgraded": "40",
	}
	got := pageValues(b)
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: data-value %q; want %q", id, got[id], w)
		}
	}
	if c.Routes[0].HitRatio != 0.8125 {
		t.Fatal("fixture changed under the test")
	}

	// What a person reads: formatted for people, the state in colour.
	texts := browsertest.Eval[map[string]string](b, `Object.fromEntries(['total-requests','uptime','cache-bytes-used','route-api-hit-ratio','p50','total-cache-saved-bytes','last-reload']
		.map(id => [id, document.querySelector('[data-testid="'+id+'"]').textContent]))`)
	for id, w := range map[string]string{"total-requests": "123k", "uptime": "3d 4h", "cache-bytes-used": "96.0 MiB",
		"route-api-hit-ratio": "81.3%", "p50": "3.3 ms", "total-cache-saved-bytes": "3.0 GiB"} {
		if texts[id] != w {
			t.Errorf("%s reads %q; want %q", id, texts[id], w)
		}
	}
	if !strings.Contains(texts["last-reload"], "no upstream named nope") {
		t.Errorf("last-reload reads %q; want the reload's error", texts["last-reload"])
	}
	states := browsertest.Eval[[]string](b, `['target-app-0','target-app-1','target-app-2'].map(id => {
		const e = document.querySelector('[data-testid="'+id+'"]'); return e.dataset.state + ' ' + getComputedStyle(e).color })`)
	if !strings.HasPrefix(states[1], "down ") || !reddish(strings.TrimPrefix(states[1], "down ")) {
		t.Errorf("down target: %q; want data-state down in red", states[1])
	}
	if !strings.HasPrefix(states[0], "up ") || reddish(strings.TrimPrefix(states[0], "up ")) {
		t.Errorf("up target: %q; want data-state up, not red", states[0])
	}
	if !strings.HasPrefix(states[2], "probing ") {
		t.Errorf("probing target: %q; want data-state probing", states[2])
	}
	if got := browsertest.Eval[string](b, `document.querySelector('[data-testid="config"]').textContent`); !strings.Contains(got, `"token": "REDACTED"`) {
		t.Errorf("config block: %q; want the running configuration, pretty-printed", got)
	}
	points := `document.querySelector('[data-testid="chart-rps"]').dataset.points`
	if got := browsertest.Eval[string](b, points); got != "5" {
		t.Errorf("chart-rps shows %s points; want the 5 of the history", got)
	}

	// A tick moves the numbers and adds a point to every chart.
	s.ticks <- uiTick(snap)
	waitValue(b, "total-requests", "123476")
	waitValue(b, "route-api-requests", "100010")
	waitValue(b, "rps", "20")
	if got := browsertest.Eval[string](b, points); got != "6" {
		t.Errorf("after a tick chart-rps shows %s points; want 6", got)
	}
	if got := browsertest.Eval[string](b, `document.querySelector('[data-testid="route-api-spark"]').dataset.points`); got != "6" {
		t.Errorf("after a tick the api route's sparkline shows %s points; want 6", got)
	}
	if got := browsertest.Eval[string](b, `document.querySelector('[data-testid="conn-state"]').dataset.state`); got != "live" {
		t.Errorf("conn-state %q; want live", got)
	}
	b.Screenshot("dashboard-1280.png")

	// A phone: nothing wider than the screen but the tables, which scroll
	// in their own boxes.
	b.Run(chromedp.EmulateViewport(390, 844))
	b.WaitFor("the 390 px layout", `innerWidth === 390`)
	if over := browsertest.Eval[[]int](b, `[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]`); over[0] > over[2] || over[1] > over[2] {
		t.Errorf("at 390 px the document is %d px and the body %d px wide; want at most %d", over[0], over[1], over[2])
	}
	b.Screenshot("dashboard-390.png")

	// Dark: the system's choice is followed, and down is still red.
	b.Run(chromedp.EmulateViewport(1280, 900))
	b.ColorScheme("dark")
	b.WaitFor("the dark scheme", `getComputedStyle(document.body).backgroundColor === 'rgb(13, 17, 23)'`)
	if c := browsertest.Eval[string](b, `getComputedStyle(document.querySelector('[data-testid="target-app-1"]')).color`); !reddish(c) {
		t.Errorf("in the dark, the down target's colour is %s; want red", c)
	}
	b.Screenshot("dashboard-1280-dark.png")
	checkClean(t, b, s)
}

// reddish reports whether a CSS rgb() colour is clearly red.
func reddish(css string) bool {
	var r, g, bl int
	if _, err := fmt.Sscanf(css, "rgb(%d, %d, %d)", &r, &g, &bl); err != nil {
		return false
	}
	return r >= 150 && r-g >= 80 && r-bl >= 80
}

func TestUIPurge(t *testing.T) {
	snap := uiFixture(time.Now().UTC())
	snap.Cache.Shared = nil // a cache panel without its shared tier card
	s := newUIServer(t, "", snap)
	b := browsertest.New(t)
	openUI(t, b, s, snap.Now.Totals.Requests)

	result := `[data-testid="purge-result"]`
	b.Run(
		chromedp.SetValue(chromedp.CSS(`[data-testid="purge-kind"]`), "prefix"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="purge-value"]`), "/api/"),
		chromedp.SetValue(chromedp.CSS(`[data-testid="purge-route"]`), "api"),
		chromedp.Click(chromedp.CSS(`[data-testid="purge-soft"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="purge-submit"]`)),
	)
	b.WaitFor("the purge's answer", `document.querySelector('`+result+`').dataset.value === "3"`)
	text := browsertest.Eval[string](b, `document.querySelector('`+result+`').textContent`)
	if !strings.Contains(text, "3 entries marked stale") || !strings.Contains(text, "Every gateway sharing the tier") {
		t.Errorf("purge result reads %q; want the count, soft, and the scope", text)
	}

	// Everything: the value is not asked for; nothing stored says why.
	b.Run(chromedp.Evaluate[chromedp.Void](`(() => { const k = document.querySelector('[data-testid="purge-kind"]'); k.value = 'all'; k.dispatchEvent(new Event('change')) })()`))
	b.WaitFor("the value to be disabled", `document.querySelector('[data-testid="purge-value"]').disabled`)
	b.Run(chromedp.Click(chromedp.CSS(`[data-testid="purge-submit"]`)))
	b.WaitFor("the second answer", `document.querySelector('`+result+`').dataset.value === "0"`)
	text = browsertest.Eval[string](b, `document.querySelector('`+result+`').textContent`)
	if text != "Nothing purged: nothing stored" {
		t.Errorf("purge result reads %q; want %q", text, "Nothing purged: nothing stored")
	}

	// A store that failed part of it: what was done, and the error.
	b.Run(chromedp.Evaluate[chromedp.Void](`(() => { const k = document.querySelector('[data-testid="purge-kind"]'); k.value = 'tag'; k.dispatchEvent(new Event('change')) })()`),
		chromedp.SetValue(chromedp.CSS(`[data-testid="purge-value"]`), "broken"),
		chromedp.Click(chromedp.CSS(`[data-testid="purge-submit"]`)))
	b.WaitFor("the third answer", `document.querySelector('`+result+`').dataset.status === "500"`)
	text = browsertest.Eval[string](b, `document.querySelector('`+result+`').textContent`)
	if !strings.Contains(text, "1 entry removed") || !strings.Contains(text, "connection refused") {
		t.Errorf("purge result reads %q; want what was done and the error", text)
	}

	s.mu.Lock()
	purges := s.purges
	s.mu.Unlock()
	wants := []url.Values{
		{"prefix": {"/api/"}, "route": {"api"}, "soft": {"true"}},
		{"all": {"true"}, "soft": {"true"}},
		{"tag": {"broken"}, "soft": {"true"}},
	}
	if len(purges) != len(wants) {
		t.Fatalf("server saw %d purges (%v); want %d", len(purges), purges, len(wants))
	}
	for i, w := range wants {
		if purges[i].Encode() != w.Encode() {
			t.Errorf("purge %d: query %q; want %q", i, purges[i].Encode(), w.Encode())
		}
	}
	checkClean(t, b, s, "status of 500")
}

func TestUIToken(t *testing.T) {
	const token = "s3cret-t0ken"
	snap := uiFixture(time.Now().UTC())
	s := newUIServer(t, token, snap)
	b := browsertest.New(t)
	b.Run(chromedp.Navigate(s.URL + uiPrefix + "/ui/"))
	b.WaitFor("the token form", `!document.querySelector('[data-testid="token-form"]').hidden`)
	// A wrong token is refused, and the form asks again.
	b.Run(
		chromedp.SendKeys(chromedp.CSS(`[data-testid="token-input"]`), "wrong"),
		chromedp.Click(chromedp.CSS(`[data-testid="token-submit"]`)),
	)
	b.WaitFor("the form again", `!document.querySelector('[data-testid="token-form"]').hidden &&
		document.querySelector('[data-testid="token-message"]').textContent.includes('refused')`)
	b.Run(
		chromedp.SendKeys(chromedp.CSS(`[data-testid="token-input"]`), token),
		chromedp.Click(chromedp.CSS(`[data-testid="token-submit"]`)),
	)
	waitValue(b, "total-requests", "123456")
	if got := browsertest.Eval[bool](b, `document.querySelector('[data-testid="token-form"]').hidden`); !got {
		t.Error("the token form is still shown after the data came")
	}
	b.Run(
		chromedp.SetValue(chromedp.CSS(`[data-testid="purge-value"]`), "/x"),
		chromedp.Click(chromedp.CSS(`[data-testid="purge-submit"]`)),
	)
	b.WaitFor("the purge's answer", `document.querySelector('[data-testid="purge-result"]').dataset.value === "3"`)

	if got := browsertest.Eval[string](b, `sessionStorage.getItem('gateway-admin-token')`); got != token {
		t.Errorf("sessionStorage holds %q; want the token", got)
	}
	if got := browsertest.Eval[int](b, `localStorage.length`); got != 0 {
		t.Errorf("localStorage holds %d items; want none", got)
	}
	s.mu.Lock()
	auths, urls, purgeAuth := s.auths, s.apiURLs, s.purgeAuth
	s.mu.Unlock()
	sawToken := false
	for _, a := range auths {
		if a == "Bearer "+token {
			sawToken = true
		} else if a != "" && a != "Bearer wrong" {
			t.Errorf("server saw Authorization %q", a)
		}
	}
	if !sawToken {
		t.Error("server never saw the token as a Bearer header")
	}
	if len(purgeAuth) != 1 || purgeAuth[0] != "Bearer "+token {
		t.Errorf("purge Authorization %q; want the token", purgeAuth)
	}
	for _, u := range urls {
		if strings.Contains(u, token) {
			t.Errorf("the token is in the URL %s", u)
		}
	}
	for _, r := range b.Requests() {
		if strings.Contains(r.URL, token) {
			t.Errorf("the token is in the URL %s", r.URL)
		}
	}
	// The 401s before the token are the expected failed loads.
	checkClean(t, b, s, "status of 401")
}

// TestUIWithoutOptionalPanels: a gateway without a cache, jobs, tunnels
// or a reload, just started (no history), hides those panels and shows
// no placeholder of a missing value.
func TestUIWithoutOptionalPanels(t *testing.T) {
	snap := uiFixture(time.Now().UTC())
	snap.Cache, snap.Jobs, snap.WebSocket, snap.Gateway.LastReload = nil, nil, nil, nil
	snap.History = &History{Gateway: []Point{}, Routes: map[string][]Point{}}
	snap.Upstreams[0].Targets = snap.Upstreams[0].Targets[:1]
	s := newUIServer(t, "", snap)
	b := browsertest.New(t)
	openUI(t, b, s, snap.Now.Totals.Requests)
	hidden := browsertest.Eval[map[string]bool](b, `Object.fromEntries(['cache-off','purge-form','jobs-section','ws-section']
		.map(id => [id, document.querySelector('[data-testid="'+id+'"]').hidden]))`)
	for id, want := range map[string]bool{"cache-off": false, "purge-form": true, "jobs-section": true, "ws-section": true} {
		if hidden[id] != want {
			t.Errorf("%s hidden: %v; want %v", id, hidden[id], want)
		}
	}
	if got := browsertest.Eval[string](b, `document.querySelector('[data-testid="last-reload"]').dataset.state`); got != "none" {
		t.Errorf("last-reload state %q; want none", got)
	}
	s.ticks <- uiTick(snap)
	b.WaitFor("the first point", `document.querySelector('[data-testid="chart-rps"]').dataset.points === "1"`)
	checkClean(t, b, s)
}

// TestUIGivesUpAMuteStream: a stream that opens but never speaks (a
// proxy that buffers it) does not leave the page empty: it polls.
func TestUIGivesUpAMuteStream(t *testing.T) {
	snap := uiFixture(time.Now().UTC())
	s := newUIServer(t, "", snap)
	s.set(func() { s.eventsMute = true })
	b := browsertest.New(t)
	openUI(t, b, s, snap.Now.Totals.Requests)
	if got := browsertest.Eval[string](b, `document.querySelector('[data-testid="conn-state"]').dataset.state`); got != "polling" {
		t.Errorf("conn-state %q; want polling", got)
	}
	checkClean(t, b, s)
}

// TestUIReadsCRLFEvents: lines may end with CRLF, and a read may end
// between the CR and the LF; an event is still one event.
func TestUIReadsCRLFEvents(t *testing.T) {
	snap := uiFixture(time.Now().UTC())
	s := newUIServer(t, "", snap)
	s.set(func() { s.eventsCRLF = true })
	b := browsertest.New(t)
	openUI(t, b, s, snap.Now.Totals.Requests)
	s.ticks <- uiTick(snap)
	waitValue(b, "total-requests", "123476")
	if got := browsertest.Eval[string](b, `document.querySelector('[data-testid="chart-rps"]').dataset.points`); got != "6" {
		t.Errorf("after a tick chart-rps shows %s points; want 6", got)
	}
	if got := browsertest.Eval[string](b, `document.querySelector('[data-testid="conn-state"]').dataset.state`); got != "live" {
		t.Errorf("conn-state %q; want live", got)
	}
	checkClean(t, b, s)
}

func TestUIFallsBackToPolling(t *testing.T) {
	snap := uiFixture(time.Now().UTC())
	s := newUIServer(t, "", snap)
	s.set(func() { s.eventsDown = true })
	b := browsertest.New(t)
	openUI(t, b, s, snap.Now.Totals.Requests)
	next := uiFixture(snap.Time.Add(2 * time.Second))
	next.Now.Totals.Requests = 130000
	s.set(func() { s.snap = next })
	waitValue(b, "total-requests", "130000")
	if got := browsertest.Eval[string](b, `document.querySelector('[data-testid="conn-state"]').dataset.state`); got != "polling" {
		t.Errorf("conn-state %q; want polling", got)
	}
	checkClean(t, b, s, "status of 503")
}
