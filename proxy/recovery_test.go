package proxy

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gateway/proxy/balance"
)

// restartable is an upstream on a fixed loopback port that can be stopped
// (its connections refused) and started again on the same port, as a
// process that crashes and is restarted would be.
type restartable struct {
	t    *testing.T
	addr string
	srv  *backend
	hits atomic.Int64 // requests other than health checks
}

func newRestartable(t *testing.T) *restartable {
	t.Helper()
	r := &restartable{t: t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = newBackendOn(t, ln, plainHTTP1, r.handler())
	return r
}

func (r *restartable) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/healthz" {
			r.hits.Add(1)
		}
		io.WriteString(w, "ok")
	})
}

func (r *restartable) target() *url.URL { return mustURL(r.t, "http://"+r.addr) }

// stop closes the listener and every connection: dials are refused.
func (r *restartable) stop() { r.srv.Close() }

// start listens on the same port again. The port was ours a moment ago;
// listening may still fail briefly while the old socket is torn down.
func (r *restartable) start() {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", r.addr)
		if err == nil {
			r.srv = newBackendOn(r.t, ln, plainHTTP1, r.handler())
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("listening on %s again: %v", r.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failUntil sends requests through gw, expecting each to fail with 502,
// until cond holds.
func failUntil(t *testing.T, c *http.Client, gw, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if code, body := get(t, c, gw); code != http.StatusBadGateway {
			t.Fatalf("request to the stopped target: got %d %q; want 502", code, body)
		}
	}
}

// TestRestartedLoneTarget is the sidecar's case: one local target,
// stopped under traffic and restarted on the same port. The first request
// after the restart succeeds, though the gateway's clock never reaches
// the end of the cool-down: with its only target out, the gateway tries
// it anyway (the panic pick) rather than answering 503, and that success
// puts the target back in rotation. While it is down, each request costs
// a refused dial, not a hang.
func TestRestartedLoneTarget(t *testing.T) {
	checkLeaks(t)
	for _, active := range []bool{false, true} {
		t.Run("active checks "+strconv.FormatBool(active), func(t *testing.T) {
			clock := newClock() // never advances
			up := newRestartable(t)
			o := UpstreamOptions{Targets: []*url.URL{up.target()}, MaxFails: 3, CoolDown: 10 * time.Second, Now: clock.Now}
			if active {
				o.HealthPath, o.HealthInterval, o.HealthTimeout = "/healthz", 20*time.Millisecond, 2*time.Second
			}
			u := newUpstream(t, o)
			u.Start()
			gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{}).URL
			c := newClient(t)
			if code, _ := get(t, c, gw); code != http.StatusOK {
				t.Fatalf("before the stop: got %d; want 200", code)
			}

			up.stop()
			failUntil(t, c, gw, "passive health to take the target out", func() bool { return !u.Status()[0].DownUntil.IsZero() })
			if active {
				failUntil(t, c, gw, "the active check to fail", func() bool { return !u.Status()[0].ActiveOK })
			}
			// Out of rotation, it is still tried: a refused dial each time.
			for range 3 {
				start := time.Now()
				if code, _ := get(t, c, gw); code != http.StatusBadGateway {
					t.Fatalf("while stopped: got %d; want 502 (tried though out)", code)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("a request to the stopped target took %v; want a prompt refusal", d)
				}
			}

			up.start()
			if code, body := get(t, c, gw); code != http.StatusOK {
				t.Fatalf("first request after the restart: got %d %q; want 200", code, body)
			}
			if st := u.Status()[0]; !st.DownUntil.IsZero() || st.ConsecutiveFails != 0 {
				t.Errorf("after a success: got %+v; want back in rotation", st)
			}
			if n := u.Unavailable(); n != 0 {
				t.Errorf("Unavailable: got %d; want 0 (no 503)", n)
			}
		})
	}
}

// TestRestartedTargetBackOnCheck: of two targets, one is stopped and
// taken out by passive health, then restarted; it gets traffic again as
// soon as its active check passes, though the gateway's clock never
// reaches the end of its cool-down.
func TestRestartedTargetBackOnCheck(t *testing.T) {
	checkLeaks(t)
	clock := newClock() // never advances
	a := newRestartable(t)
	b := newRestartable(t)
	u := newUpstream(t, UpstreamOptions{
		Targets:  []*url.URL{a.target(), b.target()},
		Balance:  balance.PolicyRoundRobin,
		MaxFails: 1, CoolDown: time.Hour, Now: clock.Now,
		Retry:      true,
		HealthPath: "/healthz", HealthInterval: 20 * time.Millisecond, HealthTimeout: 2 * time.Second,
	})
	gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{}).URL
	c := newClient(t)

	a.stop()
	// Checks start once passive health has taken a out, so that it is
	// the failed requests, not a failed check, that took it out.
	deadline := time.Now().Add(30 * time.Second)
	for u.Status()[0].DownUntil.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for passive health to take a out")
		}
		// Refused by a, the request is retried on b.
		if code, _ := get(t, c, gw); code != http.StatusOK {
			t.Fatalf("with a stopped: got %d; want 200 from b", code)
		}
	}
	u.Start()
	eventually(t, "a's check to fail", func() bool { return !u.Status()[0].ActiveOK })

	a.start()
	eventually(t, "a's check to pass", func() bool { return u.Status()[0].ActiveOK })
	for i := 0; a.hits.Load() == 0; i++ {
		if i == 20 {
			t.Fatalf("a got none of %d requests after its check passed; want its share (status %+v)", i, u.Status()[0])
		}
		if code, _ := get(t, c, gw); code != http.StatusOK {
			t.Fatalf("got %d; want 200", code)
		}
	}
}

// TestEveryBreakerOpenRetryAfter: with the breakers of both targets open
// (an operator's choice to fail fast, so no panic pick), the 503 says in
// Retry-After when the first breaker lets a probe through.
func TestEveryBreakerOpenRetryAfter(t *testing.T) {
	checkLeaks(t)
	a, b := newCounting(t), newCounting(t)
	a.failing.Store(true)
	b.failing.Store(true)
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{a.target(t), b.target(t)}, MaxFails: 1, Breaker: testBreaker(time.Minute)})
	gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{}).URL
	c := newClient(t)
	for i := 0; breakerState(u, 0) != balance.BreakerOpen || breakerState(u, 1) != balance.BreakerOpen; i++ {
		if i == 20 {
			t.Fatalf("breakers %s, %s after %d failures; want both open", breakerState(u, 0), breakerState(u, 1), i)
		}
		if r := do(t, c, gw+"/"); r.status != http.StatusInternalServerError {
			t.Fatalf("got %d; want the origin's 500", r.status)
		}
	}
	r := do(t, c, gw+"/")
	if r.status != http.StatusServiceUnavailable || r.body != "no healthy upstream\n" {
		t.Fatalf("got %d %q; want 503 no healthy upstream", r.status, r.body)
	}
	if n, err := strconv.Atoi(r.retryAfter); err != nil || n < 30 || n > 60 {
		t.Errorf("Retry-After: got %q; want the minute's remainder (30 to 60 seconds)", r.retryAfter)
	}
	if n := u.Unavailable(); n != 1 {
		t.Errorf("Unavailable: got %d; want 1", n)
	}
}
