package jobs

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The crash helper: the test binary, run again with JOBS_CRASH_DB set,
// is a gateway with one async route that serves until it is killed.
func TestMain(m *testing.M) {
	if db := os.Getenv("JOBS_CRASH_DB"); db != "" {
		crashHelper(db, os.Getenv("JOBS_CRASH_UPSTREAM"))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func crashHelper(db, upstream string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash helper:", err)
		os.Exit(2)
	}
	s, err := OpenBolt(db)
	if err != nil {
		fail(err)
	}
	q, err := New(Options{Store: s})
	if err != nil {
		fail(err)
	}
	mw, err := q.Route(RouteOptions{Name: "r", Mode: ModeAlways, Backoff: 10 * time.Millisecond})
	if err != nil {
		fail(err)
	}
	u, err := url.Parse(upstream)
	if err != nil {
		fail(err)
	}
	routed := mw(httputil.NewSingleHostReverseProxy(u))
	q.SetRunner(routed)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	fmt.Println("ADDR", ln.Addr())
	fail(http.Serve(ln, q.Wrap(routed)))
}

// startHelper starts the crash helper on db and returns it and its
// address.
func startHelper(t *testing.T, db, upstream string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "JOBS_CRASH_DB="+db, "JOBS_CRASH_UPSTREAM="+upstream)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by its PID; a no-op once it is gone
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("crash helper: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if !ok {
		t.Fatalf("crash helper said %q", line)
	}
	return cmd, "http://" + addr
}

// TestKill9AfterAccepted kills the gateway process (SIGKILL) right after
// its 202, while the job's attempt is at the upstream; a new process on
// the same file runs the job again to success.
func TestKill9AfterAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	leaks(t)
	var answer atomic.Bool
	seen := make(chan struct{}, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // a read body lets the server notice the peer's death
		seen <- struct{}{}
		if !answer.Load() {
			<-r.Context().Done() // the first process dies with the request open
			return
		}
		io.WriteString(w, "survived")
	}))
	t.Cleanup(func() {
		up.CloseClientConnections()
		up.Close()
	})
	db := filepath.Join(t.TempDir(), "jobs.db")
	client := &http.Client{Transport: &http.Transport{}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(client.CloseIdleConnections)

	first, addr := startHelper(t, db, up.URL)
	res, err := client.Post(addr+"/work", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", res.StatusCode)
	}
	loc := res.Header.Get("Location")
	waitFor(t, seen, "the first process's attempt")
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()

	answer.Store(true)
	_, addr = startHelper(t, db, up.URL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := client.Get(addr + loc)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusSeeOther {
			if !strings.Contains(string(body), `"attempts":2`) {
				t.Fatalf("finished: %s, want 2 attempts (the killed one counted)", body)
			}
			break
		}
		if res.StatusCode != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("status %d %s", res.StatusCode, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err = client.Get(addr + loc + "/result")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "survived" {
		t.Fatalf("result %d %q", res.StatusCode, body)
	}
}
