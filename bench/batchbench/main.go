// Command batchbench measures what batching saves a client: the time for
// one batch of N GETs (POST /_batch) against the same N GETs sent one
// after another on one connection, and against N GETs sent at once, over
// HTTP/1.1 or h2c (HTTP/2 without TLS, prior knowledge).
//
// A round is one of those ways of getting N responses; its latency is
// from the first byte sent to the last byte of the last response read.
// Rounds of the modes asked for are interleaved (batch, sequential,
// parallel, batch, ...), so drift of the machine is spread over all of
// them. Every response is checked: a batch must answer 200 with N item
// statuses of 200, a GET 200; a failed round counts as an error and is
// not timed.
//
// Output, one line per mode:
//
//	proto=h1 mode=batch items=10 rounds=300 errors=0 mean_ms=3.1 p50_ms=3.0 p90_ms=3.4 p99_ms=4.2 max_ms=6.0
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	base := flag.String("url", "", "gateway base URL, e.g. http://127.0.0.1:30501")
	proto := flag.String("proto", "h1", "h1 (HTTP/1.1) or h2c (HTTP/2 prior knowledge)")
	path := flag.String("path", "/slow?ms=2&nostore=1", "path each GET asks for")
	batchPath := flag.String("batch-path", "/_batch", "the gateway's batch endpoint")
	items := flag.Int("items", 10, "GETs per round")
	rounds := flag.Int("rounds", 300, "measured rounds per mode (at most)")
	warm := flag.Int("warmup", 30, "unmeasured rounds per mode first")
	maxTime := flag.Duration("max-time", 60*time.Second, "stop measuring after this long, whatever the rounds")
	modes := flag.String("modes", "batch,sequential,parallel", "comma-separated modes to interleave")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	flag.Parse()
	if *base == "" || *items < 1 || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "usage: batchbench -url URL [-proto h1|h2c] [-items 10] [-rounds 300] [-max-time 60s]")
		os.Exit(2)
	}

	var p http.Protocols
	switch *proto {
	case "h1":
		p.SetHTTP1(true)
	case "h2c":
		p.SetUnencryptedHTTP2(true)
	default:
		fmt.Fprintln(os.Stderr, "batchbench: -proto must be h1 or h2c")
		os.Exit(2)
	}
	tr := &http.Transport{
		Protocols:           &p,
		MaxIdleConnsPerHost: *items * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: tr, Timeout: *timeout}
	r := &runner{client: client, url: strings.TrimSuffix(*base, "/"), path: *path, batchPath: *batchPath, n: *items}
	r.buildBatch()

	names := strings.Split(*modes, ",")
	fns := map[string]func() error{"batch": r.batch, "sequential": r.sequential, "parallel": r.parallel}
	for _, m := range names {
		if fns[m] == nil {
			fmt.Fprintf(os.Stderr, "batchbench: unknown mode %q\n", m)
			os.Exit(2)
		}
	}
	for range *warm {
		for _, m := range names {
			if err := fns[m](); err != nil {
				fmt.Fprintf(os.Stderr, "batchbench: warm-up %s: %v\n", m, err)
				os.Exit(1)
			}
		}
	}
	lat := map[string][]time.Duration{}
	errs := map[string]int{}
	firstErr := map[string]error{}
	deadline := time.Now().Add(*maxTime)
	for i := 0; i < *rounds && time.Now().Before(deadline); i++ {
		for _, m := range names {
			t0 := time.Now()
			err := fns[m]()
			d := time.Since(t0)
			if err != nil {
				errs[m]++
				if firstErr[m] == nil {
					firstErr[m] = err
				}
				continue
			}
			lat[m] = append(lat[m], d)
		}
	}
	tr.CloseIdleConnections()
	for _, m := range names {
		l := lat[m]
		if len(l) == 0 {
			fmt.Printf("proto=%s mode=%s items=%d rounds=0 errors=%d\n", *proto, m, *items, errs[m])
			continue
		}
		slices.Sort(l)
		var sum time.Duration
		for _, d := range l {
			sum += d
		}
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		q := func(f float64) time.Duration { return l[min(len(l)-1, int(f*float64(len(l))))] }
		fmt.Printf("proto=%s mode=%s items=%d rounds=%d errors=%d mean_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
			*proto, m, *items, len(l), errs[m], ms(sum/time.Duration(len(l))), ms(q(0.5)), ms(q(0.9)), ms(q(0.99)), ms(l[len(l)-1]))
		if firstErr[m] != nil {
			fmt.Fprintf(os.Stderr, "batchbench: %s: first error: %v\n", m, firstErr[m])
		}
	}
}

type runner struct {
	client    *http.Client
	url, path string
	batchPath string
	n         int
	body      []byte
}

func (r *runner) buildBatch() {
	type item struct {
		ID   string `json:"id"`
		Path string `json:"path"`
	}
	var req struct {
		Requests []item `json:"requests"`
	}
	for i := range r.n {
		req.Requests = append(req.Requests, item{ID: fmt.Sprint(i), Path: r.path})
	}
	r.body, _ = json.Marshal(req)
}

// get fetches the path once and reads the whole body.
func (r *runner) get() error {
	resp, err := r.client.Get(r.url + r.path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET: status %d", resp.StatusCode)
	}
	return nil
}

func (r *runner) sequential() error {
	for range r.n {
		if err := r.get(); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) parallel() error {
	var wg sync.WaitGroup
	errc := make(chan error, r.n)
	for range r.n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- r.get()
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) batch() error {
	resp, err := r.client.Post(r.url+r.batchPath, "application/json", bytes.NewReader(r.body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("batch: status %d: %.200s", resp.StatusCode, b)
	}
	var out struct {
		Responses []struct {
			Status int `json:"status"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	if len(out.Responses) != r.n {
		return fmt.Errorf("batch: %d responses, want %d", len(out.Responses), r.n)
	}
	for i, it := range out.Responses {
		if it.Status != http.StatusOK {
			return fmt.Errorf("batch: item %d: status %d", i, it.Status)
		}
	}
	return nil
}
