// Command sharedbench is the client of bench/shared.sh, the shared cache
// tier's benchmark. Every mode is bounded in requests and time and talks
// to loopback addresses given on the command line only.
//
//	get     -url TEMPLATE -n N [-start S] [-c C] [-host H] [-want RE] [-not RE] [-max-time D]
//	        GET TEMPLATE with %d replaced by S+1 … S+N, each once, over C
//	        keep-alive connections. -want: a regular expression every
//	        response's Cache-Status must match (e.g. `detail="shared"` for
//	        L2 hits), -not one none may match; the others are counted as
//	        mismatched.
//	        Prints: n= ok= errors= mismatched= rps= p50_ms= p99_ms= max_ms=
//	burst   -urls U1,U2,… -n PER [-host H] [-warm PATH]
//	        PER clients per URL; every client first opens its connection
//	        (GET base+PATH, %d = client number), then all send at once.
//	        Prints: n= ok= errors= p50_ms= max_ms=
//	purge   -replicas B1,B2,… -admin A -path TEMPLATE -n N [-host H] [-timeout D]
//	        N rounds: fill a new URL through every replica and check the
//	        others hit, POST a purge of it to admin A (the last replica's),
//	        then time until each other replica's answer is no longer a hit.
//	        Prints: samples= p50_ms= p99_ms= max_ms= purge_p50_ms= timeouts=
//	breaker -admin A -want open|closed [-signal stop|cont -pid P] [-url TEMPLATE -rate R] [-timeout D]
//	        Sends the signal to P (a process the caller started), then
//	        polls A's /cache/stats and /metrics every 5 ms until the tier's
//	        breaker is as wanted, while sending R misses a second to
//	        TEMPLATE (a breaker opens on failed operations, so it needs
//	        traffic). Prints: ms= requests=
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sharedbench get|burst|purge|breaker [flags] (see the package comment)")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode, args := os.Args[1], os.Args[2:]
	var err error
	switch mode {
	case "get":
		err = runGet(args)
	case "burst":
		err = runBurst(args)
	case "purge":
		err = runPurge(args)
	case "breaker":
		err = runBreaker(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sharedbench "+mode+": "+err.Error())
		os.Exit(1)
	}
}

func newClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: timeout,
	}
}

// fetch GETs u with Host host and returns the status and Cache-Status.
func fetch(c *http.Client, u, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, strings.Join(resp.Header.Values("Cache-Status"), ", "), err
}

func expand(tmpl string, i int) string {
	if strings.Contains(tmpl, "%d") {
		return strings.ReplaceAll(tmpl, "%d", strconv.Itoa(i))
	}
	return tmpl
}

// isHit reports whether a Cache-Status names a hit of the gateway.
var hitRE = regexp.MustCompile(`(^|,)\s*gateway;\s*hit(\s*;|\s*,|\s*$)`)

func isHit(cs string) bool { return hitRE.MatchString(cs) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the nearest-rank percentile p (0-100] of sorted ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func runGet(args []string) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	tmpl := fs.String("url", "", "URL template, %d = request number")
	n := fs.Int("n", 1000, "requests")
	start := fs.Int("start", 0, "first number is start+1")
	conns := fs.Int("c", 16, "concurrent connections")
	host := fs.String("host", "", "Host header")
	want := fs.String("want", "", "regular expression every Cache-Status must match")
	not := fs.String("not", "", "regular expression no Cache-Status may match")
	maxTime := fs.Duration("max-time", 60*time.Second, "stop sending after this long")
	_ = fs.Parse(args)
	if *tmpl == "" || *n < 1 || *conns < 1 {
		return fmt.Errorf("need -url and positive -n, -c")
	}
	wantRE, err := regexp.Compile(*want)
	if err != nil {
		return err
	}
	var notRE *regexp.Regexp
	if *not != "" {
		if notRE, err = regexp.Compile(*not); err != nil {
			return err
		}
	}
	c := newClient(*conns, 10*time.Second)
	var next atomic.Int64
	var errs, mismatched atomic.Int64
	var firstMismatch atomic.Value
	lat := make([][]time.Duration, *conns)
	deadline := time.Now().Add(*maxTime)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := int(next.Add(1))
				if i > *n {
					return
				}
				s := time.Now()
				code, cs, err := fetch(c, expand(*tmpl, *start+i), *host)
				d := time.Since(s)
				if err != nil || code != http.StatusOK {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], d)
				if !wantRE.MatchString(cs) || notRE != nil && notRE.MatchString(cs) {
					mismatched.Add(1)
					firstMismatch.CompareAndSwap(nil, cs)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if v := firstMismatch.Load(); v != nil {
		fmt.Fprintf(os.Stderr, "sharedbench get: %d responses did not match -want %q -not %q, e.g. Cache-Status: %s\n", mismatched.Load(), *want, *not, v)
	}
	fmt.Printf("n=%d ok=%d errors=%d mismatched=%d rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
		len(all)+int(errs.Load()), len(all), errs.Load(), mismatched.Load(), float64(len(all))/el.Seconds(),
		ms(pct(all, 50)), ms(pct(all, 99)), ms(pct(all, 100)))
	if len(all) == 0 {
		return fmt.Errorf("no request succeeded")
	}
	return nil
}

func runBurst(args []string) error {
	fs := flag.NewFlagSet("burst", flag.ExitOnError)
	urls := fs.String("urls", "", "comma-separated URLs, one per gateway")
	per := fs.Int("n", 100, "clients per URL")
	host := fs.String("host", "", "Host header")
	warm := fs.String("warm", "", "warm-up path, %d = client number")
	readyURLs := fs.String("ready", "", "admin /cache/stats URLs (comma separated) whose shared tier must report its breaker closed before the burst")
	_ = fs.Parse(args)
	list := strings.Split(*urls, ",")
	if *urls == "" || *per < 1 {
		return fmt.Errorf("need -urls and a positive -n")
	}
	total := len(list) * *per
	c := newClient(total, 30*time.Second)
	target := func(i int) string { return list[i%len(list)] }
	if *warm != "" {
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range total {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, _ := url.Parse(target(i))
				if code, _, err := fetch(c, u.Scheme+"://"+u.Host+expand(*warm, i), *host); err != nil || code != http.StatusOK {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			fmt.Fprintf(os.Stderr, "sharedbench burst: %d warm-up requests failed\n", f)
		}
	}
	// The warm-up's burst of distinct misses may have opened a tier's
	// breaker on a CPU-starved machine; the stampede measures the tier
	// at work, so it starts once every breaker is closed again.
	for _, u := range strings.Split(*readyURLs, ",") {
		if u == "" {
			continue
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			if breakerClosed(u) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the shared tier behind %s did not close its breaker", u)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start := make(chan struct{})
	lat := make([]time.Duration, total)
	bad := make([]bool, total)
	var ready, done sync.WaitGroup
	var t0 time.Time
	for i := range total {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			code, _, err := fetch(c, target(i), *host)
			lat[i] = time.Since(t0)
			bad[i] = err != nil || code != http.StatusOK
		}()
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	done.Wait()
	var ok []time.Duration
	for i, d := range lat {
		if !bad[i] {
			ok = append(ok, d)
		}
	}
	slices.Sort(ok)
	fmt.Printf("n=%d ok=%d errors=%d p50_ms=%.1f max_ms=%.1f\n", total, len(ok), total-len(ok), ms(pct(ok, 50)), ms(pct(ok, 100)))
	if len(ok) == 0 {
		return fmt.Errorf("no request succeeded")
	}
	return nil
}

func runPurge(args []string) error {
	fs := flag.NewFlagSet("purge", flag.ExitOnError)
	reps := fs.String("replicas", "", "comma-separated base URLs; the last is the one purged at")
	admin := fs.String("admin", "", "admin base URL of the last replica")
	path := fs.String("path", "/cacheable/1024?purge=%d", "path template, %d = round")
	n := fs.Int("n", 20, "rounds")
	host := fs.String("host", "bench", "Host header (the key's host, the same on every replica)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up on a replica after this long")
	_ = fs.Parse(args)
	bases := strings.Split(*reps, ",")
	if len(bases) < 2 || *admin == "" || *n < 1 {
		return fmt.Errorf("need -replicas (at least 2), -admin and a positive -n")
	}
	c := newClient(2*len(bases), 10*time.Second)
	others := bases[:len(bases)-1]
	var samples, purges []time.Duration
	timeouts := 0
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	for r := 1; r <= *n; r++ {
		p := expand(*path, r) + "&run=" + tag
		// Fill through the purging replica, then make every other
		// replica hold it in memory (an L2 hit copies it there).
		last := bases[len(bases)-1]
		if _, _, err := fetch(c, last+p, *host); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond) // the write to Redis lands after the response
		for _, b := range others {
			for try := 0; ; try++ {
				_, cs, err := fetch(c, b+p, *host)
				if err != nil {
					return err
				}
				if isHit(cs) && !strings.Contains(cs, `detail="shared"`) {
					break
				}
				if try == 20 {
					return fmt.Errorf("%s%s never became a memory hit (Cache-Status: %s)", b, p, cs)
				}
			}
		}
		form := url.Values{"url": {"http://" + *host + p}}
		t0 := time.Now()
		req, _ := http.NewRequest(http.MethodPost, *admin+"/cache/purge?"+form.Encode(), nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		purges = append(purges, time.Since(t0))
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"cluster"`)) {
			return fmt.Errorf("purge answered %d %s; want 200 with scope cluster", resp.StatusCode, bytes.TrimSpace(body))
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, b := range others {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(t0) < *timeout {
					// only-if-cached: a miss is a 504 and stores
					// nothing, so one replica's poll cannot refill
					// Redis for the other's.
					if cached, err := onlyIfCached(c, b+p, *host); err == nil && !cached {
						mu.Lock()
						samples = append(samples, time.Since(t0))
						mu.Unlock()
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
				mu.Lock()
				timeouts++
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	slices.Sort(samples)
	slices.Sort(purges)
	fmt.Printf("samples=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f purge_p50_ms=%.2f timeouts=%d\n",
		len(samples), ms(pct(samples, 50)), ms(pct(samples, 99)), ms(pct(samples, 100)), ms(pct(purges, 50)), timeouts)
	if len(samples) == 0 {
		return fmt.Errorf("no replica ever missed after a purge")
	}
	return nil
}

// breakerState reads the tier's breaker from admin's /cache/stats
// ("shared": {"breaker": …}) or, failing that, from /metrics
// (gateway_cache_shared_breaker_open).
func breakerState(c *http.Client, admin string) string {
	if resp, err := c.Get(admin + "/cache/stats"); err == nil {
		var v struct {
			Shared struct {
				Breaker string `json:"breaker"`
			} `json:"shared"`
		}
		err := json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err == nil && v.Shared.Breaker != "" {
			return v.Shared.Breaker
		}
	}
	resp, err := c.Get(admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "gateway_cache_shared_breaker_open "); ok {
			if strings.TrimSpace(v) == "1" {
				return "open"
			}
			return "closed"
		}
	}
	return ""
}

func runBreaker(args []string) error {
	fs := flag.NewFlagSet("breaker", flag.ExitOnError)
	admin := fs.String("admin", "", "admin base URL")
	want := fs.String("want", "open", "open or closed")
	sig := fs.String("signal", "", "stop or cont: sent to -pid first")
	pid := fs.Int("pid", 0, "process to signal (one the caller started)")
	tmpl := fs.String("url", "", "URL template of misses to send meanwhile, %d = request number")
	rate := fs.Int("rate", 200, "misses a second")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	_ = fs.Parse(args)
	if *admin == "" || (*want != "open" && *want != "closed") {
		return fmt.Errorf("need -admin and -want open|closed")
	}
	c := newClient(4, 2*time.Second)
	t0 := time.Now()
	switch *sig {
	case "":
	case "stop", "cont":
		if *pid <= 0 {
			return fmt.Errorf("-signal needs -pid")
		}
		s := syscall.SIGSTOP
		if *sig == "cont" {
			s = syscall.SIGCONT
		}
		if err := syscall.Kill(*pid, s); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-signal must be stop or cont")
	}
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	if *tmpl != "" && *rate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / time.Duration(*rate))
			defer tick.Stop()
			base := int(t0.UnixNano() % 1e9 * 1000)
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					i := int(sent.Add(1))
					go func() { _, _, _ = fetch(c, expand(*tmpl, base+i), "") }()
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for time.Since(t0) < *timeout {
		if breakerState(c, *admin) == *want {
			fmt.Printf("ms=%.1f requests=%d\n", ms(time.Since(t0)), sent.Load())
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("breaker not %s after %v (%d requests sent)", *want, *timeout, sent.Load())
}

// breakerClosed reports whether the /cache/stats at u says the shared
// tier's breaker is closed.
func breakerClosed(u string) bool {
	resp, err := http.Get(u)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Shared struct{ Breaker string } `json:"shared"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil && st.Shared.Breaker == "closed"
}

// onlyIfCached asks u with Cache-Control: only-if-cached and reports
// whether the replica answered from a cache (200) rather than 504.
func onlyIfCached(c *http.Client, u, host string) (bool, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Host = host
	req.Header.Set("Cache-Control", "only-if-cached")
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK, err
}
