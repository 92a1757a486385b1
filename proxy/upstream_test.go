package proxy

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gateway/proxy/balance"
)

// retrySetup is an upstream of two targets for round_robin, a closed port
// first and a live server second, behind a gateway. Round robin starts at
// the first target, so the first request of a fresh upstream goes to the
// dead one.
func retrySetup(t *testing.T, retry bool) (gw string, u *Upstream, liveHits *atomic.Int64) {
	t.Helper()
	liveHits = new(atomic.Int64)
	live := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		liveHits.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	u = newUpstream(t, UpstreamOptions{
		Balance: "round_robin",
		Targets: []*url.URL{mustURL(t, "http://"+deadAddr(t)), live.target(t)},
		Retry:   retry,
	})
	return gatewayTo(t, RouteOptions{Upstream: u}, Options{}).URL, u, liveHits
}

// TestRetry: with Retry, a request the dead target refused is sent once
// more to the other target if it is idempotent and has no body; a POST
// with a body is not; without Retry nothing is.
func TestRetry(t *testing.T) {
	checkLeaks(t)
	t.Run("GETs all succeed", func(t *testing.T) {
		gw, u, _ := retrySetup(t, true)
		c := newClient(t)
		for i := range 20 {
			if code, body := get(t, c, gw+"/x"); code != http.StatusOK || body != "ok" {
				t.Errorf("GET %d: got %d %q; want 200 \"ok\"", i, code, body)
			}
		}
		// The refused dials were real, and reported.
		if st := u.Status(); st[0].ConsecutiveFails == 0 {
			t.Errorf("dead target's consecutive failures: got 0; want > 0 (was it tried?)")
		}
	})
	t.Run("POST with body not retried", func(t *testing.T) {
		gw, _, liveHits := retrySetup(t, true)
		c := newClient(t)
		post := func() int {
			resp, err := c.Post(gw+"/x", "text/plain", strings.NewReader("payload"))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := post(); code != http.StatusBadGateway {
			t.Errorf("POST to the dead target: got %d; want 502", code)
		}
		if n := liveHits.Load(); n != 0 {
			t.Errorf("live target got %d requests; want 0 (the POST was retried)", n)
		}
		// The next pick is the live target: the POST was not lost to a
		// broken upstream.
		if code := post(); code != http.StatusOK {
			t.Errorf("POST to the live target: got %d; want 200", code)
		}
	})
	t.Run("retry disabled", func(t *testing.T) {
		gw, _, _ := retrySetup(t, false)
		c := newClient(t)
		// Round robin alternates dead, live, dead, live.
		for i, want := range []int{502, 200, 502, 200} {
			if code, _ := get(t, c, gw+"/x"); code != want {
				t.Errorf("GET %d: got %d; want %d", i, code, want)
			}
		}
	})
}

// TestHealthyAfterFailures uses an injected clock: a target leaves the
// rotation after MaxFails failures in a row and is half-open after its
// first cool-down, BaseCoolDown, with no active checks configured. As
// the only target, it is still tried while out (the panic pick), so the
// client sees the upstream's own failure rather than a 503.
func TestHealthyAfterFailures(t *testing.T) {
	checkLeaks(t)
	for _, maxFails := range []int{1, 3} {
		t.Run("MaxFails="+strconv.Itoa(maxFails), func(t *testing.T) {
			clock := newClock()
			u := newUpstream(t, UpstreamOptions{
				Targets:  []*url.URL{mustURL(t, "http://"+deadAddr(t))},
				MaxFails: maxFails,
				CoolDown: 30 * time.Second,
				Now:      clock.Now,
			})
			gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{})
			c := newClient(t)
			if !u.Healthy() {
				t.Fatalf("Healthy before any request: got false; want true")
			}
			for i := range maxFails {
				if code, _ := get(t, c, gw.URL); code != http.StatusBadGateway {
					t.Errorf("request %d: got %d; want 502", i, code)
				}
				if want := i+1 < maxFails; u.Healthy() != want {
					t.Errorf("Healthy after %d failures: got %v; want %v", i+1, !want, want)
				}
			}
			if st := u.Status()[0]; st.Healthy || st.ConsecutiveFails != maxFails || st.DownUntil.IsZero() {
				t.Errorf("Status: got %+v; want unhealthy, %d failures, a down-until time", st, maxFails)
			}
			if code, _ := get(t, c, gw.URL); code != http.StatusBadGateway {
				t.Errorf("request while out: got %d; want 502 (tried as the panic pick)", code)
			}
			if n := u.Unavailable(); n != 0 {
				t.Errorf("Unavailable: got %d; want 0", n)
			}

			clock.Advance(balance.BaseCoolDown - time.Millisecond)
			if u.Healthy() {
				t.Errorf("Healthy before the cool-down ends: got true; want false")
			}
			clock.Advance(time.Millisecond)
			if !u.Healthy() {
				t.Errorf("Healthy after the cool-down: got false; want true")
			}
			// Half-open, it is probed (and fails again): out for twice as long.
			if code, _ := get(t, c, gw.URL); code != http.StatusBadGateway {
				t.Errorf("request after the cool-down: got %d; want 502", code)
			}
			if st := u.Status()[0]; st.DownUntil.Sub(clock.Now()) != 2*balance.BaseCoolDown {
				t.Errorf("after a failed probe: down until %v from now; want %v", st.DownUntil.Sub(clock.Now()), 2*balance.BaseCoolDown)
			}
		})
	}
}

// TestNewUpstreamRejects covers the option checks: NewUpstream refuses
// what Validate reports, in Validate's words.
func TestNewUpstreamRejects(t *testing.T) {
	h := mustURL(t, "http://127.0.0.1:1")
	s := mustURL(t, "https://127.0.0.1:1")
	for _, tt := range []struct {
		name string
		o    UpstreamOptions
		want string
	}{
		{"no name", UpstreamOptions{Targets: []*url.URL{h}}, "needs a name"},
		{"no targets", UpstreamOptions{Name: "u"}, "no targets"},
		{"unknown protocol", UpstreamOptions{Name: "u", Targets: []*url.URL{h}, Protocol: "spdy"},
			`proxy: upstream: Protocol: invalid value "spdy" (want http1, h2, h2c or auto)`},
		{"h2 needs https", UpstreamOptions{Name: "u", Targets: []*url.URL{s, h}, Protocol: ProtoH2},
			"proxy: upstream: Targets[1]: protocol h2 is HTTP/2 over TLS and needs an https target (h2c is HTTP/2 without TLS)"},
		{"h2c needs http", UpstreamOptions{Name: "u", Targets: []*url.URL{s, h}, Protocol: ProtoH2C},
			"proxy: upstream: Targets[0]: protocol h2c is HTTP/2 without TLS and needs an http target (h2 is HTTP/2 over TLS)"},
		{"bad scheme", UpstreamOptions{Name: "u", Targets: []*url.URL{mustURL(t, "ftp://127.0.0.1:1")}},
			"proxy: upstream: Targets[0]: scheme must be http or https (want e.g. http://127.0.0.1:9000)"},
		{"no host", UpstreamOptions{Name: "u", Targets: []*url.URL{mustURL(t, "http://")}},
			"proxy: upstream: Targets[0]: no host (want e.g. http://127.0.0.1:9000)"},
		{"negative cap", UpstreamOptions{Name: "u", Targets: []*url.URL{h}, MaxConnsPerTarget: -1},
			"proxy: upstream: MaxConnsPerTarget: -1: must not be negative"},
		{"negative idle", UpstreamOptions{Name: "u", Targets: []*url.URL{h}, MaxIdlePerTarget: -2},
			"proxy: upstream: MaxIdlePerTarget: -2: must not be negative"},
		{"negative max_fails", UpstreamOptions{Name: "u", Targets: []*url.URL{h}, MaxFails: -3},
			"proxy: upstream: MaxFails: -3: must not be negative"},
		{"unknown balance", UpstreamOptions{Name: "u", Targets: []*url.URL{h}, Balance: "random"},
			`proxy: upstream: Balance: invalid value "random" (want round_robin, least_requests or hash)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Logger = quiet()
			u, err := NewUpstream(tt.o)
			if err == nil || u != nil {
				t.Fatalf("NewUpstream: got (%v, %v); want (nil, error)", u, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewUpstream: got %q; want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestHTTP2PingSettings: the HTTP/2 health-check settings reach the
// transport that carries h2 and h2c upstreams, where net/http pings a
// connection silent for ReadIdleTimeout and closes it when the ping is
// not answered within PingTimeout.
func TestHTTP2PingSettings(t *testing.T) {
	for _, proto := range []string{ProtoH2, ProtoH2C, ProtoAuto} {
		scheme := "https"
		if proto == ProtoH2C {
			scheme = "http"
		}
		tr, err := newTransport(UpstreamOptions{
			Protocol:        proto,
			Targets:         []*url.URL{{Scheme: scheme, Host: "127.0.0.1:1"}},
			ReadIdleTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		})
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if tr.HTTP2 == nil || tr.HTTP2.SendPingTimeout != 30*time.Second || tr.HTTP2.PingTimeout != 15*time.Second {
			t.Errorf("%s: got HTTP2 %+v; want SendPingTimeout 30s, PingTimeout 15s", proto, tr.HTTP2)
		}
	}
}
