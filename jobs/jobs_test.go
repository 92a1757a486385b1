package jobs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func okUpstream(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	})
}

func TestPreferModePassesThroughWithoutPrefer(t *testing.T) {
	leaks(t)
	var hits atomic.Int32
	e := newEnv(t, RouteOptions{Mode: ModePrefer}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "sync")
	}))
	r := e.do("GET", "/x", "")
	if r.code != 200 || string(r.body) != "sync" || hits.Load() != 1 {
		t.Fatalf("got %d %q (hits %d), want the upstream's 200 sync", r.code, r.body, hits.Load())
	}
	// Other preferences do not ask for async.
	r = e.do("GET", "/x", "", "Prefer", "return=minimal, wait=5")
	if r.code != 200 {
		t.Fatalf("Prefer without respond-async: %d, want 200", r.code)
	}
	r = e.do("GET", "/x", "", "Prefer", "wait=5, Respond-Async")
	if r.code != http.StatusAccepted {
		t.Fatalf("Prefer with respond-async among others: %d, want 202", r.code)
	}
}

func TestAcceptedResponse(t *testing.T) {
	leaks(t)
	e := newEnv(t, RouteOptions{Mode: ModePrefer}, okUpstream("done"))
	r := e.do("POST", "/work?a=1", "payload", "Prefer", "respond-async")
	if r.code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", r.code)
	}
	m := r.json(t)
	id, _ := m["id"].(string)
	if !validID(id) {
		t.Fatalf("id %q is not 32 hex digits", id)
	}
	loc := "/_jobs/" + id
	if r.h.Get("Location") != loc || m["location"] != loc || m["status"] != "queued" {
		t.Fatalf("Location %q, body %v; want %s and status queued", r.h.Get("Location"), m, loc)
	}
	if ra, err := strconv.Atoi(r.h.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q, want seconds", r.h.Get("Retry-After"))
	}
	if r.h.Get("Preference-Applied") != "respond-async" {
		t.Fatalf("Preference-Applied %q, want respond-async", r.h.Get("Preference-Applied"))
	}
	if ct := r.h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestAlwaysModeQueuesEveryRequest(t *testing.T) {
	leaks(t)
	e := newEnv(t, RouteOptions{Mode: ModeAlways}, okUpstream("done"))
	r := e.do("GET", "/x", "")
	if r.code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", r.code)
	}
	if r.h.Get("Preference-Applied") != "" {
		t.Fatalf("Preference-Applied %q without a Prefer", r.h.Get("Preference-Applied"))
	}
	m := e.wait(r.h.Get("Location"), StateSucceeded)
	if m["last_status"].(float64) != 200 || m["attempts"].(float64) != 1 {
		t.Fatalf("job %v", m)
	}
}

func TestStatusTransitionsAndResult(t *testing.T) {
	leaks(t)
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	e := newEnv(t, RouteOptions{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("X-Upstream", "yes")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "made it")
	}))
	loc := e.submit("PUT", "/thing", "body")
	waitFor(t, arrived, "the attempt")
	r := e.do("GET", loc, "", "Prefer", "respond-async")
	m := r.json(t)
	if r.code != 200 || m["status"] != StateRunning || m["attempts"].(float64) != 1 || m["started"] == nil || m["created"] == nil {
		t.Fatalf("running: %d %v", r.code, m)
	}
	if r.h.Get("Retry-After") == "" {
		t.Fatal("no Retry-After while running")
	}
	if r := e.do("GET", loc+"/result", ""); r.code != 404 {
		t.Fatalf("result while running: %d, want 404", r.code)
	}
	close(release)
	e.wait(loc, StateSucceeded)
	r = e.do("GET", loc, "")
	if r.code != http.StatusSeeOther || r.h.Get("Location") != loc+"/result" {
		t.Fatalf("finished: %d Location %q, want 303 to the result", r.code, r.h.Get("Location"))
	}
	if m := r.json(t); m["finished"] == nil || m["last_status"].(float64) != 201 {
		t.Fatalf("finished: %v", m)
	}
	res := e.do("GET", loc+"/result", "")
	if res.code != 201 || string(res.body) != "made it" || res.h.Get("X-Upstream") != "yes" ||
		strings.Join(res.h.Values("X-Multi"), ",") != "a,b" {
		t.Fatalf("result %d %v %q", res.code, res.h, res.body)
	}
	if h := e.do("HEAD", loc+"/result", ""); h.code != 201 || h.h.Get("Content-Length") != "7" {
		t.Fatalf("HEAD result: %d %v", h.code, h.h)
	}
}

func TestResultStreamedLarge(t *testing.T) {
	leaks(t)
	const size = 5 << 20
	big := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	e := newEnv(t, RouteOptions{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"v1"`)
		// In pieces, flushed, so the upstream's answer is chunked.
		for off := 0; off < len(big); off += 64 << 10 {
			w.Write(big[off : off+64<<10])
			w.(http.Flusher).Flush()
		}
	}))
	loc := e.submit("GET", "/big", "")
	e.wait(loc, StateSucceeded)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := e.client.Get(e.front.URL + loc + "/result")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("ETag") != `"v1"` || res.ContentLength != size {
		t.Fatalf("result %d %v length %d", res.StatusCode, res.Header, res.ContentLength)
	}
	h := sha256.New()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := res.Body.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	want := sha256.Sum256(big)
	if n != size || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("read %d bytes, digest differs: the body is not replayed exactly", n)
	}
	// The replay streams from the store: far less is allocated than the
	// body's size (a whole-loaded body would allocate 5 MiB at least).
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
		t.Fatalf("the replay allocated %d bytes for a %d-byte body", alloc, size)
	}
}

// recorderUpstream answers with the statuses given in turn and notes
// when each request arrived.
type recorderUpstream struct {
	mu       sync.Mutex
	statuses []int
	times    []time.Time
	methods  []string
}

func (u *recorderUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	i := len(u.times)
	u.times = append(u.times, time.Now())
	u.methods = append(u.methods, r.Method)
	st := u.statuses[min(i, len(u.statuses)-1)]
	u.mu.Unlock()
	w.WriteHeader(st)
	fmt.Fprintf(w, "answer %d", i+1)
}

func (u *recorderUpstream) arrivals() []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.times...)
}

func TestRetriesWithBackoff(t *testing.T) {
	leaks(t)
	const backoff = 100 * time.Millisecond
	up := &recorderUpstream{statuses: []int{503, 503, 200}}
	e := newEnv(t, RouteOptions{MaxAttempts: 5, Backoff: backoff, MaxBackoff: time.Second}, up)
	loc := e.submit("GET", "/flaky", "")
	m := e.wait(loc, StateSucceeded, StateFailed)
	if m["status"] != StateSucceeded || m["attempts"].(float64) != 3 || m["last_status"].(float64) != 200 {
		t.Fatalf("job %v, want succeeded after 3 attempts", m)
	}
	ts := up.arrivals()
	if len(ts) != 3 {
		t.Fatalf("upstream saw %d requests, want 3", len(ts))
	}
	if g := ts[1].Sub(ts[0]); g < backoff {
		t.Fatalf("first retry after %s, want at least %s", g, backoff)
	}
	if g := ts[2].Sub(ts[1]); g < 2*backoff {
		t.Fatalf("second retry after %s, want at least %s", g, 2*backoff)
	}
	if body := e.do("GET", loc+"/result", ""); string(body.body) != "answer 3" {
		t.Fatalf("result %q", body.body)
	}
	s := e.q.Stats()
	if s.Attempts != 3 || s.Retries != 2 || s.Succeeded != 1 || s.WaitCount != 1 || s.RunCount != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	leaks(t)
	var n atomic.Int32
	times := make(chan time.Time, 2)
	e := newEnv(t, RouteOptions{Backoff: 10 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		times <- time.Now()
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, "ok")
	}))
	loc := e.submit("GET", "/limited", "")
	t0 := waitFor(t, times, "the first attempt")
	t1 := waitFor(t, times, "the second attempt")
	if g := t1.Sub(t0); g < time.Second {
		t.Fatalf("retried after %s; the 429 asked for 1s", g)
	}
	e.wait(loc, StateSucceeded)
}

func TestMaxAttemptsExhausted(t *testing.T) {
	leaks(t)
	up := &recorderUpstream{statuses: []int{502}}
	e := newEnv(t, RouteOptions{MaxAttempts: 2, Backoff: 10 * time.Millisecond}, up)
	loc := e.submit("DELETE", "/gone", "")
	m := e.wait(loc, StateFailed)
	if m["attempts"].(float64) != 2 || m["last_status"].(float64) != 502 {
		t.Fatalf("job %v, want failed after 2 attempts with 502", m)
	}
	// A failed job with a response keeps it readable.
	if r := e.do("GET", loc, ""); r.code != http.StatusSeeOther {
		t.Fatalf("status of a failed job with a result: %d, want 303", r.code)
	}
	if r := e.do("GET", loc+"/result", ""); r.code != 502 || string(r.body) != "answer 2" {
		t.Fatalf("result %d %q", r.code, r.body)
	}
	if s := e.q.Stats(); s.Failed != 1 {
		t.Fatalf("stats failed %d", s.Failed)
	}
}

func TestConnectionErrorRetried(t *testing.T) {
	leaks(t)
	// An upstream that is not there: the proxy answers 502, retried.
	var hits atomic.Int32
	e := newEnv(t, RouteOptions{MaxAttempts: 2, Backoff: 10 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	e.up.Close()
	loc := e.submit("GET", "/x", "")
	m := e.wait(loc, StateFailed)
	if m["attempts"].(float64) != 2 || m["last_status"].(float64) != 502 {
		t.Fatalf("job %v, want 2 attempts ending in 502", m)
	}
}

func TestPostNotRetriedWithoutIdempotencyKey(t *testing.T) {
	leaks(t)
	up := &recorderUpstream{statuses: []int{503, 200}}
	e := newEnv(t, RouteOptions{MaxAttempts: 3, Backoff: 10 * time.Millisecond}, up)
	loc := e.submit("POST", "/order", "x")
	m := e.wait(loc, StateFailed)
	if m["attempts"].(float64) != 1 || m["last_status"].(float64) != 503 {
		t.Fatalf("job %v, want failed after one attempt", m)
	}
	// With an Idempotency-Key the POST may be sent again.
	loc = e.submit("POST", "/order", "y", "Idempotency-Key", "k1")
	m = e.wait(loc, StateSucceeded)
	if m["attempts"].(float64) != 1 {
		// The upstream's second answer is 200: one attempt is enough.
		t.Fatalf("job %v", m)
	}
	up.mu.Lock()
	up.statuses = []int{503}
	up.times = nil
	up.mu.Unlock()
	loc = e.submit("POST", "/order", "z", "Idempotency-Key", "k2")
	m = e.wait(loc, StateFailed)
	if m["attempts"].(float64) != 3 {
		t.Fatalf("job %v, want 3 attempts with an Idempotency-Key", m)
	}
}

func TestRetryUnsafe(t *testing.T) {
	leaks(t)
	up := &recorderUpstream{statuses: []int{503, 201}}
	e := newEnv(t, RouteOptions{RetryUnsafe: true, Backoff: 10 * time.Millisecond}, up)
	loc := e.submit("POST", "/order", "x")
	m := e.wait(loc, StateSucceeded)
	if m["attempts"].(float64) != 2 || m["last_status"].(float64) != 201 {
		t.Fatalf("job %v, want a POST retried on a RetryUnsafe route", m)
	}
}

func TestFinalStatuses(t *testing.T) {
	leaks(t)
	up := &recorderUpstream{statuses: []int{404}}
	e := newEnv(t, RouteOptions{Backoff: 10 * time.Millisecond}, up)
	loc := e.submit("GET", "/missing", "")
	m := e.wait(loc, StateFailed)
	if m["attempts"].(float64) != 1 || m["last_status"].(float64) != 404 {
		t.Fatalf("job %v, want a 404 final at once", m)
	}
	if r := e.do("GET", loc+"/result", ""); r.code != 404 || string(r.body) != "answer 1" {
		t.Fatalf("result %d %q, want the upstream's 404 replayed", r.code, r.body)
	}
	up.mu.Lock()
	up.statuses = []int{500}
	up.mu.Unlock()
	loc = e.submit("GET", "/broken", "")
	if m := e.wait(loc, StateFailed); m["attempts"].(float64) != 1 || m["last_status"].(float64) != 500 {
		t.Fatalf("job %v, want a 500 not retried", m)
	}
}

func TestIdempotentReplay(t *testing.T) {
	leaks(t)
	var hits atomic.Int32
	e := newEnv(t, RouteOptions{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "once")
	}))
	a := e.submit("POST", "/pay", "100", "Idempotency-Key", "abc", "Authorization", "Bearer me")
	b := e.submit("POST", "/pay", "100", "Idempotency-Key", "abc", "Authorization", "Bearer me")
	if a != b {
		t.Fatalf("same key, same request: %s and %s, want the same job", a, b)
	}
	e.waitAs(a, []string{"Authorization", "Bearer me"}, StateSucceeded)
	c := e.submit("POST", "/pay", "100", "Idempotency-Key", "abc", "Authorization", "Bearer me")
	if c != a {
		t.Fatalf("after the job ended: %s, want %s", c, a)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("upstream called %d times, want once", n)
	}
	if r := e.do("POST", "/pay", "999", "Prefer", "respond-async", "Idempotency-Key", "abc", "Authorization", "Bearer me"); r.code != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body: %d, want 422", r.code)
	}
	if r := e.do("PUT", "/pay", "100", "Prefer", "respond-async", "Idempotency-Key", "abc", "Authorization", "Bearer me"); r.code != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other method: %d, want 422", r.code)
	}
	// Another owner's key is its own.
	if d := e.submit("POST", "/pay", "100", "Idempotency-Key", "abc", "Authorization", "Bearer you"); d == a {
		t.Fatal("another owner got the same job")
	}
	if n := hits.Load(); n > 2 {
		t.Fatalf("upstream called %d times", n)
	}
}

func TestCancelQueued(t *testing.T) {
	leaks(t)
	arrived := make(chan string, 4)
	release := make(chan struct{})
	e := newEnv(t, RouteOptions{Concurrency: 1}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		<-release
	}))
	first := e.submit("GET", "/first", "")
	waitFor(t, arrived, "the first job")
	second := e.submit("GET", "/second", "")
	r := e.do("DELETE", second, "")
	if r.code != 200 || r.json(t)["status"] != StateCancelled {
		t.Fatalf("DELETE queued: %d %s", r.code, r.body)
	}
	close(release)
	e.wait(first, StateSucceeded)
	// A third job runs after the second would have: the worker has passed it.
	third := e.submit("GET", "/third", "")
	if p := waitFor(t, arrived, "the third job"); p != "/third" {
		t.Fatalf("upstream saw %s; the cancelled job reached it", p)
	}
	e.wait(third, StateSucceeded)
	if r := e.do("DELETE", second, ""); r.code != http.StatusConflict {
		t.Fatalf("DELETE a cancelled job: %d, want 409", r.code)
	}
	if r := e.do("DELETE", first, ""); r.code != http.StatusConflict {
		t.Fatalf("DELETE a finished job: %d, want 409", r.code)
	}
	if s := e.q.Stats(); s.Cancelled != 1 {
		t.Fatalf("cancelled %d", s.Cancelled)
	}
}

func TestCancelRunning(t *testing.T) {
	leaks(t)
	arrived := make(chan struct{}, 1)
	gone := make(chan error, 1)
	e := newEnv(t, RouteOptions{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
		gone <- r.Context().Err()
	}))
	loc := e.submit("GET", "/slow", "")
	waitFor(t, arrived, "the attempt")
	r := e.do("DELETE", loc, "")
	if r.code != 200 || r.json(t)["status"] != StateCancelled {
		t.Fatalf("DELETE running: %d %s", r.code, r.body)
	}
	if err := waitFor(t, gone, "the upstream to see the cancellation"); err == nil {
		t.Fatal("upstream request not cancelled")
	}
	if r := e.do("GET", loc+"/result", ""); r.code != 404 {
		t.Fatalf("result of a cancelled job: %d", r.code)
	}
}

func TestExpiredJobIsGone(t *testing.T) {
	leaks(t)
	clk := newClock()
	e := newEnv(t, RouteOptions{ResultLifetime: time.Hour}, okUpstream("x"), envOpt{now: clk.Now})
	loc := e.submit("GET", "/x", "", "Idempotency-Key", "k")
	e.wait(loc, StateSucceeded)
	clk.Add(59 * time.Minute)
	if r := e.do("GET", loc+"/result", ""); r.code != 200 {
		t.Fatalf("within the lifetime: %d", r.code)
	}
	clk.Add(2 * time.Minute)
	for _, p := range []string{loc, loc + "/result"} {
		if r := e.do("GET", p, ""); r.code != http.StatusGone {
			t.Fatalf("GET %s after the lifetime: %d, want 410", p, r.code)
		}
	}
	n, err := e.q.Expire()
	if err != nil || n != 1 {
		t.Fatalf("Expire: %d %v, want 1", n, err)
	}
	if r := e.do("GET", loc, ""); r.code != 404 {
		t.Fatalf("after Expire: %d, want 404", r.code)
	}
	// The key went with its job: the same key makes a new job.
	if again := e.submit("GET", "/x", "", "Idempotency-Key", "k"); again == loc {
		t.Fatal("the idempotency key outlived its job")
	}
}

func TestConcurrencyAndReload(t *testing.T) {
	leaks(t)
	var now, peak atomic.Int32
	e := newEnv(t, RouteOptions{Concurrency: 4}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // overlap: the workers run at once
		now.Add(-1)
	}))
	run := func(n int) {
		var locs []string
		for i := range n {
			locs = append(locs, e.submit("GET", fmt.Sprintf("/j%d", i), ""))
		}
		for _, l := range locs {
			e.wait(l, StateSucceeded)
		}
	}
	run(24)
	if p := peak.Load(); p > 4 || p < 2 {
		t.Fatalf("peak concurrency %d, want 2..4", p)
	}
	// A reload lowers the route's concurrency.
	ro := e.ro
	ro.Concurrency = 1
	if _, err := e.q.Route(ro); err != nil {
		t.Fatal(err)
	}
	peak.Store(0)
	run(8)
	if p := peak.Load(); p != 1 {
		t.Fatalf("peak concurrency after the reload %d, want 1", p)
	}
	ro.Concurrency = 3
	if _, err := e.q.Route(ro); err != nil {
		t.Fatal(err)
	}
	run(12)
}
