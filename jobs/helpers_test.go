package jobs

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gateway/internal/leakcheck"
)

func leaks(t *testing.T) {
	leakcheck.Check(t, "gateway/jobs.(*Queue)", "gateway/jobs.(*route)", "gateway/jobs.(*BoltStore)")
}

// clock is an injected clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a gateway in miniature: a client socket, the queue's Wrap, a
// route's async middleware over a ReverseProxy to an httptest upstream.
type env struct {
	t      *testing.T
	path   string // the bbolt file
	store  *BoltStore
	q      *Queue
	up     *httptest.Server
	front  *httptest.Server
	client *http.Client
	ro     RouteOptions
}

type envOpt struct {
	now      func() time.Time
	path     string
	noRunner bool
}

func newEnv(t *testing.T, ro RouteOptions, upstream http.Handler, eo ...envOpt) *env {
	t.Helper()
	var o envOpt
	if len(eo) > 0 {
		o = eo[0]
	}
	if o.path == "" {
		o.path = filepath.Join(t.TempDir(), "jobs.db")
	}
	if ro.Name == "" {
		ro.Name = "r"
	}
	e := &env{t: t, path: o.path, ro: ro}
	e.up = httptest.NewServer(upstream)
	t.Cleanup(e.up.Close)
	e.open(o)
	return e
}

// open opens the store and the queue on e.path and serves them.
func (e *env) open(o envOpt) {
	t := e.t
	t.Helper()
	s, err := OpenBolt(e.path)
	if err != nil {
		t.Fatal(err)
	}
	q, err := New(Options{Store: s, Now: o.now})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := q.Route(e.ro)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.up.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = nil
	routed := mw(proxy)
	if !o.noRunner {
		q.SetRunner(routed)
	}
	e.store, e.q = s, q
	e.front = httptest.NewServer(q.Wrap(routed))
	e.client = &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{},
	}
	front, client := e.front, e.client
	t.Cleanup(func() {
		front.Close()
		client.CloseIdleConnections()
		q.Close()
	})
}

// crash closes the queue and its store without a graceful shutdown, as
// far as a test in one process can: attempts are cut off.
func (e *env) crash() {
	e.front.Close()
	e.client.CloseIdleConnections()
	e.q.Close()
}

type resp struct {
	code int
	h    http.Header
	body []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (e *env) do(method, path string, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.front.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

// submit sends a request that is queued and returns the job's location.
func (e *env) submit(method, path, body string, hdr ...string) string {
	e.t.Helper()
	r := e.do(method, path, body, append([]string{"Prefer", "respond-async"}, hdr...)...)
	if r.code != http.StatusAccepted {
		e.t.Fatalf("%s %s: status %d, want 202; body %s", method, path, r.code, r.body)
	}
	return r.h.Get("Location")
}

// wait polls the job at loc until its status is one of states.
func (e *env) wait(loc string, states ...string) map[string]any {
	e.t.Helper()
	return e.waitAs(loc, nil, states...)
}

func (e *env) waitAs(loc string, hdr []string, states ...string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := e.do("GET", loc, "", hdr...)
		if r.code != http.StatusOK && r.code != http.StatusSeeOther {
			e.t.Fatalf("GET %s: %d %s", loc, r.code, r.body)
		}
		m := r.json(e.t)
		for _, s := range states {
			if m["status"] == s {
				return m
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s: status %v, want one of %v", loc, m["status"], states)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFor waits for ch to deliver, or fails.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
