// Command stampede fires N concurrent GETs for one URL at the same instant
// and reports how long each client waited for its whole response. The
// benchmark points it at a cold, cacheable URL whose origin takes a while,
// to see how a cache handles the thundering herd: how many requests reach
// the origin (the origin counts them) and how long the waiters wait.
//
// Every client first gets its own keep-alive connection (one concurrent
// warm-up request each, for -warm with %d replaced by the client number),
// so the burst measures the proxy rather than 200 TCP handshakes. Then all
// goroutines wait on one barrier and send together.
//
// Output, one line: n=200 ok=200 errors=0 p50_ms=201.3 max_ms=215.0 min_ms=200.4
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "URL every client requests in the burst")
	n := flag.Int("n", 200, "concurrent clients")
	warm := flag.String("warm", "", "warm-up URL template, %d = client number (empty: no warm-up)")
	timeout := flag.Duration("timeout", 30*time.Second, "per-request timeout")
	flag.Parse()
	if *url == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: stampede -url URL [-n 200] [-warm URL-template] [-timeout 30s]")
		os.Exit(2)
	}

	tr := &http.Transport{
		MaxIdleConns:        *n * 2,
		MaxIdleConnsPerHost: *n * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true, // like wrk: no Accept-Encoding
	}
	client := &http.Client{Transport: tr, Timeout: *timeout}

	get := func(u string) (int, error) {
		resp, err := client.Get(u)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return resp.StatusCode, err
		}
		return resp.StatusCode, nil
	}

	if *warm != "" {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var werr []string
		for i := range *n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := *warm
				if strings.Contains(u, "%d") {
					u = fmt.Sprintf(u, i)
				}
				if code, err := get(u); err != nil || code != http.StatusOK {
					mu.Lock()
					werr = append(werr, fmt.Sprintf("%d %v", code, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(werr) > 0 {
			fmt.Fprintf(os.Stderr, "stampede: %d warm-up requests failed, e.g. %s\n", len(werr), werr[0])
		}
	}

	start := make(chan struct{})
	lat := make([]time.Duration, *n)
	failed := make([]string, *n)
	var ready, done sync.WaitGroup
	var t0 time.Time
	for i := range *n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			code, err := get(*url)
			lat[i] = time.Since(t0)
			switch {
			case err != nil:
				failed[i] = err.Error()
			case code != http.StatusOK:
				failed[i] = fmt.Sprintf("status %d", code)
			}
		}()
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	done.Wait()

	var ok []time.Duration
	errs := 0
	firstErr := ""
	for i, d := range lat {
		if failed[i] != "" {
			errs++
			if firstErr == "" {
				firstErr = failed[i]
			}
			continue
		}
		ok = append(ok, d)
	}
	if firstErr != "" {
		fmt.Fprintf(os.Stderr, "stampede: %d requests failed, e.g. %s\n", errs, firstErr)
	}
	if len(ok) == 0 {
		fmt.Printf("n=%d ok=0 errors=%d\n", *n, errs)
		os.Exit(1)
	}
	sort.Slice(ok, func(a, b int) bool { return ok[a] < ok[b] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	// Nearest-rank median, like the load generators' percentiles.
	p50 := ok[(len(ok)+1)/2-1]
	fmt.Printf("n=%d ok=%d errors=%d p50_ms=%.1f max_ms=%.1f min_ms=%.1f\n",
		*n, len(ok), errs, ms(p50), ms(ok[len(ok)-1]), ms(ok[0]))
}
