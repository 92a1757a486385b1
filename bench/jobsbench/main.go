// Command jobsbench is the client of bench/jobs.sh, the async routes'
// benchmark. Every mode is bounded in requests and time and talks to
// loopback addresses given on the command line only.
//
//	post  -url U -n N [-c C] [-body B] [-want S] [-max-time D]
//	      POSTs a B-byte body to U N times over C keep-alive connections;
//	      an answer with another status than S (a 202 must also carry
//	      Location: /_jobs/...) counts as an error.
//	      Prints: n= ok= errors= rps= p50_ms= p99_ms= max_ms=
//	drain -url U -n N -stats A [-c C] [-body B] [-every P] [-timeout D]
//	      Submits N jobs (POST to U, each answered 202) over C connections,
//	      then polls A (the admin /jobs/stats) every P (50 ms) until N more jobs
//	      have ended than before the first submit, and reads the last
//	      job's status (it must redirect, 303, to its result).
//	      Prints: n= accepted= errors= submit_s= total_s= jobs_per_s=
//	      succeeded= failed= run_mean_ms= wait_p50_ms= wait_p99_ms= last=
//	idle  -stats A [-every P] [-timeout D]
//	      Waits until A reports no job queued or running (polled every P).
//	      Prints: ms= succeeded= failed=
//
// /jobs/stats with the bbolt store counts the stored jobs one by one (every
// job is kept for result_lifetime), so polling it often costs the gateway
// CPU of its own: P is 50 ms, not less, by default.
//
//	fsync -dir D [-n N] [-size B]
//	      Writes N blocks of B bytes to a new file in D, each followed by
//	      fdatasync (as bbolt commits), and removes the file.
//	      Prints: n= p50_us= mean_us= p99_us=
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: jobsbench post|drain|idle|fsync [flags] (see the package comment)")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode, args := os.Args[1], os.Args[2:]
	var err error
	switch mode {
	case "post":
		err = runPost(args)
	case "drain":
		err = runDrain(args)
	case "idle":
		err = runIdle(args)
	case "fsync":
		err = runFsync(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobsbench "+mode+": "+err.Error())
		os.Exit(1)
	}
}

func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
		},
		Timeout: 30 * time.Second,
		// A 303 to the result is an answer to check, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// load sends n POSTs with body over c connections, each checked by ok;
// stops at deadline. Returns the latencies of the requests ok accepted,
// the error count and the wall time.
func load(cl *http.Client, url string, n, c int, body []byte, deadline time.Time, ok func(*http.Response) bool, onOK func(*http.Response)) ([]time.Duration, int64, time.Duration) {
	var next, errs atomic.Int64
	lat := make([][]time.Duration, c)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && time.Now().Before(deadline) {
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/octet-stream")
				resp, err := cl.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if !ok(resp) {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
				if onOK != nil {
					onOK(resp)
				}
			}
		})
	}
	wg.Wait()
	return slices.Concat(lat...), errs.Load(), time.Since(start)
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(p*float64(len(d)) + 0.5)
	return d[min(max(i-1, 0), len(d)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

func accepted(resp *http.Response) bool {
	return resp.StatusCode == http.StatusAccepted && strings.Contains(resp.Header.Get("Location"), "/_jobs/")
}

func runPost(args []string) error {
	fs := flag.NewFlagSet("post", flag.ExitOnError)
	url := fs.String("url", "", "URL to POST to")
	n := fs.Int("n", 1000, "requests")
	c := fs.Int("c", 16, "connections")
	size := fs.Int("body", 1024, "request body bytes")
	want := fs.Int("want", 202, "expected status")
	maxTime := fs.Duration("max-time", time.Minute, "bound on the run")
	_ = fs.Parse(args)
	if *url == "" || *n <= 0 || *c <= 0 {
		return errors.New("-url, -n > 0 and -c > 0 are required")
	}
	ok := func(r *http.Response) bool { return r.StatusCode == *want }
	if *want == http.StatusAccepted {
		ok = accepted
	}
	lat, errs, wall := load(newClient(*c), *url, *n, *c, bytes.Repeat([]byte("x"), *size), time.Now().Add(*maxTime), ok, nil)
	fmt.Printf("n=%d ok=%d errors=%d rps=%.0f p50_ms=%s p99_ms=%s max_ms=%s\n", *n, len(lat), errs,
		float64(len(lat))/wall.Seconds(), ms(pct(lat, .5)), ms(pct(lat, .99)), ms(pct(lat, 1)))
	if len(lat) == 0 {
		return errors.New("no request answered as expected")
	}
	return nil
}

type timing struct {
	Count      uint64  `json:"count"`
	SumSeconds float64 `json:"sum_seconds"`
	P50Seconds float64 `json:"p50_seconds"`
	P99Seconds float64 `json:"p99_seconds"`
}

type stats struct {
	Queued    int    `json:"queued"`
	Running   int    `json:"running"`
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Cancelled uint64 `json:"cancelled"`
	Wait      timing `json:"wait"`
	Run       timing `json:"run"`
}

func (s *stats) ended() uint64 { return s.Succeeded + s.Failed + s.Cancelled }

var statsClient = &http.Client{Timeout: 5 * time.Second}

func getStats(url string) (*stats, error) {
	resp, err := statsClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var s stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return &s, nil
}

func runDrain(args []string) error {
	fs := flag.NewFlagSet("drain", flag.ExitOnError)
	url := fs.String("url", "", "async route URL to POST to")
	statsURL := fs.String("stats", "", "admin /jobs/stats URL")
	n := fs.Int("n", 2000, "jobs")
	c := fs.Int("c", 16, "connections")
	size := fs.Int("body", 1024, "request body bytes")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on the run")
	every := fs.Duration("every", 50*time.Millisecond, "stats polling interval")
	_ = fs.Parse(args)
	if *url == "" || *statsURL == "" || *n <= 0 || *c <= 0 {
		return errors.New("-url, -stats, -n > 0 and -c > 0 are required")
	}
	before, err := getStats(*statsURL)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	cl := newClient(*c)
	var last atomic.Pointer[string]
	start := time.Now()
	lat, errs, submit := load(cl, *url, *n, *c, bytes.Repeat([]byte("x"), *size), deadline, accepted, func(r *http.Response) {
		loc := r.Header.Get("Location")
		last.Store(&loc)
	})
	acc := uint64(len(lat))
	var after *stats
	for {
		after, err = getStats(*statsURL)
		if err != nil {
			return err
		}
		if after.ended()-before.ended() >= acc || time.Now().After(deadline) {
			break
		}
		time.Sleep(*every)
	}
	total := time.Since(start)
	ended := after.ended() - before.ended()
	// The last accepted job, read back: done, it redirects to its result.
	lastStatus := "none"
	if p := last.Load(); p != nil {
		u, perr := neturl.Parse(*url)
		if perr != nil {
			return perr
		}
		if resp, err := cl.Get(u.Scheme + "://" + u.Host + *p); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lastStatus = fmt.Sprint(resp.StatusCode)
		} else {
			lastStatus = "error"
		}
	}
	runs := after.Run.Count - before.Run.Count
	runMean := 0.0
	if runs > 0 {
		runMean = (after.Run.SumSeconds - before.Run.SumSeconds) / float64(runs) * 1000
	}
	fmt.Printf("n=%d accepted=%d errors=%d submit_s=%.3f total_s=%.3f jobs_per_s=%.1f succeeded=%d failed=%d run_mean_ms=%.1f wait_p50_ms=%.0f wait_p99_ms=%.0f last=%s\n",
		*n, acc, errs, submit.Seconds(), total.Seconds(), float64(ended)/total.Seconds(),
		after.Succeeded-before.Succeeded, after.Failed-before.Failed, runMean,
		after.Wait.P50Seconds*1000, after.Wait.P99Seconds*1000, lastStatus)
	if ended < acc {
		return fmt.Errorf("only %d of %d jobs ended within %s", ended, acc, *timeout)
	}
	return nil
}

func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	statsURL := fs.String("stats", "", "admin /jobs/stats URL")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on the wait")
	every := fs.Duration("every", 50*time.Millisecond, "stats polling interval")
	_ = fs.Parse(args)
	start := time.Now()
	for {
		s, err := getStats(*statsURL)
		if err != nil {
			return err
		}
		if s.Queued == 0 && s.Running == 0 {
			fmt.Printf("ms=%.0f succeeded=%d failed=%d\n", float64(time.Since(start))/1e6, s.Succeeded, s.Failed)
			return nil
		}
		if time.Since(start) > *timeout {
			return fmt.Errorf("still %d queued, %d running after %s", s.Queued, s.Running, *timeout)
		}
		time.Sleep(*every)
	}
}

func runFsync(args []string) error {
	fs := flag.NewFlagSet("fsync", flag.ExitOnError)
	dir := fs.String("dir", "", "directory (on the disk the jobs store uses)")
	n := fs.Int("n", 200, "writes")
	size := fs.Int("size", 4096, "bytes per write")
	_ = fs.Parse(args)
	if *dir == "" || *n <= 0 || *size <= 0 {
		return errors.New("-dir, -n > 0 and -size > 0 are required")
	}
	f, err := os.CreateTemp(*dir, "fsync-*.dat")
	if err != nil {
		return err
	}
	defer os.Remove(filepath.Clean(f.Name()))
	defer f.Close()
	block := bytes.Repeat([]byte{1}, *size)
	lat := make([]time.Duration, 0, *n)
	var sum time.Duration
	for i := range *n {
		if _, err := f.WriteAt(block, int64(i%64)*int64(*size)); err != nil {
			return err
		}
		t0 := time.Now()
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
		d := time.Since(t0)
		sum += d
		lat = append(lat, d)
	}
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/1e3) }
	fmt.Printf("n=%d p50_us=%s mean_us=%s p99_us=%s\n", *n, us(pct(lat, .5)), us(sum/time.Duration(*n)), us(pct(lat, .99)))
	return nil
}
