package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gateway/proxy/balance"
)

// noDeadlineSeen is a middleware that fails the test if the request it
// gets already carries a deadline: the route's deadline is for the
// requests that go on toward the upstream, armed inside the middleware.
func noDeadlineSeen(t *testing.T) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d, ok := r.Context().Deadline(); ok {
				t.Errorf("middleware got a request with a deadline (%v); want it armed inside", time.Until(d))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestUpstreamErrors checks the status and body the client gets for each
// way an upstream can fail. Bodies must be short plain text naming no
// upstream address: the detail belongs in the log.
func TestUpstreamErrors(t *testing.T) {
	checkLeaks(t)
	// hijack takes the connection from net/http once the request is in,
	// and ends it without a response: closed, or reset if linger is 0.
	hijack := func(reset bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			if reset {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
		}
	}
	tests := []struct {
		name     string
		handler  http.HandlerFunc // nil: the target is a closed port
		opts     UpstreamOptions
		route    RouteOptions
		requests int // the last one's response is checked
		wantCode int
		wantBody string
	}{
		{
			name: "timeout",
			// Blocks until the gateway gives up on it, however long the
			// machine takes to get there.
			handler:  func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			route:    RouteOptions{Timeout: 200 * time.Millisecond},
			requests: 1, wantCode: http.StatusGatewayTimeout, wantBody: "upstream timed out\n",
		},
		{
			// With middleware in front (the cache, say), the deadline is
			// armed inside it and bounds the exchange all the same.
			name:     "timeout inside middleware",
			handler:  func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			route:    RouteOptions{Timeout: 200 * time.Millisecond, Middleware: []Middleware{noDeadlineSeen(t)}},
			requests: 1, wantCode: http.StatusGatewayTimeout, wantBody: "upstream timed out\n",
		},
		{
			name:     "response header timeout",
			handler:  func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			opts:     UpstreamOptions{ResponseHeaderTimeout: 200 * time.Millisecond},
			requests: 1, wantCode: http.StatusGatewayTimeout, wantBody: "upstream timed out\n",
		},
		{
			name:     "connection refused",
			requests: 1, wantCode: http.StatusBadGateway, wantBody: "upstream refused connection\n",
		},
		{
			name:     "closed without response",
			handler:  hijack(false),
			requests: 1, wantCode: http.StatusBadGateway, wantBody: "upstream unavailable\n",
		},
		{
			name:     "reset",
			handler:  hijack(true),
			requests: 1, wantCode: http.StatusBadGateway, wantBody: "upstream reset connection\n",
		},
		{
			// The first request fails and opens the only target's
			// breaker. (A target out for passive health alone would
			// still get a panic pick.)
			name:     "all targets open",
			opts:     UpstreamOptions{Breaker: &balance.BreakerOptions{MinRequests: 1, OpenTimeout: time.Hour}},
			requests: 2, wantCode: http.StatusServiceUnavailable, wantBody: "no healthy upstream\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := deadAddr(t)
			if tt.handler != nil {
				addr = newBackend(t, plainHTTP1, tt.handler).Listener.Addr().String()
			}
			o := tt.opts
			o.Targets = []*url.URL{mustURL(t, "http://"+addr)}
			ro := tt.route
			ro.Upstream = newUpstream(t, o)
			gw := gatewayTo(t, ro, Options{})
			c := newClient(t)

			var resp *http.Response
			var body string
			for i := range tt.requests {
				start := time.Now()
				r, err := c.Get(gw.URL + "/x")
				if err != nil {
					t.Fatalf("GET %d: %v", i, err)
				}
				b, err := io.ReadAll(r.Body)
				r.Body.Close()
				if err != nil {
					t.Fatalf("GET %d: reading body: %v", i, err)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("GET %d took %v; want the failure reported promptly", i, d)
				}
				resp, body = r, string(b)
			}
			if resp.StatusCode != tt.wantCode || body != tt.wantBody {
				t.Errorf("got %d %q; want %d %q", resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
			if ra := resp.Header.Get("Retry-After"); (tt.wantCode == http.StatusServiceUnavailable) != (ra != "") {
				t.Errorf("Retry-After: got %q; want one exactly on a 503", ra)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type: got %q; want text/plain", ct)
			}
			host, port, _ := net.SplitHostPort(addr)
			for _, leak := range []string{addr, host, port, "dial", "tcp"} {
				if strings.Contains(body, leak) {
					t.Errorf("body %q contains %q; want no upstream detail", body, leak)
				}
			}
		})
	}
}

// TestClassify covers the mapping from error to status directly, for the
// cases that need a client to misbehave to reach it end to end.
func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	timeoutErr := &net.OpError{Op: "read", Err: timeoutError{}}
	for _, tt := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"no target", context.Background(), errNoTarget, http.StatusServiceUnavailable},
		{"body too large", context.Background(), clientError{&http.MaxBytesError{Limit: 1}}, http.StatusRequestEntityTooLarge},
		{"client went away", canceled, context.Canceled, StatusClientClosed},
		{"client body stalled", context.Background(), clientError{timeoutErr}, http.StatusRequestTimeout},
		// net/http cancels the request when the read from the client
		// times out: the stall is still the cause to report.
		{"client body stalled, context canceled", canceled, &targetError{"x", clientError{timeoutErr}}, http.StatusRequestTimeout},
		{"client body too large, context canceled", canceled, clientError{&http.MaxBytesError{Limit: 1}}, http.StatusRequestEntityTooLarge},
		{"client body broken", context.Background(), clientError{io.ErrUnexpectedEOF}, http.StatusBadRequest},
		{"deadline", context.Background(), context.DeadlineExceeded, http.StatusGatewayTimeout},
		{"network timeout", context.Background(), &targetError{"x", timeoutErr}, http.StatusGatewayTimeout},
		{"other", context.Background(), io.EOF, http.StatusBadGateway},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := classify(tt.ctx, tt.err); got != tt.want {
				t.Errorf("classify(%v): got %d; want %d", tt.err, got, tt.want)
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
