package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gateway/cache"
)

type ctxKey struct{}

// TestDeadlineCtx: a deadlineCtx behaves as context.WithDeadline does,
// armed or not: values, deadline, Err and Done at its end, on its
// cancel and on its parent's.
func TestDeadlineCtx(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	past, future := time.Now().Add(-time.Millisecond), time.Now().Add(time.Hour)

	t.Run("value and deadline", func(t *testing.T) {
		c, cancel := withDeadline(parent, future)
		defer cancel()
		if c.Value(ctxKey{}) != "v" {
			t.Error("parent's value lost")
		}
		if d, ok := c.Deadline(); !ok || !d.Equal(future) {
			t.Errorf("Deadline %v %v; want %v", d, ok, future)
		}
		early, cancelEarly := context.WithDeadline(parent, past)
		defer cancelEarly()
		c2, cancel2 := withDeadline(early, future)
		defer cancel2()
		if d, _ := c2.Deadline(); !d.Equal(past) {
			t.Errorf("Deadline %v; want the parent's earlier %v", d, past)
		}
	})
	t.Run("running", func(t *testing.T) {
		c, cancel := withDeadline(parent, future)
		defer cancel()
		if err := c.Err(); err != nil {
			t.Errorf("Err %v; want nil", err)
		}
		if c.armed.Load() != nil {
			t.Error("armed before anyone asked for Done")
		}
		select {
		case <-c.Done():
			t.Error("Done closed before the deadline")
		default:
		}
		if c.armed.Load() == nil {
			t.Error("unarmed after Done")
		}
		if c.setHook(func() {}) {
			t.Error("hooked once armed")
		}
	})
	t.Run("past end, unarmed", func(t *testing.T) {
		c, cancel := withDeadline(parent, past)
		defer cancel()
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err %v; want DeadlineExceeded", err)
		}
	})
	t.Run("past end, armed", func(t *testing.T) {
		c, cancel := withDeadline(parent, past)
		defer cancel()
		<-c.Done() // closes: the armed timer is due at once
		if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err %v; want DeadlineExceeded", err)
		}
		if err := context.Cause(c); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Cause %v; want DeadlineExceeded once armed", err)
		}
	})
	t.Run("canceled, then Done", func(t *testing.T) {
		c, cancel := withDeadline(parent, future)
		cancel()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err %v; want Canceled", err)
		}
		<-c.Done()
		if c.setHook(func() {}) {
			t.Error("a canceled context took a hook")
		}
	})
	t.Run("Done, then canceled", func(t *testing.T) {
		c, cancel := withDeadline(parent, future)
		done := c.Done()
		cancel()
		<-done
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err %v; want Canceled", err)
		}
	})
	t.Run("parent canceled", func(t *testing.T) {
		p, cancelP := context.WithCancel(parent)
		c, cancel := withDeadline(p, future)
		defer cancel()
		cancelP()
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("unarmed: Err %v; want Canceled", err)
		}
		<-c.Done()
		if !clientGone(c) {
			t.Error("clientGone false for a parent that was canceled")
		}
	})
	t.Run("hook", func(t *testing.T) {
		c, cancel := withDeadline(parent, future)
		calls := 0
		if !c.setHook(func() { calls++ }) {
			t.Fatal("setHook refused")
		}
		if c.setHook(func() {}) {
			t.Error("a second hook taken")
		}
		if !c.clearHook() {
			t.Error("clearHook: fired before cancel")
		}
		if !c.setHook(func() { calls++ }) {
			t.Fatal("setHook refused after clearHook")
		}
		cancel()
		if calls != 1 {
			t.Errorf("cancel called the hook %d times; want 1", calls)
		}
		if c.clearHook() {
			t.Error("clearHook reports the hook did not fire")
		}
	})
	t.Run("child of an unarmed one", func(t *testing.T) {
		c, cancel := withDeadline(parent, past)
		defer cancel()
		child, cancelChild := context.WithCancel(c)
		defer cancelChild()
		<-child.Done() // the child arms it, and ends with it
		if err := child.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("child Err %v; want DeadlineExceeded", err)
		}
	})
}

// TestRouteDeadlineOnConnection: on an HTTP/1.1 upstream the route's
// deadline, kept as the connection's I/O deadline, ends an exchange
// that outlasts it with 504, cuts a body that stalls past it (the
// upstream sees its connection close), and is cleared when a
// connection goes back to the pool: a request of a route without a
// deadline, on it after the earlier deadline has passed, succeeds on
// the same connection.
func TestRouteDeadlineOnConnection(t *testing.T) {
	checkLeaks(t)
	upstreamGone := make(chan struct{}, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			<-r.Context().Done()
		case "/stall":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			select {
			case upstreamGone <- struct{}{}:
			default:
			}
		default:
			io.WriteString(w, "ok")
		}
	}))
	const timeout = 150 * time.Millisecond
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	// /free/ shares the upstream's connections and has no deadline of
	// its own to put on them.
	srv := gatewayTo(t, RouteOptions{Path: "/", Timeout: timeout, Upstream: u},
		Options{Routes: []RouteOptions{{Path: "/free/", StripPrefix: true, Upstream: u}}})
	client := newClient(t)

	// The first request dials, and a dial waits on the deadline's Done:
	// the second is the one whose deadline its connection carries.
	for _, path := range []string{"/free/fast", "/fast"} {
		if code, body := get(t, client, srv.URL+path); code != http.StatusOK || body != "ok" {
			t.Fatalf("%s: %d %q", path, code, body)
		}
	}
	// Well past that deadline.
	time.Sleep(3 * timeout)
	if code, body := get(t, client, srv.URL+"/free/fast"); code != http.StatusOK || body != "ok" {
		t.Fatalf("second request on the pooled connection: %d %q; want 200 \"ok\"", code, body)
	}
	if n := be.accepted.Load(); n != 1 {
		t.Errorf("upstream accepted %d connections; want 1, the first reused", n)
	}

	if code, body := get(t, client, srv.URL+"/slow"); code != http.StatusGatewayTimeout || body != "upstream timed out\n" {
		t.Errorf("slow upstream: %d %q; want 504 \"upstream timed out\"", code, body)
	}

	// A pooled upstream connection for /stall, which then needs no dial.
	if code, _ := get(t, client, srv.URL+"/free/fast"); code != http.StatusOK {
		t.Fatalf("/free/fast: %d", code)
	}
	// A new connection, which the client will not send the request on
	// again when it ends without a response: the gateway aborts before
	// its buffered header and first bytes go out.
	resp, err := newClient(t).Get(srv.URL + "/stall")
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("stalled body: read %q without error; want the response cut short", b)
		}
	}
	waitFor(t, upstreamGone, "the stalled upstream's connection to close")
}

// TestCacheFetchCanceledCutsUpstream: when the client that leads a
// cache fetch leaves and nothing is being stored, the cache cancels the
// fetch, whose context is detached from the client's and carries the
// route's unarmed deadline: the cancel itself must cut the upstream
// exchange, which no context registration watches.
func TestCacheFetchCanceledCutsUpstream(t *testing.T) {
	checkLeaks(t)
	upstreamGone := make(chan struct{}, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/warm" {
			return
		}
		io.WriteString(w, "first bytes")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		select {
		case upstreamGone <- struct{}{}:
		default:
		}
	}))
	cacheMW := cacheRoute(t, newCache(t, nil), cache.RouteOptions{Name: "r", LockTimeout: time.Hour})
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	srv := gatewayTo(t, RouteOptions{Name: "r", Upstream: u, Timeout: time.Hour, Middleware: []Middleware{cacheMW}}, Options{})
	// A pooled upstream connection first, so that the fetch needs no
	// dial, which would arm the deadline.
	if code, _ := get(t, newClient(t), srv.URL+"/warm"); code != http.StatusOK {
		t.Fatalf("/warm: %d", code)
	}
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: gw\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("first bytes"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	conn.Close() // the client leaves mid-body
	waitFor(t, upstreamGone, "the upstream's connection to close after the client left")
}

// TestClientLeavesThroughConnectionWatch: on the gateway's own HTTP/1
// listener the client's connection, not a context registration, tells
// an upstream exchange bounded by a route deadline that the client left,
// on a route without middleware and on one with the cache (a request
// the cache passes: a fetch it leads for others too outlives its client
// by design): the upstream request ends, and the target is not blamed
// for it (no error counted). Requests that stay show the watch also
// lets go cleanly: the next request on the same client connection is
// watched again.
func TestClientLeavesThroughConnectionWatch(t *testing.T) {
	checkLeaks(t)
	var watched atomic.Int32
	testHookWatched = func() { watched.Add(1) }
	t.Cleanup(func() { testHookWatched = nil })
	arrived := make(chan struct{}, 1)
	upstreamDone := make(chan struct{}, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !strings.HasSuffix(r.URL.Path, "/slow") {
			io.WriteString(w, "ok")
			return
		}
		arrived <- struct{}{}
		<-r.Context().Done()
		upstreamDone <- struct{}{}
	}))
	cacheMW := cacheRoute(t, newCache(t, nil), cache.RouteOptions{Name: "cached", LockTimeout: time.Hour})
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{
		{Name: "plain", Path: "/plain/", Upstream: u, Timeout: time.Hour},
		{Name: "cached", Path: "/cached/", Upstream: u, Timeout: time.Hour, Middleware: []Middleware{cacheMW}},
	}})
	// The gateway's observer offers an Observation, through which a
	// deadline the cache arms finds the watch.
	observed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(obsWriter{w, &Observation{}}, r)
	})
	srv := startServer(t, observed, ListenerOptions{WriteTimeout: time.Minute})
	for _, route := range []string{"/plain/", "/cached/"} {
		t.Run(route, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			// Two requests that stay on one client connection, on a
			// pooled upstream connection (a dial would arm the deadline).
			for i := range 2 {
				before := watched.Load()
				fmt.Fprintf(conn, "GET %sfast%d HTTP/1.1\r\nHost: gw\r\nCache-Control: no-store\r\n\r\n", route, i)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("fast %d: %d", i, resp.StatusCode)
				}
				if i == 1 && watched.Load() == before {
					t.Errorf("request %d on a pooled upstream connection was not watched by the client's connection", i)
				}
			}
			before := watched.Load()
			fmt.Fprintf(conn, "GET %sslow HTTP/1.1\r\nHost: gw\r\nCache-Control: no-store\r\n\r\n", route)
			waitFor(t, arrived, "the request to reach the upstream")
			if watched.Load() == before {
				t.Error("the slow request was not watched by the client's connection")
			}
			conn.Close() // the client leaves
			waitFor(t, upstreamDone, "the upstream request to end after the client left")
			for _, ts := range u.Stats().Targets {
				if ts.Errors != [NumErrorKinds]uint64{} {
					t.Errorf("target %s blamed for the client leaving: errors %v", ts.URL, ts.Errors)
				}
			}
		})
	}
}
