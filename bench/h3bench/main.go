// Command h3bench sends GETs over HTTP/3 (quic-go's http3.Transport) or
// HTTP/2 over TLS (net/http's), with the same client code, and reports
// throughput and latency in one line:
//
//	proto=h3 requests=N rps=R p50_us=A p99_us=B errors=E
//
// -conns connections carry -c concurrent streams between them (each
// worker keeps to one connection), for at most -d or -n requests. Every
// answer must be a 200 of -size bytes (-size -1: any length). -ca names
// the PEM certificate to trust.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"
)

func main() {
	url := flag.String("url", "", "URL to GET")
	proto := flag.String("proto", "h3", "h3 or h2")
	conns := flag.Int("conns", 4, "connections")
	conc := flag.Int("c", 64, "concurrent streams, spread over the connections")
	dur := flag.Duration("d", 10*time.Second, "duration")
	maxReq := flag.Int64("n", 10_000_000, "at most this many requests")
	size := flag.Int64("size", -1, "expected body bytes (-1: any)")
	caFile := flag.String("ca", "", "PEM certificate to trust")
	timeout := flag.Duration("timeout", 30*time.Second, "per-request timeout")
	flag.Parse()
	if *url == "" || *conns <= 0 || *conc < *conns || (*proto != "h3" && *proto != "h2") {
		fmt.Fprintln(os.Stderr, "h3bench: need -url, -proto h3|h2, -conns > 0, -c >= -conns")
		os.Exit(2)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil || !roots.AppendCertsFromPEM(pem) {
			fmt.Fprintf(os.Stderr, "h3bench: -ca %s: no certificate (%v)\n", *caFile, err)
			os.Exit(2)
		}
	}
	clients := make([]*http.Client, *conns)
	for i := range clients {
		clients[i] = &http.Client{Transport: transport(*proto, roots), Timeout: *timeout}
	}
	defer func() {
		for _, c := range clients {
			if cl, ok := c.Transport.(io.Closer); ok {
				cl.Close()
			} else {
				c.Transport.(*http.Transport).CloseIdleConnections()
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var left atomic.Int64
	left.Store(*maxReq)
	var mu sync.Mutex
	var all []time.Duration
	var errs int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *conc {
		c := clients[i%*conns]
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1024)
			var e int64
			for ctx.Err() == nil && left.Add(-1) >= 0 {
				t0 := time.Now()
				if err := get(ctx, c, *url, *size); err != nil {
					if ctx.Err() == nil {
						if e++; e == 1 {
							fmt.Fprintln(os.Stderr, "h3bench:", err)
						}
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			mu.Unlock()
		})
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("proto=%s requests=%d rps=%.1f p50_us=%.1f p99_us=%.1f errors=%d\n",
		*proto, len(all), float64(len(all))/el.Seconds(), pct(all, 0.50), pct(all, 0.99), errs)
}

// transport is one connection's worth of client: HTTP/3 over QUIC, or
// HTTP/2 over TLS held to one connection.
func transport(proto string, roots *x509.CertPool) http.RoundTripper {
	conf := &tls.Config{RootCAs: roots}
	if proto == "h3" {
		return &http3.Transport{TLSClientConfig: conf, DisableCompression: true}
	}
	return &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true, MaxConnsPerHost: 1, DisableCompression: true}
}

func get(ctx context.Context, c *http.Client, url string, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %d", resp.StatusCode)
	case size >= 0 && n != size:
		return fmt.Errorf("body %d bytes; want %d", n, size)
	case resp.ProtoMajor != protoMajor(c):
		return errors.New("answered over " + resp.Proto)
	}
	return nil
}

func protoMajor(c *http.Client) int {
	if _, ok := c.Transport.(*http3.Transport); ok {
		return 3
	}
	return 2
}

// pct is the p-th quantile of d in µs.
func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[int(float64(len(d)-1)*p)]) / 1e3
}
