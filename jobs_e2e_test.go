package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gateway/internal/redistest"
)

// Async routes end to end: real gateway processes, a real origin, the
// real bbolt file, and (across replicas) a real Redis.

// jobsOrigin answers /work/ after its gate opens (at once when open),
// counting requests per path.
type jobsOrigin struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int
	hold   chan struct{} // nil: answer at once
	seen   chan string
	gone   chan string // paths whose held request was cancelled
}

func newJobsOrigin(t *testing.T) *jobsOrigin {
	o := &jobsOrigin{counts: map[string]int{}, seen: make(chan string, 1024), gone: make(chan string, 1024)}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		o.mu.Lock()
		o.counts[r.URL.Path]++
		n := o.counts[r.URL.Path]
		hold := o.hold
		o.mu.Unlock()
		select {
		case o.seen <- r.URL.Path:
		default:
		}
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				o.gone <- r.URL.Path
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Report", "yes")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s #%d body=%s", r.Method, r.URL.Path, n, b)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *jobsOrigin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[path]
}

func (o *jobsOrigin) holdAll() func() {
	ch := make(chan struct{})
	o.mu.Lock()
	o.hold = ch
	o.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			o.hold = nil
			o.mu.Unlock()
			close(ch)
		})
	}
}

func asyncConfig(origin, dataDir, extra, jobsExtra string) string {
	return fmt.Sprintf(`listeners:
  - address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
upstreams:
  app:
    targets: [%s]
routes:
  - name: work
    path: /work/
    upstream: app
    async:
      mode: always
      backoff: 50ms
      max_backoff: 200ms
%s
jobs:
  data_dir: %s
%s`, origin, extra, dataDir, jobsExtra)
}

type asyncGateway struct {
	c       *child
	gw, adm string
}

func startAsync(t *testing.T, cfgText string) *asyncGateway {
	t.Helper()
	c := startChild(t, "run", writeConfig(t, cfgText))
	gw, adm := c.waitAddrs(t, true)
	return &asyncGateway{c: c, gw: gw, adm: adm}
}

// submit POSTs body to path and returns the job's Location.
func (g *asyncGateway) submit(t *testing.T, path, body string, hdr ...string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.gw+path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") == "" {
		t.Fatalf("submit %s: %d %s %q; want 202 with a Location", path, resp.StatusCode, resp.Header, b)
	}
	return resp.Header.Get("Location")
}

type jobStatus struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
}

// status reads the job at loc on g, not following the 303.
func (g *asyncGateway) status(t *testing.T, loc string, hdr ...string) (int, jobStatus, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+g.gw+loc, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st jobStatus
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &st)
	return resp.StatusCode, st, resp.Header
}

// waitDone polls the job until it answers 303 (done with a result).
func (g *asyncGateway) waitDone(t *testing.T, loc string) http.Header {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, st, h := g.status(t, loc)
		if code == http.StatusSeeOther {
			return h
		}
		if code != http.StatusOK || (st.Status != "queued" && st.Status != "running") {
			t.Fatalf("job %s: %d %+v", loc, code, st)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", loc, st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// result follows a done job to its result and returns status and body.
func (g *asyncGateway) result(t *testing.T, loc string) (int, string, http.Header) {
	t.Helper()
	h := g.waitDone(t, loc)
	res := h.Get("Location")
	if !strings.HasSuffix(res, "/result") {
		t.Fatalf("303 to %q; want .../result", res)
	}
	if !strings.HasPrefix(res, "/") {
		res = loc + "/result"
	}
	resp, err := http.Get("http://" + g.gw + res)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestAsyncSurvivesKill9(t *testing.T) {
	o := newJobsOrigin(t)
	dir := t.TempDir()
	cfgText := asyncConfig(o.URL, dir, "", "")
	release := o.holdAll()
	defer release()
	g := startAsync(t, cfgText)
	loc := g.submit(t, "/work/report", "q=1")
	// The job reached the origin (mid-attempt); the gateway dies hard.
	select {
	case <-o.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("the job never reached the origin")
	}
	_ = g.c.cmd.Process.Signal(syscall.SIGKILL)
	g.c.wait(t)
	release()
	// Restarted on the same data directory, the gateway runs it again.
	g2 := startAsync(t, cfgText)
	code, body, h := g2.result(t, loc)
	if code != http.StatusCreated || !strings.HasPrefix(body, "POST /work/report #") || !strings.HasSuffix(body, "body=q=1") || h.Get("X-Report") != "yes" {
		t.Errorf("result after kill -9: %d %q %v", code, body, h)
	}
	if n := o.count("/work/report"); n < 1 || n > 2 {
		t.Errorf("the origin saw the job %d times; want once or twice (the crash was mid-attempt)", n)
	}

	// Killed right after the 202, before any attempt started: the job
	// runs once after the restart.
	release2 := o.holdAll()
	g3 := g2
	loc2 := g3.submit(t, "/work/second", "q=2")
	_ = g3.c.cmd.Process.Signal(syscall.SIGKILL)
	g3.c.wait(t)
	release2()
	g4 := startAsync(t, cfgText)
	if code, body, _ := g4.result(t, loc2); code != http.StatusCreated || !strings.HasSuffix(body, "body=q=2") {
		t.Errorf("second job: %d %q", code, body)
	}
	if n := o.count("/work/second"); n < 1 || n > 2 {
		t.Errorf("the origin saw the second job %d times", n)
	}
}

func TestAsyncAcrossReplicas(t *testing.T) {
	redis := redistest.Start(t)
	o := newJobsOrigin(t)
	extra := fmt.Sprintf(`cache:
  max_size: 16MiB
  shared:
    addresses: ["redis://%s"]
    timeout: 500ms
`, redis.Addr)
	// A job whose replica died is taken by another after the visibility
	// timeout: short here, so that the test need not wait minutes.

	var gs []*asyncGateway
	for range 3 {
		gs = append(gs, startAsync(t, asyncConfig(o.URL, t.TempDir(), extra, "  visibility: 2s\n")))
	}
	// Accepted on replica 1 while the origin holds its answers, replica 1
	// killed, run by replica 2, result read on replica 3.
	release := o.holdAll()
	defer release()
	loc := gs[0].submit(t, "/work/handoff", "q=3")
	_ = gs[0].c.cmd.Process.Signal(syscall.SIGKILL)
	gs[0].c.wait(t)
	release()
	code, body, _ := gs[2].result(t, loc)
	if code != http.StatusCreated || !strings.HasSuffix(body, "body=q=3") {
		t.Errorf("result on replica 3: %d %q", code, body)
	}

	// A job running on one replica, cancelled through another: its
	// upstream request is cancelled, and the job says so everywhere.
	release2 := o.holdAll()
	defer release2()
	loc2 := gs[1].submit(t, "/work/cancel", "q=4")
	for p := ""; p != "/work/cancel"; {
		select {
		case p = <-o.seen:
		case <-time.After(30 * time.Second):
			t.Fatal("the job never reached the origin")
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, "http://"+gs[2].gw+loc2, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE on replica 3: %d", resp.StatusCode)
	}
	// (The handoff above may have left its own entry: the killed
	// replica's request to the origin ended with its connection.)
	for p := ""; p != "/work/cancel"; {
		select {
		case p = <-o.gone:
		case <-time.After(30 * time.Second):
			t.Fatal("the running attempt's upstream request was never cancelled")
		}
	}
	for _, g := range gs[1:] {
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, st, _ := g.status(t, loc2)
			if st.Status == "cancelled" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job on %s: %s; want cancelled", g.gw, st.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestProxyAsyncFlag: the quick proxy with --async prefer queues what
// asks for it (Prefer: respond-async) into --data-dir, and proxies the
// rest as usual.
func TestProxyAsyncFlag(t *testing.T) {
	o := newJobsOrigin(t)
	dir := t.TempDir()
	c := startChild(t, "proxy", "--listen", "127.0.0.1:0", "--to", o.URL, "--admin", "off", "--async", "prefer", "--data-dir", dir)
	gw, _ := c.waitAddrs(t, false)
	g := &asyncGateway{c: c, gw: gw}
	resp, err := http.Post("http://"+gw+"/work/sync", "text/plain", strings.NewReader("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.HasSuffix(string(b), "body=a") {
		t.Errorf("without Prefer: %d %q; want the origin's answer", resp.StatusCode, b)
	}
	loc := g.submit(t, "/work/async", "b", "Prefer", "respond-async")
	if code, body, _ := g.result(t, loc); code != http.StatusCreated || !strings.HasSuffix(body, "body=b") {
		t.Errorf("with Prefer: result %d %q", code, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "jobs.db")); err != nil {
		t.Errorf("no job store in --data-dir: %v", err)
	}
}
