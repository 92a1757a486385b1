package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"testing"
)

// TestSetXForwarded: setXForwarded sets the header httputil's
// SetXForwarded sets, for a client with and without an address,
// X-Forwarded-For values already there, and over TLS.
func TestSetXForwarded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote string
		prior  []string
		tls    bool
	}{
		{"plain", "192.0.2.1:1234", nil, false},
		{"ipv6", "[2001:db8::1]:443", nil, true},
		{"prior", "192.0.2.1:1234", []string{"198.51.100.7", "203.0.113.9, 10.0.0.1"}, false},
		{"no address", "pipe", []string{"198.51.100.7"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := func() *httputil.ProxyRequest {
				in := httptest.NewRequest(http.MethodGet, "http://example.com/x", nil)
				in.RemoteAddr = tc.remote
				if tc.tls {
					in.TLS = &tls.ConnectionState{}
				}
				out := in.Clone(in.Context())
				if tc.prior != nil {
					out.Header["X-Forwarded-For"] = append([]string(nil), tc.prior...)
				}
				return &httputil.ProxyRequest{In: in, Out: out}
			}
			want, got, gotInto := pr(), pr(), pr()
			want.SetXForwarded()
			setXForwarded(got.In, got.Out, nil)
			if !reflect.DeepEqual(got.Out.Header, want.Out.Header) {
				t.Errorf("got %v; want %v", got.Out.Header, want.Out.Header)
			}
			var xf [2]string
			setXForwarded(gotInto.In, gotInto.Out, &xf)
			if !reflect.DeepEqual(gotInto.Out.Header, want.Out.Header) {
				t.Errorf("into the caller's room: got %v; want %v", gotInto.Out.Header, want.Out.Header)
			}
		})
	}
}

// TestUserAgentForwarded: the upstream gets the client's User-Agent,
// and none when the client sent none (not the transport's own).
func TestUserAgentForwarded(t *testing.T) {
	checkLeaks(t)
	got := make(chan []string, 1)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header["User-Agent"]
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
	for _, ua := range [][]string{nil, {"curl/8"}} {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		if ua != nil {
			req.Header["User-Agent"] = ua
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("got %d %q", rec.Code, rec.Body)
		}
		if v := <-got; !reflect.DeepEqual(v, ua) {
			t.Errorf("client's User-Agent %q: upstream got %q", ua, v)
		}
	}
}
