package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gateway/config"
)

// TestMain lets a test start this binary as the gateway itself, so the
// signal and exit-code behaviour is tested on a real process.
func TestMain(m *testing.M) {
	if os.Getenv("GATEWAY_TEST_CHILD") == "1" {
		os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// child is the gateway running as a separate process.
type child struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	lines  chan string // stderr lines, for waiting on log events
	done   chan error
	exited chan struct{} // closed once Wait returned
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GATEWAY_TEST_CHILD=1")
	c := &child{cmd: cmd, lines: make(chan string, 1000), done: make(chan error, 1), exited: make(chan struct{})}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		b, _ := io.ReadAll(outPipe)
		c.mu.Lock()
		c.stdout.Write(b)
		c.mu.Unlock()
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			c.mu.Lock()
			c.stderr.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		close(c.lines)
	}()
	go func() {
		wg.Wait()
		c.done <- cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		// Reading cmd.ProcessState here would race with Wait when the
		// test killed the child itself; exited says it is gone.
		select {
		case <-c.exited:
		default:
			_ = cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

func (c *child) logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

var addrRE = regexp.MustCompile(`msg="?(listening|admin listening)"? address=(\S+)`)

// waitAddrs reads the log until the gateway reports its listener
// addresses; it returns the client and admin addresses.
func (c *child) waitAddrs(t *testing.T, wantAdmin bool) (gw, adm string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for gw == "" || (wantAdmin && adm == "") {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("gateway exited before listening; log:\n%s", c.logs())
			}
			if m := addrRE.FindStringSubmatch(line); m != nil {
				if m[1] == "listening" {
					gw = m[2]
				} else {
					adm = m[2]
				}
			}
		case <-deadline:
			t.Fatalf("gateway did not report its address; log:\n%s", c.logs())
		}
	}
	return gw, adm
}

// waitLog waits for a log line containing want; what names the wait in
// a failure, which also shows the log so far.
func (c *child) waitLog(t *testing.T, want, what string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("gateway exited before %s; log:\n%s", what, c.logs())
			}
			if strings.Contains(line, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s logged; log:\n%s", what, c.logs())
		}
	}
}

func (c *child) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-c.done:
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatalf("wait: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway did not exit; log:\n%s", c.logs())
	}
	return -1
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLIExitCodes(t *testing.T) {
	good := writeConfig(t, `listeners:
  - address: "127.0.0.1:0"
upstreams:
  app:
    targets: ["http://127.0.0.1:9"]
routes:
  - path: /
    upstream: app
`)
	several := writeConfig(t, `listeners:
  - address: "127.0.0.1:0"
  - address: "127.0.0.1:0"
admin:
  address: "off"
upstreams:
  a:
    targets: ["http://127.0.0.1:9", "http://127.0.0.1:10"]
  b:
    targets: ["http://127.0.0.1:11"]
routes:
  - path: /a
    upstream: a
    cache: {enabled: true}
    compress: {enabled: true}
  - path: /b
    upstream: b
    compress: {enabled: true}
  - path: /
    upstream: a
`)
	bad := writeConfig(t, `listeners:
  - address: "127.0.0.1:0"
    read_timeout: 5x
upstreams:
  app:
    targets: ["http://127.0.0.1:9"]
routes:
  - path: /
    upstream: nowhere
`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	listenBusy := writeConfig(t, `listeners:
  - address: "127.0.0.1:0"
  - address: "`+busy+`"
upstreams:
  app:
    targets: ["http://127.0.0.1:9"]
routes:
  - upstream: app
`)
	adminBusy := writeConfig(t, `listeners:
  - address: "127.0.0.1:0"
admin:
  health_address: "127.0.0.1:0"
  address: "`+busy+`"
upstreams:
  app:
    targets: ["http://127.0.0.1:9"]
routes:
  - upstream: app
`)
	acmeBad := writeConfig(t, `listeners:
  - address: "127.0.0.1:0"
    tls:
      cert_file: c.pem
      acme:
        domains: [a.example, "*.b.example", bad_name]
        storage: "`+t.TempDir()+`"
        http_address: "`+busy+`"
upstreams:
  app:
    targets: ["http://127.0.0.1:9"]
routes:
  - upstream: app
`)
	tests := []struct {
		name       string
		args       []string
		code       int
		out, errIn []string
	}{
		{"validate bad acme", []string{"validate", acmeBad}, 1, nil, []string{
			acmeBad + ":4: listeners[0].tls.cert_file: stat c.pem",
			acmeBad + ":5: listeners[0].tls.acme: cannot be used with cert_file and key_file",
			acmeBad + `:6: listeners[0].tls.acme.domains[1]: "*.b.example" is a wildcard`,
			acmeBad + `:6: listeners[0].tls.acme.domains[2]: "bad_name" is not a DNS name`,
			acmeBad + `:8: listeners[0].tls.acme.http_address: "` + busy + `" cannot be bound`}},
		{"validate good", []string{"validate", "-config", good}, 0, []string{"ok"}, nil},
		{"validate bad", []string{"validate", "-config", bad}, 1, nil,
			[]string{"gateway.yaml:3:", "listeners[0].read_timeout", "gateway.yaml:9:", "routes[0].upstream", "nowhere"}},
		{"validate FILE", []string{"validate", good}, 0, []string{good + ": ok: 1 listener, 1 route (0 caching, 0 compressing), 1 upstream (1 target), admin on 127.0.0.1:9090\n"}, nil},
		{"validate summary", []string{"validate", several}, 0, []string{several + ": ok: 2 listeners, 3 routes (1 caching, 2 compressing), 2 upstreams (3 targets), no admin listener\n"}, nil},
		{"validate FILE bad", []string{"validate", bad}, 1, nil, []string{"gateway.yaml:3:", "listeners[0].read_timeout"}},
		{"validate both", []string{"validate", "-config", good, bad}, 2, nil, []string{"given by -config already"}},
		{"run FILE bad", []string{"run", bad, "-watch"}, 1, nil, []string{"gateway.yaml:9:", "routes[0].upstream"}},
		{"run missing", []string{"run", "-config", "none.yaml"}, 1, nil, []string{"none.yaml: no such file"}},
		{"bare in an empty directory", nil, 1, nil, []string{"no gateway.yaml here: give one with -config FILE", "gateway demo", "gateway proxy --to URL", "gateway -h lists the commands"}},
		{"run in an empty directory", []string{"run"}, 1, nil, []string{"no gateway.yaml here"}},
		{"validate in an empty directory", []string{"validate"}, 1, nil, []string{"no gateway.yaml here"}},
		{"--version", []string{"--version"}, 0, []string{"gateway dev"}, nil},
		{"-version", []string{"-version"}, 0, []string{"gateway dev"}, nil},
		{"validate missing", []string{"validate", "-config", filepath.Join(t.TempDir(), "none.yaml")}, 1, nil, []string{"none.yaml"}},
		{"version", []string{"version"}, 0, []string{"gateway dev"}, nil},
		{"-h", []string{"-h"}, 0, []string{"commands:", "validate"}, nil},
		{"--help", []string{"--help"}, 0, []string{"commands:", "validate"}, nil},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{"unknown command"}},
		{"unknown flag", []string{"run", "-nope"}, 2, nil, []string{"flag provided but not defined"}},
		{"proxy without --to", []string{"proxy"}, 2, nil, []string{"--to URL is required"}},
		{"proxy bad url", []string{"proxy", "--to", "ftp://x", "--admin", "off"}, 1, nil,
			[]string{"gateway: --to \"ftp://x\": scheme must be http or https"}},
		{"proxy second url bad", []string{"proxy", "--to", "http://a, b:x", "--admin", "off"}, 1, nil,
			[]string{`--to "b:x" (taken as "http://b:x"): `}},
		{"proxy bad flags", []string{"proxy", "--to", "x", "--cache-size", "12 parsecs", "--protocol", "h3", "--listen", "foo", "--admin", "bar"}, 1, nil,
			[]string{`--cache-size "12 parsecs": invalid size: unknown unit "parsecs"`, `--protocol "h3": invalid value (want http1`,
				`--listen "foo": invalid address: missing port`, `--admin "bar": invalid address: missing port`}},
		{"proxy bad --redis", []string{"proxy", "--to", "x", "--admin", "off", "--redis", "http://r:1", "--redis", "redis://a:1,b"}, 1, nil,
			[]string{`gateway: --redis "http://r:1": scheme must be redis or rediss`, `--redis "b": must be host:port`}},
		{"proxy --redis with --no-cache", []string{"proxy", "--to", "x", "--redis", "redis://a:1", "--no-cache"}, 2, nil,
			[]string{"--redis is a tier of the cache"}},
		{"proxy --help names --redis", []string{"proxy", "-h"}, 0, nil, []string{"-redis", "rediss:// for TLS"}},
		{"proxy bad --async", []string{"proxy", "--to", "x", "--async", "sometimes"}, 2, nil,
			[]string{`proxy: invalid value "sometimes" for flag --async: want prefer or always`}},
		{"proxy --data-dir without --async", []string{"proxy", "--to", "x", "--data-dir", "d"}, 2, nil,
			[]string{"--data-dir is where async jobs are kept; it needs --async"}},
		{"proxy --data-dir that cannot be made", []string{"proxy", "--to", "x", "--admin", "off", "--async", "prefer", "--data-dir", "/dev/null/jobs"}, 1, nil,
			[]string{`gateway: --data-dir "/dev/null/jobs": cannot create it`}},
		{"proxy --help names --async", []string{"proxy", "-h"}, 0, nil, []string{"-async", "Prefer: respond-async", "-data-dir"}},
		{"demo --help names --data-dir", []string{"demo", "-h"}, 0, nil, []string{"-data-dir", "temporary"}},
		{"proxy --help says http:// is assumed", []string{"proxy", "-h"}, 0, nil, []string{"without a scheme, http:// is assumed"}},
		{"demo bad listen", []string{"demo", "--listen", "nope"}, 1, nil, []string{`gateway: --listen "nope": invalid address`}},
		{"proxy listen in use", []string{"proxy", "--to", "x", "--listen", busy, "--admin", "off"}, 1, nil,
			[]string{"gateway: --listen " + busy + " is in use; pick another with --listen\n"}},
		{"proxy admin in use", []string{"proxy", "--to", "x", "--listen", "127.0.0.1:0", "--admin", busy}, 1, nil,
			[]string{"gateway: --admin " + busy + " is in use; pick another with --admin\n"}},
		{"demo admin in use", []string{"demo", "--listen", "127.0.0.1:0", "--admin", busy}, 1, nil,
			[]string{"gateway: --admin " + busy + " is in use; pick another with --admin\n"}},
		{"run listener in use", []string{"run", listenBusy}, 1, nil,
			[]string{"gateway: " + listenBusy + ":3: listeners[1].address: " + busy + " is in use; pick another port\n"}},
		{"run admin in use", []string{"run", adminBusy}, 1, nil,
			[]string{"gateway: " + adminBusy + ":5: admin.address: " + busy + " is in use; pick another port\n"}},
	}
	// The commands run in an empty directory, where there is no
	// gateway.yaml to fall back on.
	t.Chdir(t.TempDir())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cli(tt.args, &out, &errb)
			if code != tt.code {
				t.Fatalf("exit code: got %d; want %d (stderr %q)", code, tt.code, errb.String())
			}
			for _, s := range tt.out {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout: got %q; want it to contain %q", out.String(), s)
				}
			}
			for _, s := range tt.errIn {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr: got %q; want it to contain %q", errb.String(), s)
				}
			}
		})
	}
}

// TestShutdownDrains shows SIGTERM letting a slow in-flight request
// finish while new connections are refused, and the process exiting 0.
func TestShutdownDrains(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		fmt.Fprint(w, "done")
	}))
	defer up.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	cfg := writeConfig(t, fmt.Sprintf(`shutdown_grace: 20s
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
routes:
  - path: /
    upstream: app
`, up.URL))
	c := startChild(t, "run", "-config", cfg)
	gw, adm := c.waitAddrs(t, true)
	get(t, "http://"+adm+"/readyz", http.StatusOK)

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + gw + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	<-arrived
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The listener closes first; the in-flight request is still held.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", gw, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("new connections still accepted after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The admin listener still answers during the drain, and says the
	// gateway is not ready, so a load balancer stops sending.
	if body := get(t, "http://"+adm+"/readyz", http.StatusServiceUnavailable); !strings.Contains(body, "draining") {
		t.Errorf("/readyz during the drain: %q; want it to say draining", body)
	}
	close(release)
	r := <-res
	if r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Fatalf("in-flight request: got %d %q %v; want 200 \"done\"", r.status, r.body, r.err)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit code: got %d; want 0; log:\n%s", code, c.logs())
	}
}

// TestDemo runs `gateway demo` and follows the lines it prints.
func TestDemo(t *testing.T) {
	c := startChild(t, "demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	gw, adm := c.waitAddrs(t, true)
	instances := map[string]bool{}
	for range 4 {
		body := get(t, "http://"+gw+"/api/hello", http.StatusOK)
		for _, in := range []string{`"instance":"a"`, `"instance":"b"`} {
			if strings.Contains(body, in) {
				instances[in] = true
			}
		}
	}
	if len(instances) != 2 {
		t.Errorf("round robin: got instances %v; want both a and b", instances)
	}
	if body := get(t, "http://"+gw+"/api/headers", http.StatusOK); !strings.Contains(body, `"Via":"1.1 gateway"`) {
		t.Errorf("headers: got %s; want Via set by the gateway", body)
	}
	get(t, "http://"+gw+"/other", http.StatusNotFound)
	if body := get(t, "http://"+adm+"/readyz", http.StatusOK); !strings.Contains(body, `"ready": true`) {
		t.Errorf("readyz: got %s", body)
	}
	// The demo route caches: the second request for /api/cached is a hit
	// with the very same body.
	first, st1 := getStatus(t, "http://"+gw+"/api/cached")
	second, st2 := getStatus(t, "http://"+gw+"/api/cached")
	if first != second || !strings.Contains(st1, "fwd=uri-miss") || !strings.Contains(st2, "hit") {
		t.Errorf("demo cache: got %q (%s) then %q (%s); want a miss then a hit with the same body", first, st1, second, st2)
	}
	if body := get(t, "http://"+adm+"/cache/stats", http.StatusOK); !strings.Contains(body, `"hits": 1`) {
		t.Errorf("cache stats: got %s; want one hit", body)
	}
	// The dashboard the banner points at is served.
	if body := get(t, "http://"+adm+"/ui/", http.StatusOK); !strings.Contains(body, "<html") {
		t.Errorf("GET /ui/ on the demo's admin listener: %.80q; want the page", body)
	}
	// The batching endpoint: two items, answered in order, the cached
	// one from the cache.
	resp, err := http.Post("http://"+gw+"/_batch", "application/json",
		strings.NewReader(`{"requests": [{"id": "h", "path": "/api/hello"}, {"id": "c", "path": "/api/cached"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if body := string(b); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"id":"h","status":200`) ||
		!strings.Contains(body, `"id":"c","status":200`) || strings.Index(body, `"id":"h"`) > strings.Index(body, `"id":"c"`) ||
		!strings.Contains(body, "hit") {
		t.Errorf("batch: got %d %s; want both items 200, in order, the cached one a hit", resp.StatusCode, body)
	}
	demoAsync(t, gw, adm)
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit code: got %d; want 0", code)
	}
	c.mu.Lock()
	out, errOut := c.stdout.String(), c.stderr.String()
	c.mu.Unlock()
	if !strings.Contains(errOut, "curl -s http://"+gw+"/api/hello") {
		t.Errorf("demo stderr: got %q; want ready-to-paste curl lines", errOut)
	}
	if !strings.Contains(errOut, "curl -i -X POST http://"+gw+"/reports/q1") || !strings.Contains(errOut, "curl -iL http://"+gw+"/_jobs/<id>") {
		t.Errorf("demo stderr: got %q; want the async route's submit and poll lines", errOut)
	}
	if !strings.Contains(out, "job=") {
		t.Errorf("demo access log: got %q; want the async requests to name their job", out)
	}
	if strings.Contains(out, "curl") {
		t.Errorf("demo stdout: got %q; want the access log alone, the banner on stderr", out)
	}
}

// demoAsync submits a report to the demo's async route: 202 Accepted at
// once with the job's Location under /_jobs/, which answers 200 with the
// report once the backend's 3 s are over; the admin listener counts it.
func demoAsync(t *testing.T, gw, adm string) {
	t.Helper()
	start := time.Now()
	resp, err := http.Post("http://"+gw+"/reports/q1", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	// The sample report takes 3 s: a 202 sooner did not wait for it.
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(loc, "/_jobs/") || time.Since(start) >= 3*time.Second {
		t.Fatalf("async: got %d Location %q after %v; want 202 before the report is ready, with a Location under /_jobs/", resp.StatusCode, loc, time.Since(start))
	}
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + gw + loc
	}
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		r, err := http.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		body = string(b)
		if r.StatusCode == http.StatusOK && strings.Contains(body, `"report":"q1"`) {
			break
		}
	}
	if !strings.Contains(body, `"report":"q1"`) {
		t.Fatalf("async: polling %s: last got %s; want the report", loc, body)
	}
	if time.Since(start) < 3*time.Second {
		t.Errorf("async: the report came after %v; want the backend's 3 s", time.Since(start))
	}
	if st := get(t, "http://"+adm+"/jobs/stats", http.StatusOK); !strings.Contains(st, `"succeeded": 1`) {
		t.Errorf("jobs stats: got %s; want one job succeeded", st)
	}
}

// TestProxyCommand runs the file-less `gateway proxy`.
func TestProxyCommand(t *testing.T) {
	var cacheable atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cacheable" {
			if cacheable.Add(1) > 1 {
				t.Errorf("the upstream saw /cacheable twice")
			}
			w.Header().Set("Cache-Control", "max-age=60")
		}
		fmt.Fprintf(w, "upstream saw %s", r.URL.Path)
	}))
	defer up.Close()
	c := startChild(t, "proxy", "--listen", "127.0.0.1:0", "--to", up.URL, "--admin", "off")
	gw, _ := c.waitAddrs(t, false)
	if body := get(t, "http://"+gw+"/x/y", http.StatusOK); body != "upstream saw /x/y" {
		t.Errorf("got %q; want %q", body, "upstream saw /x/y")
	}
	// It caches by default: a response with max-age is served again
	// without the upstream.
	if _, st := getStatus(t, "http://"+gw+"/cacheable"); !strings.Contains(st, "stored") {
		t.Errorf("first: Cache-Status %q; want stored", st)
	}
	if body, st := getStatus(t, "http://"+gw+"/cacheable"); !strings.Contains(st, "hit") || body != "upstream saw /cacheable" {
		t.Errorf("second: got %q, Cache-Status %q; want a hit", body, st)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit code: got %d; want 0", code)
	}
}

// getStatus GETs url, wants 200, and returns the body and Cache-Status.
func getStatus(t *testing.T, url string) (body, cacheStatus string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %d; want 200 (%s)", url, resp.StatusCode, b)
	}
	return string(b), resp.Header.Get("Cache-Status")
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: got %d; want %d (%s)", url, resp.StatusCode, want, b)
	}
	return string(b)
}

// TestFlagValuesTakenAsTyped: a flag value reaches the config as typed;
// the config's ${VAR} and $$ expansion is for files, not for flags.
func TestFlagValuesTakenAsTyped(t *testing.T) {
	t.Setenv("GATEWAY_FLAG_TEST", "expanded")
	const typed = "/tmp/a$$b${GATEWAY_FLAG_TEST}$.log"
	yaml := "listeners:\n  - address: " + yamlString("127.0.0.1:0") +
		"\nupstreams:\n  app:\n    targets: [" + yamlString("http://127.0.0.1:9") + "]\nroutes:\n  - upstream: app\n" +
		accessLogYAML(typed, "json")
	cfg, err := config.Parse("flags", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.AccessLog.Output; got != typed {
		t.Errorf("access log output %q; want %q as typed", got, typed)
	}
}

// TestPartsOff: demo and proxy run, serve and stop cleanly with each
// flag that turns a part off, alone and together; the demo's banner
// leaves out the admin lines when there is no admin listener.
func TestPartsOff(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }))
	defer up.Close()
	for _, args := range [][]string{
		{"demo", "--admin", "off"},
		{"demo", "--access-log", "off"},
		{"demo", "--admin", "off", "--access-log", "off"},
		{"proxy", "--to", up.URL, "--admin", "off"},
		{"proxy", "--to", up.URL, "--no-cache"},
		{"proxy", "--to", up.URL, "--no-compress"},
		{"proxy", "--to", up.URL, "--h2c=false"},
		{"proxy", "--to", up.URL, "--access-log", "off"},
		{"proxy", "--to", up.URL, "--admin", "off", "--no-cache", "--no-compress", "--h2c=false", "--access-log", "off"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			full := append([]string{args[0], "--listen", "127.0.0.1:0"}, args[1:]...)
			adminOff := slices.Contains(args, "--admin") // only ever "--admin off" above
			if !adminOff {
				full = append(full, "--admin", "127.0.0.1:0")
			}
			c := startChild(t, full...)
			gw, _ := c.waitAddrs(t, !adminOff)
			path := "/"
			if args[0] == "demo" {
				path = "/api/hello"
			}
			get(t, "http://"+gw+path, http.StatusOK)
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			if code := c.wait(t); code != 0 {
				t.Fatalf("exit code %d; want 0; log:\n%s", code, c.logs())
			}
			c.mu.Lock()
			out := c.stderr.String() // the banner's
			c.mu.Unlock()
			if args[0] == "demo" && !adminOff && !strings.Contains(out, "/ui/") {
				t.Errorf("demo banner: no dashboard URL in\n%s", out)
			}
			if args[0] == "demo" && strings.Contains(out, "Admin (loopback only)") == adminOff {
				t.Errorf("demo banner with admin off=%t: admin lines present=%t; want %t", adminOff, !adminOff, !adminOff)
			}
		})
	}
}
