// Command dashwatch holds dashboard pages open for bench/dashboard.sh:
// it opens -n event streams (GET /api/v1/dashboard/events) on the
// admin listener, reads every event as a page would, and after -d, or
// on SIGTERM or SIGINT, closes them and prints what it received:
//
//	streams=100 events=1200 bytes=3456789 errors=0
//
// It is bounded in time by -d, so it stops by itself.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "", "the event stream's URL (http://127.0.0.1:PORT/api/v1/dashboard/events)")
	n := flag.Int("n", 100, "streams to hold open")
	d := flag.Duration("d", 2*time.Minute, "how long to hold them at most")
	token := flag.String("token", "", "admin bearer token, if the admin listener asks for one")
	flag.Parse()
	if !strings.HasPrefix(*url, "http://127.") || *n <= 0 || *d <= 0 {
		fmt.Fprintln(os.Stderr, "dashwatch: -url must be a loopback http URL, -n and -d positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *d)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: *n, MaxIdleConnsPerHost: *n}}
	var open, events, bytes, errs atomic.Int64
	var wg sync.WaitGroup
	for range *n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
			if err != nil {
				errs.Add(1)
				return
			}
			if *token != "" {
				req.Header.Set("Authorization", "Bearer "+*token)
			}
			resp, err := client.Do(req)
			if err != nil {
				errs.Add(1)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs.Add(1)
				return
			}
			open.Add(1)
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			for sc.Scan() {
				line := sc.Text()
				bytes.Add(int64(len(line)) + 1)
				if strings.HasPrefix(line, "event:") {
					events.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("streams=%d events=%d bytes=%d errors=%d\n", open.Load(), events.Load(), bytes.Load(), errs.Load())
}
