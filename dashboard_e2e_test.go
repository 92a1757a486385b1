package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gateway/internal/browsertest"
)

// The dashboard against a real gateway: a child process with a caching
// route over two origins, traffic running, the page in Chromium. What the
// page shows must be what /metrics says, a purge from its form must
// empty the cache's entry, and a target that dies must turn red within a
// health-check interval and a tick.

const (
	dashToken    = "e2e-admin-token"
	dashInterval = 300 * time.Millisecond // the active health check's
	// dashTick bounds "within one update": the page's stream ticks once a
	// second; the rest is the sample's and the browser's slack.
	dashTick = 3 * time.Second
)

func dashOrigin(t *testing.T) *httptest.Server {
	body := strings.Repeat("cached body ", 200)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.Write([]byte("ok"))
			return
		}
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s", r.URL.Path, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// dashScrape sums a counter's series in the admin listener's /metrics.
func dashScrape(t *testing.T, adm, name string, labels ...string) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+adm+"/ops/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+dashToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ops/metrics: %d", resp.StatusCode)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// dashStableScrape scrapes until two scrapes a little apart agree, so a
// request whose answer reached the client but whose count is not yet
// added is not missed.
func dashStableScrape(t *testing.T, adm, name string, labels ...string) float64 {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	prev := dashScrape(t, adm, name, labels...)
	for range tick.C {
		cur := dashScrape(t, adm, name, labels...)
		if cur == prev {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never settled: %v then %v", name, prev, cur)
		}
		prev = cur
	}
	return prev
}

func dashPageValue(t *testing.T, b *browsertest.Browser, id string) float64 {
	t.Helper()
	s := browsertest.Eval[string](b, fmt.Sprintf(`document.querySelector('[data-testid=%q]')?.dataset.value ?? ''`, id))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s: data-value %q: %v", id, s, err)
	}
	return v
}

func dashCacheStatus(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return resp.Header.Get("Cache-Status")
}

// dashWaitHit GETs url until the cache answers it: an entry is stored
// just after its first answer reaches the client, so the very next
// request may still find the fill in progress.
func dashWaitHit(t *testing.T, url string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for range tick.C {
		cs := dashCacheStatus(t, url)
		if strings.Contains(cs, "; hit") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: Cache-Status %q; want a hit by now", url, cs)
		}
	}
}

func TestDashboardE2E(t *testing.T) {
	b := browsertest.New(t)
	keep, doomed := dashOrigin(t), dashOrigin(t)
	c := startChild(t, "run", writeConfig(t, fmt.Sprintf(`listeners:
  - address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
  token: %s
  path_prefix: /ops
upstreams:
  app:
    targets: [%s, %s]
    health_check:
      path: /health
      interval: %s
      timeout: 200ms
routes:
  - name: items
    path: /
    upstream: app
    cache:
      enabled: true
cache:
  max_size: 16MiB
`, dashToken, keep.URL, doomed.URL, dashInterval)))
	gw, adm := c.waitAddrs(t, true)
	item := "http://" + gw + "/items/1"
	dashWaitHit(t, item)

	// Traffic: a bounded loop, paced, over ten keys.
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := range 4000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			resp, err := http.Get(fmt.Sprintf("http://%s/items/%d", gw, i%10))
			if err == nil {
				resp.Body.Close()
			}
		}
	}()
	stopTraffic := sync.OnceFunc(func() { close(stop); traffic.Wait() })
	t.Cleanup(stopTraffic)

	// The page asks for the token, then shows live data.
	b.Run(chromedp.Navigate("http://" + adm + "/ops/ui/"))
	b.WaitFor("the token form", `!document.querySelector('[data-testid="token-form"]').hidden`)
	b.Run(
		chromedp.SendKeys(chromedp.CSS(`[data-testid="token-input"]`), dashToken),
		chromedp.Click(chromedp.CSS(`[data-testid="token-submit"]`)),
	)
	b.WaitFor("live data", `document.querySelector('[data-testid="conn-state"]').dataset.state === 'live' &&
		Number(document.querySelector('[data-testid="total-requests"]').dataset.value) > 2`)

	// While traffic runs: a scrape taken between two ticks lies between
	// the page's value before it and the page's value one update later.
	before := dashPageValue(t, b, "total-requests")
	scraped := dashScrape(t, adm, "gateway_requests_total")
	if scraped < before {
		t.Errorf("scrape %v < the page's total %v shown before it", scraped, before)
	}
	b.WaitWithin(dashTick, fmt.Sprintf("the page's total to reach the scrape's %v", scraped),
		fmt.Sprintf(`Number(document.querySelector('[data-testid="total-requests"]').dataset.value) >= %v`, scraped))

	// Traffic stopped: the page shows exactly what /metrics says, within
	// one update.
	stopTraffic()
	for _, m := range []struct {
		id, metric string
		labels     []string
	}{
		{"total-requests", "gateway_requests_total", nil},
		{"route-items-requests", "gateway_requests_total", []string{`route="items"`}},
		{"total-hits", "gateway_cache_hits_total", nil},
		{"route-items-hits", "gateway_cache_hits_total", []string{`route="items"`}},
	} {
		want := dashStableScrape(t, adm, m.metric, m.labels...)
		b.WaitWithin(dashTick, fmt.Sprintf("%s = %v", m.id, want),
			fmt.Sprintf(`document.querySelector('[data-testid=%q]')?.dataset.value === %q`, m.id, strconv.FormatFloat(want, 'f', -1, 64)))
	}

	// Bytes saved by the cache as /metrics counts them, and the route's
	// most hit keys, which the cache counts while the page watches.
	want := dashStableScrape(t, adm, "gateway_cache_hit_bytes_total")
	if want == 0 {
		t.Error("gateway_cache_hit_bytes_total is 0 after the hits")
	}
	b.WaitWithin(dashTick, fmt.Sprintf("total-cache-saved-bytes = %v", want),
		fmt.Sprintf(`document.querySelector('[data-testid="total-cache-saved-bytes"]')?.dataset.value === %q`, strconv.FormatFloat(want, 'f', -1, 64)))
	b.WaitWithin(dashTick, "a top key of the items route",
		`Number(document.querySelector('[data-testid="cache-items-top-hits-0"]')?.dataset.value) > 0`)
	if key := browsertest.Eval[string](b, `document.querySelector('[data-testid="cache-items-top-hits-0"]').closest('tr, li').textContent`); !strings.Contains(key, "/items/") {
		t.Errorf("the top hit key reads %q; want an /items/ URL", key)
	}

	// A purge from the form empties the entry: the next request misses.
	dashWaitHit(t, item)
	b.Run(
		chromedp.Evaluate[chromedp.Void](`(() => { const k = document.querySelector('[data-testid="purge-kind"]'); k.value = 'url'; k.dispatchEvent(new Event('change')) })()`),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="purge-value"]`), item),
		chromedp.Click(chromedp.CSS(`[data-testid="purge-submit"]`)),
	)
	b.WaitFor("the purge's answer", `document.querySelector('[data-testid="purge-result"]').dataset.status !== undefined`)
	if st, n := browsertest.Eval[string](b, `document.querySelector('[data-testid="purge-result"]').dataset.status`), dashPageValue(t, b, "purge-result"); st != "200" || n < 1 {
		t.Errorf("purge answered %s, %v purged (%s); want 200 and at least 1", st, n,
			browsertest.Eval[string](b, `document.querySelector('[data-testid="purge-result"]').textContent`))
	}
	if cs := dashCacheStatus(t, item); !strings.Contains(cs, "fwd=") {
		t.Errorf("after the purge, Cache-Status %q; want a miss (fwd=...)", cs)
	}

	// A target that dies turns red within a health-check interval and one
	// update.
	b.WaitFor("the second target up", `document.querySelector('[data-testid="target-app-1"]')?.dataset.state === 'up'`)
	doomed.Close()
	took := b.WaitWithin(dashInterval+dashTick, "the second target down",
		`document.querySelector('[data-testid="target-app-1"]')?.dataset.state === 'down'`)
	t.Logf("the dead target showed down after %v", took)
	color := browsertest.Eval[string](b, `getComputedStyle(document.querySelector('[data-testid="target-app-1"]')).color`)
	var r, g, bl int
	if _, err := fmt.Sscanf(color, "rgb(%d, %d, %d)", &r, &g, &bl); err != nil || r < 150 || r-g < 80 || r-bl < 80 {
		t.Errorf("the down target's colour is %s; want red", color)
	}
	b.WaitWithin(dashInterval+dashTick, "the dead target's last error",
		`(document.querySelector('[data-testid="target-app-1-last-error"]')?.textContent || '').includes('refused')`)
	if st := browsertest.Eval[string](b, `document.querySelector('[data-testid="target-app-0"]').dataset.state`); st != "up" {
		t.Errorf("the live target is %s; want up", st)
	}

	b.Screenshot("dashboard-e2e-1280.png")
	b.CheckOrigin("http://" + adm)
	if bad := browsertest.Eval[string](b, `(document.body.innerText.match(/\b(null|undefined|NaN|Infinity)\b|\[object Object\]/) || [''])[0]`); bad != "" {
		t.Errorf("the page shows %q", bad)
	}
	for _, p := range b.Problems() {
		if !strings.Contains(p.Text, "status of 401") {
			t.Errorf("page problem: %s: %s (%s)", p.Kind, p.Text, p.URL)
		}
	}
}
