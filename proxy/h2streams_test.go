package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHTTP2ConcurrentStreams: one HTTP/2 client connection carries 100
// requests at once and the gateway serves them in parallel. The origin
// holds every request until the 100th has arrived, so served one after
// another (or a few at a time) they would never finish; a generous bound
// turns that into a failure instead of a hang.
func TestHTTP2ConcurrentStreams(t *testing.T) {
	checkLeaks(t)
	const n = 100
	certFile, keyFile, roots := writeCert(t, t.TempDir())
	for _, tt := range []struct {
		name   string
		lo     ListenerOptions
		scheme string
		protos func(*http.Protocols)
		tls    *tls.Config
	}{
		{"TLS", ListenerOptions{CertFile: certFile, KeyFile: keyFile}, "https", func(p *http.Protocols) { p.SetHTTP2(true) }, &tls.Config{RootCAs: roots}},
		{"h2c", ListenerOptions{H2C: true}, "http", func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var arrived atomic.Int64
			all := make(chan struct{})
			be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/warm" {
					io.WriteString(w, "warm")
					return
				}
				if arrived.Add(1) == n {
					close(all)
				}
				timer := time.NewTimer(30 * time.Second)
				defer timer.Stop()
				select {
				case <-all:
					io.WriteString(w, "ok")
				case <-timer.C:
					http.Error(w, fmt.Sprintf("only %d of %d requests arrived", arrived.Load(), n), http.StatusServiceUnavailable)
				case <-r.Context().Done():
				}
			}))
			u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}, Protocol: ProtoHTTP1})
			h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
			srv := startServer(t, h, tt.lo)

			// One connection, from Transport.NewClientConn: every
			// request below goes on it or fails, and RoundTrip waits
			// rather than dialing when the server's stream limit is
			// reached, so a limit under n would stall the burst.
			var p http.Protocols
			tt.protos(&p)
			tr := &http.Transport{Protocols: &p, TLSClientConfig: tt.tls}
			t.Cleanup(tr.CloseIdleConnections)
			cc, err := tr.NewClientConn(t.Context(), tt.scheme, srv.addr)
			if err != nil {
				t.Fatalf("NewClientConn: %v", err)
			}
			t.Cleanup(func() { cc.Close() })
			client := &http.Client{Transport: cc, Timeout: clientTimeout}
			base := tt.scheme + "://" + srv.addr
			// One request first, so the server's SETTINGS (its stream
			// limit) are known before the burst.
			if code, body := get(t, client, base+"/warm"); code != http.StatusOK || body != "warm" {
				t.Fatalf("warm-up: got %d %q; want 200 warm", code, body)
			}
			if got := cc.Available(); got < n {
				t.Fatalf("streams the connection may open: got %d; want at least %d", got, n)
			}

			errs := make(chan error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := client.Get(fmt.Sprintf("%s/r%d", base, i))
					if err != nil {
						errs <- err
						return
					}
					defer resp.Body.Close()
					b, err := io.ReadAll(resp.Body)
					if err != nil || resp.StatusCode != http.StatusOK || string(b) != "ok" || resp.ProtoMajor != 2 {
						errs <- fmt.Errorf("request %d: got %s %d %q (%v); want HTTP/2 200 ok", i, resp.Proto, resp.StatusCode, b, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
