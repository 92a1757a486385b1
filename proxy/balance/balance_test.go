package balance_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gateway/proxy/balance"
)

// fakeClock is an injectable clock that only moves when told to.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time            { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration)   { c.ns.Add(int64(d)) }
func quiet() *slog.Logger                      { return slog.New(slog.DiscardHandler) }
func get(path string) *http.Request            { return httptest.NewRequest(http.MethodGet, path, nil) }
func urlsOf(ts []*balance.Target) (s []string) { return appendURLs(s, ts) }

func appendURLs(s []string, ts []*balance.Target) []string {
	for _, t := range ts {
		s = append(s, t.URL.String())
	}
	return s
}

func targetURLs(n int) []*url.URL {
	us := make([]*url.URL, n)
	for i := range us {
		us[i] = mustURL(fmt.Sprintf("http://10.0.0.%d:8080", i+1))
	}
	return us
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func newPool(t testing.TB, o balance.Options) *balance.Pool {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	p, err := balance.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// countPicks picks n times and tallies the targets by URL; nil picks are
// tallied under "".
func countPicks(p *balance.Pool, n int, req func(i int) *http.Request, exclude *balance.Target) map[string]int {
	got := map[string]int{}
	for i := range n {
		var r *http.Request
		if req != nil {
			r = req(i)
		}
		if t := p.Pick(r, exclude); t != nil {
			got[t.URL.String()]++
		} else {
			got[""]++
		}
	}
	return got
}

// takeOut fails t until passive health removes it.
func takeOut(t *balance.Target, maxFails int) {
	for range maxFails {
		t.ReportFailure()
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestNewRejects(t *testing.T) {
	good := targetURLs(2)
	tests := []struct {
		name string
		opts balance.Options
		want string
	}{
		{"no targets", balance.Options{}, "no targets"},
		{"nil target", balance.Options{Targets: []*url.URL{nil}}, "balance: Targets[0]: missing"},
		{"relative target", balance.Options{Targets: []*url.URL{mustURL("/x")}}, "balance: Targets[0]: scheme must be http or https (want e.g. http://127.0.0.1:9000)"},
		{"other scheme", balance.Options{Targets: []*url.URL{good[0], mustURL("ftp://a")}}, "balance: Targets[1]: scheme must be http or https (want e.g. http://127.0.0.1:9000)"},
		{"no host", balance.Options{Targets: []*url.URL{mustURL("http://:80")}}, "balance: Targets[0]: no host (want e.g. http://127.0.0.1:9000)"},
		{"duplicate target", balance.Options{Targets: []*url.URL{good[0], mustURL(good[0].String())}}, "duplicate"},
		{"unknown policy", balance.Options{Targets: good, Policy: "random"}, `Policy: invalid value "random" (want round_robin, least_requests or hash)`},
		{"hash without hash_on", balance.Options{Targets: good, Policy: "hash"}, "HashOn"},
		{"hash_on unknown source", balance.Options{Targets: good, Policy: "hash", HashOn: "query:x"}, "HashOn"},
		{"hash_on header without name", balance.Options{Targets: good, Policy: "hash", HashOn: "header:"}, "HashOn"},
		{"hash_on cookie without name", balance.Options{Targets: good, Policy: "hash", HashOn: "cookie"}, "HashOn"},
		{"hash_on bad header name", balance.Options{Targets: good, Policy: "hash", HashOn: "header:X User"}, "HashOn"},
		{"negative max_fails", balance.Options{Targets: good, MaxFails: -1}, "balance: MaxFails: -1: must not be negative"},
		{"negative cool_down", balance.Options{Targets: good, CoolDown: -time.Second}, "cool_down"},
		{"negative interval", balance.Options{Targets: good, HealthPath: "/h", HealthInterval: -time.Second}, "interval"},
		{"negative timeout", balance.Options{Targets: good, HealthPath: "/h", HealthTimeout: -time.Second}, "timeout"},
		{"relative health path", balance.Options{Targets: good, HealthPath: "healthz"}, "HealthPath"},
		{"absolute health URL", balance.Options{Targets: good, HealthPath: "http://x/healthz"}, "HealthPath"},
		{"health URL without scheme", balance.Options{Targets: good, HealthPath: "//x/healthz"}, "HealthPath"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := balance.New(tc.opts)
			if err == nil {
				p.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	for _, o := range []balance.Options{
		{Targets: targetURLs(1)},
		{Targets: targetURLs(2), Policy: "round_robin", HashOn: "ignored"},
		{Targets: targetURLs(2), Policy: "least_requests"},
		{Targets: targetURLs(2), Policy: "hash", HashOn: "path"},
		{Targets: targetURLs(2), Policy: "hash", HashOn: "header:x-user"},
		{Targets: targetURLs(2), Policy: "hash", HashOn: "cookie:session_id"},
		{Targets: targetURLs(2), MaxFails: 3, HealthPath: "/healthz?full=1"},
	} {
		if _, err := balance.New(o); err != nil {
			t.Errorf("New(%+v): %v", o, err)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name string
		down []int // indexes taken out before picking
		want []int // picks per target out of 300
	}{
		{"all healthy", nil, []int{100, 100, 100}},
		{"first down", []int{0}, []int{0, 150, 150}},
		{"middle down", []int{1}, []int{150, 0, 150}},
		{"two down", []int{0, 2}, []int{0, 300, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, balance.Options{Targets: targetURLs(3), MaxFails: 1, Now: newClock().Now})
			ts := p.Targets()
			for _, i := range tc.down {
				takeOut(ts[i], 1)
			}
			got := countPicks(p, 300, nil, nil)
			for i, tg := range ts {
				if n := got[tg.URL.String()]; n != tc.want[i] {
					t.Errorf("target %d picked %d times, want %d (all: %v)", i, n, tc.want[i], got)
				}
			}
		})
	}
}

func TestLeastRequests(t *testing.T) {
	tests := []struct {
		name     string
		inFlight []int
		down     []int
		want     []int // acceptable picks
	}{
		{"fewest wins", []int{3, 1, 2}, nil, []int{1}},
		{"idle wins", []int{5, 4, 0}, nil, []int{2}},
		{"tie among least", []int{2, 1, 1}, nil, []int{1, 2}},
		{"unhealthy least skipped", []int{3, 0, 2}, []int{1}, []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, balance.Options{Targets: targetURLs(3), Policy: "least_requests", MaxFails: 1})
			ts := p.Targets()
			for i, n := range tc.inFlight {
				for range n {
					ts[i].Begin()
				}
			}
			for _, i := range tc.down {
				takeOut(ts[i], 1)
			}
			for range 20 {
				got := p.Pick(get("/"), nil)
				ok := false
				for _, i := range tc.want {
					ok = ok || got == ts[i]
				}
				if !ok {
					t.Fatalf("picked %v, want one of targets %v", got.URL, tc.want)
				}
			}
		})
	}

	t.Run("ties spread when idle", func(t *testing.T) {
		p := newPool(t, balance.Options{Targets: targetURLs(3), Policy: "least_requests"})
		got := countPicks(p, 300, nil, nil)
		for _, u := range urlsOf(p.Targets()) {
			if got[u] != 100 {
				t.Errorf("idle picks %v, want 100 each", got)
			}
		}
	})

	t.Run("begin and done balance load", func(t *testing.T) {
		p := newPool(t, balance.Options{Targets: targetURLs(3), Policy: "least_requests"})
		// Requests that never finish must be spread one per target.
		held := map[*balance.Target]int{}
		for range 9 {
			tg := p.Pick(get("/"), nil)
			tg.Begin()
			held[tg]++
		}
		for tg, n := range held {
			if n != 3 {
				t.Errorf("%s holds %d requests, want 3", tg.URL, n)
			}
			if s := tg.Status(); s.InFlight != 3 {
				t.Errorf("%s status in_flight %d, want 3", tg.URL, s.InFlight)
			}
			for range n {
				tg.Done()
			}
		}
	})
}

func TestHashSources(t *testing.T) {
	tests := []struct {
		hashOn string
		req    func(key string) *http.Request
	}{
		{"header:X-User", func(k string) *http.Request {
			r := get("/any/" + k + "/path")
			r.Header.Set("X-User", k)
			return r
		}},
		{"cookie:sid", func(k string) *http.Request {
			r := get("/other")
			r.Header.Add("Cookie", `theme=dark; sid="`+k+`"; lang=en`)
			return r
		}},
		{"path", func(k string) *http.Request {
			r := get("/users/" + k)
			r.Header.Set("X-User", "same-for-all")
			return r
		}},
	}
	for _, tc := range tests {
		t.Run(tc.hashOn, func(t *testing.T) {
			p := newPool(t, balance.Options{Targets: targetURLs(4), Policy: "hash", HashOn: tc.hashOn})
			used := map[*balance.Target]bool{}
			for i := range 200 {
				key := fmt.Sprintf("key-%d", i)
				first := p.Pick(tc.req(key), nil)
				for range 3 {
					if again := p.Pick(tc.req(key), nil); again != first {
						t.Fatalf("key %s went to %s then %s", key, first.URL, again.URL)
					}
				}
				used[first] = true
			}
			if len(used) != 4 {
				t.Errorf("200 keys used %d of 4 targets", len(used))
			}
		})
	}

	t.Run("cookie among several headers", func(t *testing.T) {
		p := newPool(t, balance.Options{Targets: targetURLs(4), Policy: "hash", HashOn: "cookie:sid"})
		a := get("/")
		a.Header.Add("Cookie", "a=1")
		a.Header.Add("Cookie", "sid=xyz")
		b := get("/elsewhere")
		b.AddCookie(&http.Cookie{Name: "sid", Value: "xyz"})
		if p.Pick(a, nil) != p.Pick(b, nil) {
			t.Error("same cookie value in different layouts went to different targets")
		}
	})
}

func TestHashMissingKeyFallsBack(t *testing.T) {
	for _, hashOn := range []string{"header:X-User", "cookie:sid"} {
		t.Run(hashOn, func(t *testing.T) {
			p := newPool(t, balance.Options{Targets: targetURLs(3), Policy: "hash", HashOn: hashOn})
			got := countPicks(p, 300, func(int) *http.Request { return get("/same") }, nil)
			for _, u := range urlsOf(p.Targets()) {
				if got[u] != 100 {
					t.Fatalf("keyless picks %v, want 100 each", got)
				}
			}
		})
	}
}

func hashPick(p *balance.Pool, key string) string {
	r := get("/")
	r.Header.Set("X-Key", key)
	return p.Pick(r, nil).URL.String()
}

func TestHashRemapping(t *testing.T) {
	const keys = 10000
	all := targetURLs(5)
	opts := func(us []*url.URL) balance.Options {
		return balance.Options{Targets: us, Policy: "hash", HashOn: "header:X-Key"}
	}

	t.Run("adding a target", func(t *testing.T) {
		before := newPool(t, opts(all[:4]))
		after := newPool(t, opts(all))
		added := all[4].String()
		moved := 0
		for i := range keys {
			k := fmt.Sprintf("user-%d", i)
			a, b := hashPick(before, k), hashPick(after, k)
			if a == b {
				continue
			}
			moved++
			if b != added {
				t.Fatalf("key %s moved from %s to %s, not to the new target", k, a, b)
			}
		}
		f := float64(moved) / keys
		t.Logf("%.3f of keys moved", f)
		if f < 0.10 || f > 0.30 {
			t.Errorf("%.3f of keys moved, want about 0.2", f)
		}
	})

	t.Run("removing a target", func(t *testing.T) {
		before := newPool(t, opts(all[:4]))
		after := newPool(t, opts([]*url.URL{all[0], all[1], all[3]}))
		removed := all[2].String()
		moved := 0
		for i := range keys {
			k := fmt.Sprintf("user-%d", i)
			a, b := hashPick(before, k), hashPick(after, k)
			if a != removed && a != b {
				t.Fatalf("key %s moved from %s to %s though its target stayed", k, a, b)
			}
			if a == removed {
				moved++
			}
		}
		if moved == 0 {
			t.Error("removed target owned no keys")
		}
	})

	t.Run("configuration order does not matter", func(t *testing.T) {
		a := newPool(t, opts(all))
		b := newPool(t, opts([]*url.URL{all[3], all[1], all[4], all[0], all[2]}))
		for i := range 1000 {
			k := fmt.Sprintf("user-%d", i)
			if hashPick(a, k) != hashPick(b, k) {
				t.Fatalf("key %s maps differently when targets are reordered", k)
			}
		}
	})
}

func TestHashUnhealthyWalksAndReturns(t *testing.T) {
	clock := newClock()
	p := newPool(t, balance.Options{Targets: targetURLs(4), Policy: "hash", HashOn: "header:X-Key",
		MaxFails: 1, CoolDown: time.Minute, Now: clock.Now})
	byURL := map[string]*balance.Target{}
	for _, tg := range p.Targets() {
		byURL[tg.URL.String()] = tg
	}
	home := map[string]string{}
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i)
		home[k] = hashPick(p, k)
	}
	down := byURL[home["k0"]]
	takeOut(down, 1)
	for k, h := range home {
		got := hashPick(p, k)
		if got == down.URL.String() {
			t.Fatalf("key %s still goes to the unhealthy target", k)
		}
		if h != down.URL.String() && got != h {
			t.Fatalf("key %s moved from healthy %s to %s", k, h, got)
		}
	}
	clock.Advance(time.Minute)
	// Half-open, it takes one of its keys as the probe; the probe's
	// success brings every key home.
	if got := hashPick(p, "k0"); got != down.URL.String() {
		t.Fatalf("probe: key k0 goes to %s, want %s", got, down.URL)
	}
	down.ReportSuccess()
	for k, h := range home {
		if got := hashPick(p, k); got != h {
			t.Fatalf("after recovery key %s goes to %s, want %s", k, got, h)
		}
	}
}

func TestPassiveHealth(t *testing.T) {
	const maxFails = 3
	type step struct {
		op          string // "fail", "ok", "tick" (400ms), "advance" (the longest cool-down)
		wantHealthy bool   // target 0 after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"max fails take it out", []step{
			{"fail", true}, {"fail", true}, {"fail", false},
		}},
		{"success resets the count", []step{
			{"fail", true}, {"fail", true}, {"ok", true}, {"fail", true}, {"fail", true}, {"fail", false},
		}},
		{"back after cool-down", []step{
			{"fail", true}, {"fail", true}, {"fail", false}, {"advance", true},
		}},
		{"half-open: one failure after cool-down takes it out", []step{
			{"fail", true}, {"fail", true}, {"fail", false}, {"advance", true}, {"fail", false}, {"advance", true},
		}},
		{"success after cool-down restores full budget", []step{
			{"fail", true}, {"fail", true}, {"fail", false}, {"advance", true}, {"ok", true},
			{"fail", true}, {"fail", true}, {"fail", false},
		}},
		{"failures during cool-down do not extend it", []step{
			// The first cool-down is BaseCoolDown, 1s.
			{"fail", true}, {"fail", true}, {"fail", false}, {"tick", false},
			{"fail", false}, {"fail", false}, {"tick", false}, {"tick", true},
		}},
		{"time between failures does not matter", []step{
			{"fail", true}, {"tick", true}, {"fail", true}, {"tick", true}, {"fail", false},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			p := newPool(t, balance.Options{Targets: targetURLs(2), MaxFails: maxFails, CoolDown: 10 * time.Second, Now: clock.Now})
			tg := p.Targets()[0]
			for i, s := range tc.steps {
				switch s.op {
				case "fail":
					tg.ReportFailure()
				case "tick":
					clock.Advance(400 * time.Millisecond)
				case "ok":
					tg.ReportSuccess()
				case "advance":
					clock.Advance(10 * time.Second)
				}
				if got := tg.Healthy(); got != s.wantHealthy {
					t.Fatalf("step %d (%s): healthy %v, want %v", i, s.op, got, s.wantHealthy)
				}
				st := tg.Status()
				if st.Healthy != s.wantHealthy || st.DownUntil.IsZero() == !s.wantHealthy {
					t.Fatalf("step %d (%s): status %+v", i, s.op, st)
				}
				picked := countPicks(p, 10, nil, nil)
				if n := picked[tg.URL.String()]; (n > 0) != s.wantHealthy {
					t.Fatalf("step %d (%s): picked %d of 10 times", i, s.op, n)
				}
			}
		})
	}

	t.Run("disabled with max_fails 0", func(t *testing.T) {
		p := newPool(t, balance.Options{Targets: targetURLs(1)})
		tg := p.Targets()[0]
		takeOut(tg, 100)
		if !tg.Healthy() || p.Pick(get("/"), nil) != tg {
			t.Error("target went out with passive health off")
		}
		if got := tg.Status().ConsecutiveFails; got != 100 {
			t.Errorf("consecutive fails %d, want 100", got)
		}
	})

	t.Run("all out", func(t *testing.T) {
		clock := newClock()
		for _, policy := range []string{"round_robin", "least_requests", "hash"} {
			p := newPool(t, balance.Options{Targets: targetURLs(3), Policy: policy, HashOn: "path",
				MaxFails: 2, CoolDown: time.Second, Now: clock.Now})
			if !p.Healthy() {
				t.Fatalf("%s: fresh pool not healthy", policy)
			}
			for _, tg := range p.Targets() {
				takeOut(tg, 2)
			}
			if p.Healthy() {
				t.Errorf("%s: Healthy with every target out", policy)
			}
			// A first attempt gets a panic pick, a retry nothing.
			got := p.Pick(get("/x"), nil)
			if got == nil {
				t.Fatalf("%s: got no pick with every target out; want a panic pick", policy)
			}
			if again := p.Pick(get("/x"), got); again != nil {
				t.Errorf("%s: retry picked %s with every target out; want nil", policy, again.URL)
			}
			clock.Advance(time.Second)
			if !p.Healthy() || p.Pick(get("/x"), nil) == nil {
				t.Errorf("%s: not back after cool-down", policy)
			}
		}
	})
}

func TestPassiveConcurrent(t *testing.T) {
	clock := newClock()
	p := newPool(t, balance.Options{Targets: targetURLs(3), Policy: "least_requests", MaxFails: 5, CoolDown: time.Second, Now: clock.Now})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				tg := p.Pick(get("/"), nil)
				if tg == nil {
					clock.Advance(time.Second)
					continue
				}
				tg.Begin()
				if (i+g)%3 == 0 {
					tg.ReportFailure()
				} else {
					tg.ReportSuccess()
				}
				tg.Done()
				_ = tg.Status()
			}
		})
	}
	wg.Wait()
	for _, tg := range p.Targets() {
		if n := tg.Status().InFlight; n != 0 {
			t.Errorf("%s in flight %d after all done", tg.URL, n)
		}
	}
}

func TestExclude(t *testing.T) {
	for _, policy := range []string{"round_robin", "least_requests", "hash"} {
		t.Run(policy, func(t *testing.T) {
			clock := newClock()
			p := newPool(t, balance.Options{Targets: targetURLs(3), Policy: policy, HashOn: "path",
				MaxFails: 1, CoolDown: time.Minute, Now: clock.Now})
			ts := p.Targets()
			req := func(i int) *http.Request { return get(fmt.Sprintf("/p/%d", i)) }
			for _, ex := range ts {
				got := countPicks(p, 300, req, ex)
				if got[ex.URL.String()] != 0 || got[""] != 0 {
					t.Fatalf("excluding %s: picks %v", ex.URL, got)
				}
			}
			// With target 1 out, excluding target 0 leaves only target 2.
			takeOut(ts[1], 1)
			got := countPicks(p, 50, req, ts[0])
			if got[ts[2].URL.String()] != 50 {
				t.Fatalf("with one other healthy target: picks %v", got)
			}
			takeOut(ts[2], 1)
			if tg := p.Pick(req(0), ts[0]); tg != nil {
				t.Fatalf("picked %s though the excluded target is the only healthy one", tg.URL)
			}
			if tg := p.Pick(req(0), nil); tg != ts[0] {
				t.Fatalf("without exclusion picked %v, want the only healthy target", tg)
			}
		})
	}

	t.Run("single target", func(t *testing.T) {
		p := newPool(t, balance.Options{Targets: targetURLs(1)})
		tg := p.Pick(nil, nil)
		if tg == nil || p.Pick(nil, tg) != nil {
			t.Error("single target: want it first and nil on retry")
		}
	})
}

func TestStatusJSON(t *testing.T) {
	clock := newClock()
	p := newPool(t, balance.Options{Targets: targetURLs(1), MaxFails: 1, CoolDown: time.Minute, Now: clock.Now})
	tg := p.Targets()[0]
	tg.Begin()
	defer tg.Done()
	b, _ := json.Marshal(tg.Status())
	want := `{"url":"http://10.0.0.1:8080","healthy":true,"in_flight":1,"consecutive_fails":0,"active_ok":true,"active_check":"off"}`
	if string(b) != want {
		t.Errorf("healthy status\n got %s\nwant %s", b, want)
	}
	tg.ReportFailure()
	var m map[string]any
	b, _ = json.Marshal(tg.Status())
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["healthy"] != false || m["consecutive_fails"] != 1.0 || m["down_until"] == nil {
		t.Errorf("failed status %s", b)
	}
}

// healthServer answers checks with a status that the test can change and
// counts the checks it has seen.
type healthServer struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int64
	mu     sync.Mutex
	uris   []string
}

func newHealthServer(t *testing.T, status int) *healthServer {
	hs := &healthServer{}
	hs.status.Store(int32(status))
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.hits.Add(1)
		hs.mu.Lock()
		hs.uris = append(hs.uris, r.URL.RequestURI())
		hs.mu.Unlock()
		code := int(hs.status.Load())
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "http://127.0.0.1:1/unreachable")
		}
		w.WriteHeader(code)
		io.WriteString(w, strings.Repeat("x", 1000))
	}))
	t.Cleanup(hs.Close)
	return hs
}

// lockedLog collects log messages from concurrent goroutines.
type lockedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestActiveCheckPending: before its first check ends, a target's
// active_check is pending (and active_ok true, as before).
func TestActiveCheckPending(t *testing.T) {
	p := newPool(t, balance.Options{Targets: targetURLs(1), HealthPath: "/healthz"})
	if st := p.Targets()[0].Status(); st.ActiveCheck != balance.ActivePending || !st.ActiveOK {
		t.Errorf("before any check: active_check %q, active_ok %v; want pending, true", st.ActiveCheck, st.ActiveOK)
	}
}

func TestActiveStatuses(t *testing.T) {
	tests := []struct {
		status int
		up     bool
	}{
		{200, true}, {204, true}, {302, true}, {404, false}, {500, false}, {503, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			hs := newHealthServer(t, tc.status)
			p := newPool(t, balance.Options{Targets: []*url.URL{mustURL(hs.URL)}, HealthPath: "/healthz",
				HealthInterval: 20 * time.Millisecond, HealthTimeout: 2 * time.Second})
			p.Start()
			// A second check has begun only after the first one's verdict
			// was recorded.
			waitFor(t, "two checks", func() bool { return hs.hits.Load() >= 2 })
			tg := p.Targets()[0]
			if got := tg.Healthy(); got != tc.up {
				t.Errorf("healthy %v, want %v", got, tc.up)
			}
			if got := tg.Status().ActiveOK; got != tc.up {
				t.Errorf("active_ok %v, want %v", got, tc.up)
			}
			want := balance.ActiveFailing
			if tc.up {
				want = balance.ActivePassing
			}
			if got := tg.Status().ActiveCheck; got != want {
				t.Errorf("active_check %q, want %q", got, want)
			}
		})
	}
}

func TestActiveUnreachable(t *testing.T) {
	hs := newHealthServer(t, 200)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	p := newPool(t, balance.Options{Targets: []*url.URL{mustURL(hs.URL), mustURL(deadURL)}, HealthPath: "/healthz",
		HealthInterval: 20 * time.Millisecond, HealthTimeout: time.Second})
	p.Start()
	tg := p.Targets()[1]
	waitFor(t, "unreachable target down", func() bool { return !tg.Healthy() })
	if got := p.Pick(nil, nil); got != p.Targets()[0] {
		t.Errorf("picked %v, want the reachable target", got)
	}
}

func TestActiveTransitions(t *testing.T) {
	a := newHealthServer(t, 200)
	b := newHealthServer(t, 200)
	var logs lockedLog
	p := newPool(t, balance.Options{
		Targets:        []*url.URL{mustURL(a.URL), mustURL(b.URL + "/base/")},
		HealthPath:     "/healthz?full=1",
		HealthInterval: 20 * time.Millisecond,
		HealthTimeout:  2 * time.Second,
		HealthClient:   &http.Client{Transport: &http.Transport{}},
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ta, tb := p.Targets()[0], p.Targets()[1]
	if !tb.Healthy() {
		t.Fatal("targets must start healthy before any check")
	}
	p.Start()
	p.Start() // a second Start must not add a second checker

	waitFor(t, "first checks", func() bool { return a.hits.Load() >= 1 && b.hits.Load() >= 1 })
	b.status.Store(500)
	waitFor(t, "target b down", func() bool { return !tb.Healthy() })
	got := countPicks(p, 20, nil, nil)
	if got[ta.URL.String()] != 20 {
		t.Errorf("with b down picks %v", got)
	}
	if !p.Healthy() {
		t.Error("pool unhealthy with a up")
	}

	b.status.Store(200)
	waitFor(t, "target b up", func() bool { return tb.Healthy() })

	b.mu.Lock()
	uri := b.uris[0]
	b.mu.Unlock()
	if uri != "/base/healthz?full=1" {
		t.Errorf("check went to %s, want /base/healthz?full=1", uri)
	}
	out := logs.String()
	for _, want := range []string{"upstream target down", "status 500", "upstream target up", b.URL} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "upstream target down"); n != 1 {
		t.Errorf("logged %d down transitions, want 1:\n%s", n, out)
	}

	p.Close()
	if n := p.HealthGoroutines(); n != 0 {
		t.Errorf("%d health goroutines left after Close", n)
	}
	p.Start()
	if n := p.HealthGoroutines(); n != 0 {
		t.Error("Start after Close started checks")
	}
}

// TestActivePassEndsCoolDown: a passing active check puts a target that
// passive health took out back in rotation at once, with its failure
// count reset, though the clock never reaches the cool-down's end; a
// failing check takes it out.
func TestActivePassEndsCoolDown(t *testing.T) {
	hs := newHealthServer(t, 200)
	clock := newClock()
	p := newPool(t, balance.Options{Targets: []*url.URL{mustURL(hs.URL)}, MaxFails: 1, CoolDown: time.Hour, Now: clock.Now, HealthPath: "/h", HealthInterval: 20 * time.Millisecond})
	tg := p.Targets()[0]
	takeOut(tg, 1)
	if tg.Healthy() {
		t.Fatal("healthy right after max_fails failures")
	}
	p.Start()
	waitFor(t, "a passing check to end the cool-down", tg.Healthy)
	if st := tg.Status(); st.ConsecutiveFails != 0 || !st.DownUntil.IsZero() {
		t.Errorf("after a passing check: got %+v; want no failures, no cool-down", st)
	}
	// The count starts from zero: one failure takes it out again, for
	// the first (shortest) cool-down.
	takeOut(tg, 1)
	if st := tg.Status(); st.Healthy || st.DownUntil.Sub(clock.Now()) != balance.BaseCoolDown {
		t.Errorf("out again: got %+v; want out for %v", st, balance.BaseCoolDown)
	}
	waitFor(t, "the next passing check", tg.Healthy)
	hs.status.Store(500)
	waitFor(t, "active down", func() bool { return !tg.Status().ActiveOK })
	if tg.Healthy() {
		t.Error("healthy with a failing check")
	}
}

func TestCloseAbandonsHangingCheck(t *testing.T) {
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	var logs lockedLog
	p, err := balance.New(balance.Options{Targets: []*url.URL{mustURL(srv.URL)}, HealthPath: "/h",
		HealthInterval: 20 * time.Millisecond, HealthTimeout: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	<-entered
	if p.HealthGoroutines() == 0 {
		t.Fatal("no health goroutines while a check runs")
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a check hung")
	}
	if n := p.HealthGoroutines(); n != 0 {
		t.Errorf("%d health goroutines left after Close", n)
	}
	if !p.Targets()[0].Healthy() || strings.Contains(logs.String(), "down") {
		t.Errorf("an abandoned check marked the target down:\n%s", logs.String())
	}
	p.Close() // idempotent
}

func TestStartWithoutHealthPath(t *testing.T) {
	p := newPool(t, balance.Options{Targets: targetURLs(2)})
	p.Start()
	if n := p.HealthGoroutines(); n != 0 {
		t.Errorf("%d health goroutines without a health path", n)
	}
	p.Close()
	p.Close()
}

func TestPickDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct{ policy, hashOn string }{
		{"round_robin", ""}, {"least_requests", ""}, {"hash", "header:X-User"}, {"hash", "cookie:sid"}, {"hash", "path"},
	} {
		p := newPool(t, balance.Options{Targets: targetURLs(4), Policy: tc.policy, HashOn: tc.hashOn, MaxFails: 1})
		takeOut(p.Targets()[1], 1) // exercise the skip and the clock read
		r := get("/users/42")
		r.Header.Set("X-User", "42")
		r.Header.Set("Cookie", "a=b; sid=42")
		if n := testing.AllocsPerRun(100, func() { p.Pick(r, nil).ReportSuccess() }); n != 0 {
			t.Errorf("%s %s: %v allocations per Pick", tc.policy, tc.hashOn, n)
		}
		// Every target out: the panic pick, and an Acquire that ends in it.
		clock := newClock()
		p = newPool(t, balance.Options{Targets: targetURLs(4), Policy: tc.policy, HashOn: tc.hashOn, MaxFails: 1, Now: clock.Now})
		for _, tg := range p.Targets() {
			takeOut(tg, 1)
		}
		if n := testing.AllocsPerRun(100, func() {
			p.Pick(r, nil)
			tg, a := p.Acquire(r)
			a.Done(balance.Ignored)
			tg.ReportFailure()
		}); n != 0 {
			t.Errorf("%s %s: %v allocations per panic Pick", tc.policy, tc.hashOn, n)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, tc := range []struct{ name, policy, hashOn string }{
		{"round_robin", "round_robin", ""},
		{"least_requests", "least_requests", ""},
		{"hash_header", "hash", "header:X-User"},
		{"hash_cookie", "hash", "cookie:sid"},
		{"hash_path", "hash", "path"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := newPool(b, balance.Options{Targets: targetURLs(8), Policy: tc.policy, HashOn: tc.hashOn, MaxFails: 3})
			r := get("/users/42/profile")
			r.Header.Set("X-User", "user-42")
			r.Header.Set("Cookie", "theme=dark; sid=abcdef; lang=en")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t := p.Pick(r, nil)
					t.Begin()
					t.ReportSuccess()
					t.Done()
				}
			})
		})
	}
}

// TestRetryKeepsRotation: a retry's pick does not turn the round-robin
// rotation, so with one dead target of two, first attempts alternate
// between them instead of every first attempt landing on the dead one.
func TestRetryKeepsRotation(t *testing.T) {
	p := newPool(t, balance.Options{Targets: targetURLs(2)})
	ts := p.Targets()
	dead := ts[0]
	firstOnDead := 0
	for range 20 {
		first := p.Pick(nil, nil)
		if first == dead {
			firstOnDead++
			if retry := p.Pick(nil, first); retry != ts[1] {
				t.Fatalf("retry after %s: got %v; want %s", first.URL, retry, ts[1].URL)
			}
		}
	}
	if firstOnDead != 10 {
		t.Errorf("first attempts on the dead target: got %d of 20; want 10", firstOnDead)
	}
}

// Validate names the field of each problem, in the words the config
// file's checks report.
func TestValidateHashOnAndHealthPath(t *testing.T) {
	err := balance.Options{Policy: "hash", HashOn: "header:X User", HealthPath: "healthz"}.Validate()
	for _, want := range []string{
		`balance: HashOn: invalid header name "X User" in hash_on "header:X User"`,
		`balance: HealthPath: "healthz" must start with "/"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v; want %q", err, want)
		}
	}
}
