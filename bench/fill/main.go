// Command fill writes a fixed number of distinct cacheable objects through
// a cache: GET URL?i=K for K = start+1 .. start+n over c keep-alive
// connections, each URL requested once, every body read to its end. It is
// bounded in requests (-n) and in time (-max-time), so the memory
// benchmark can fill a cache with ten times its size and then watch the
// process go idle.
//
// Output, one line: requests=40000 errors=0 seconds=12.345 bytes=2621440000
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "base URL; ?i=K (or &i=K) is appended")
	n := flag.Int("n", 40000, "requests, one per distinct URL")
	start := flag.Int("start", 0, "first K is start+1, so runs need not repeat URLs")
	conns := flag.Int("c", 16, "concurrent connections")
	size := flag.Int64("size", -1, "expected body bytes (-1: any); a different length counts as an error")
	maxTime := flag.Duration("max-time", 5*time.Minute, "stop sending after this long")
	flag.Parse()
	if *url == "" || *n < 1 || *conns < 1 {
		fmt.Fprintln(os.Stderr, "usage: fill -url URL [-n 40000] [-start 0] [-c 16] [-size B] [-max-time 5m]")
		os.Exit(2)
	}
	sep := "?"
	if strings.Contains(*url, "?") {
		sep = "&"
	}
	tr := &http.Transport{
		MaxIdleConns:        *conns,
		MaxIdleConnsPerHost: *conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true, // like wrk: no Accept-Encoding
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var next, done, errs, bytes atomic.Int64
	deadline := time.Now().Add(*maxTime)
	begin := time.Now()
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				k := next.Add(1)
				if k > int64(*n) {
					return
				}
				got, err := get(client, *url+sep+"i="+strconv.FormatInt(int64(*start)+k, 10))
				done.Add(1)
				bytes.Add(got)
				if err != nil || (*size >= 0 && got != *size) {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("requests=%d errors=%d seconds=%.3f bytes=%d\n", done.Load(), errs.Load(), time.Since(begin).Seconds(), bytes.Load())
	if done.Load() < int64(*n) {
		fmt.Fprintf(os.Stderr, "fill: stopped after -max-time %s with %d of %d requests\n", *maxTime, done.Load(), *n)
		os.Exit(1)
	}
}

// get fetches u and returns the body bytes read; a status other than 200
// is an error.
func get(c *http.Client, u string) (int64, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return n, err
}
