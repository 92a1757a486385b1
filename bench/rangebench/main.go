// Command rangebench sends random single-range GETs (Range: bytes=a-b,
// LEN bytes at a uniformly random offset of a SIZE-byte file) and checks
// every answer is a 206 of exactly LEN bytes.
//
// Warm mode (default) runs -c connections for at most -d or -n requests
// and prints one line:
//
//	mode=warm requests=N rps=R p50_us=A p99_us=B errors=E
//
// Cold mode (-cold N) sends N requests one after another and prints
//
//	mode=cold requests=N p50_us=A p99_us=B errors=E
//
// Every range's bytes are checked against bench/rangeorigin's file
// (-verify=false: only its length). -fill first GETs the whole file once (no Range) and checks its length.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "URL of the file")
	size := flag.Int64("size", 64<<20, "file size in bytes")
	length := flag.Int64("len", 64<<10, "bytes per range")
	conc := flag.Int("c", 16, "connections (warm mode)")
	dur := flag.Duration("d", 10*time.Second, "duration (warm mode)")
	maxReq := flag.Int("n", 5_000_000, "at most this many requests (warm mode)")
	cold := flag.Int("cold", 0, "cold mode: this many sequential requests")
	fill := flag.Bool("fill", false, "GET the whole file once first")
	seed := flag.Uint64("seed", 1, "random seed")
	timeout := flag.Duration("timeout", 60*time.Second, "per-request timeout")
	verify := flag.Bool("verify", true, "check every range's bytes against bench/rangeorigin's file")
	flag.Parse()
	if *url == "" || *length <= 0 || *length > *size || *conc <= 0 {
		fmt.Fprintln(os.Stderr, "rangebench: need -url, 0 < -len <= -size, -c > 0")
		os.Exit(2)
	}
	if *verify {
		file = makeFile(*size)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conc + 1, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: *timeout}

	if *fill {
		n, err := get(client, *url, "", -1, -1)
		if err != nil || n != *size {
			fmt.Fprintf(os.Stderr, "rangebench: fill: got %d bytes, want %d (%v)\n", n, *size, err)
			os.Exit(1)
		}
	}

	if *cold > 0 {
		rng := rand.New(rand.NewPCG(*seed, 2))
		lat := make([]time.Duration, 0, *cold)
		errs := 0
		for range *cold {
			a := rng.Int64N(*size - *length + 1)
			t0 := time.Now()
			if _, err := get(client, *url, fmt.Sprintf("bytes=%d-%d", a, a+*length-1), a, *length); err != nil {
				errs++
				if errs == 1 {
					fmt.Fprintln(os.Stderr, "rangebench:", err)
				}
				continue
			}
			lat = append(lat, time.Since(t0))
		}
		fmt.Printf("mode=cold requests=%d p50_us=%.1f p99_us=%.1f errors=%d\n", len(lat), pct(lat, 0.50), pct(lat, 0.99), errs)
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	var budget sync.Mutex
	left := *maxReq
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *conc {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(*seed, uint64(i)+10))
			var lat []time.Duration
			e := 0
			for ctx.Err() == nil {
				budget.Lock()
				ok := left > 0
				left--
				budget.Unlock()
				if !ok {
					break
				}
				a := rng.Int64N(*size - *length + 1)
				t0 := time.Now()
				if _, err := get(client, *url, fmt.Sprintf("bytes=%d-%d", a, a+*length-1), a, *length); err != nil {
					if ctx.Err() == nil {
						e++
						if e == 1 {
							fmt.Fprintln(os.Stderr, "rangebench:", err)
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
		}(i)
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("mode=warm requests=%d rps=%.1f p50_us=%.1f p99_us=%.1f errors=%d\n",
		len(all), float64(len(all))/el.Seconds(), pct(all, 0.50), pct(all, 0.99), errs)
}

// get GETs url with Range rng (none when ""), reads the body and checks
// its length is want (-1: any) and the status 206 (200 without a range).
func get(c *http.Client, url, rng string, start, want int64) (int64, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int64
	if want > 0 {
		buf := make([]byte, want+1)
		m, err := io.ReadFull(resp.Body, buf)
		n = int64(m)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return n, err
		}
		if n == want && file != nil && start >= 0 && !bytes.Equal(buf[:n], file[start:start+want]) {
			return n, errors.New(rng + ": body differs from the origin's file")
		}
	} else {
		m, err := io.Copy(io.Discard, resp.Body)
		n = m
		if err != nil {
			return n, err
		}
	}
	wantStatus := http.StatusOK
	if rng != "" {
		wantStatus = http.StatusPartialContent
	}
	if resp.StatusCode != wantStatus {
		return n, fmt.Errorf("%s: status %d, want %d", rng, resp.StatusCode, wantStatus)
	}
	if want >= 0 && n != want {
		return n, errors.New(rng + ": wrong body length " + fmt.Sprint(n))
	}
	return n, nil
}

// file is bench/rangeorigin's file, to check every range against
// (nil with -verify=false).
var file []byte

// makeFile builds the file bench/rangeorigin serves (the same xorshift).
func makeFile(size int64) []byte {
	b := make([]byte, size)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(float64(len(d)-1) * p)
	return float64(d[i].Nanoseconds()) / 1e3
}
