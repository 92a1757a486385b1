// Command plainproxy is the naive baseline: the standard library's
// httputil.ReverseProxy with http.DefaultTransport and nothing tuned. Its
// numbers show what the gateway gains (or costs) over the obvious Go proxy.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18003", "listen address")
	to := flag.String("to", "http://127.0.0.1:18000", "upstream base URL")
	flag.Parse()

	target, err := url.Parse(*to)
	if err != nil || target.Scheme == "" || target.Host == "" {
		log.Fatalf("plainproxy: bad -to %q: %v", *to, err)
	}

	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
		},
		// DefaultTransport on purpose: its MaxIdleConnsPerHost of 2 is the
		// untuned behaviour this baseline exists to show.
		Transport: http.DefaultTransport,
		ErrorLog:  log.New(discard{}, "", 0),
	}

	srv := &http.Server{
		Addr:              *addr,
		Handler:           rp,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(discard{}, "", 0),
	}
	log.Printf("plainproxy: listening on %s, forwarding to %s", *addr, target)
	log.Fatal(srv.ListenAndServe())
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
