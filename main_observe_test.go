package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestProxyAccessLogFlag: `gateway proxy` logs requests to stdout by
// default, and --access-log sends them to stderr, a file, or nowhere;
// its admin listener serves /metrics.
func TestProxyAccessLogFlag(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer up.Close()
	file := filepath.Join(t.TempDir(), "access.log")
	for _, tc := range []struct {
		flag  string // "" is the default
		where string
	}{
		{"", "stdout"},
		{"stderr", "stderr"},
		{file, "file"},
		{"off", ""},
	} {
		args := []string{"proxy", "--listen", "127.0.0.1:0", "--to", up.URL, "--admin", "127.0.0.1:0"}
		if tc.flag != "" {
			args = append(args, "--access-log", tc.flag)
		}
		before, _ := os.ReadFile(file)
		c := startChild(t, args...)
		gw, adm := c.waitAddrs(t, true)
		get(t, "http://"+gw+"/logged/path", http.StatusOK)
		if m := get(t, "http://"+adm+"/metrics", http.StatusOK); !strings.Contains(m, `gateway_requests_total{cache="miss",method="GET",route="proxy",status="2xx"} 1`) {
			t.Errorf("%s: /metrics lacks the request:\n%s", tc.where, m)
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		if code := c.wait(t); code != 0 {
			t.Fatalf("%s: exit code %d; log:\n%s", tc.where, code, c.logs())
		}
		c.mu.Lock()
		stdout, stderr := c.stdout.String(), c.stderr.String()
		c.mu.Unlock()
		fileLog, _ := os.ReadFile(file)
		fileLog = fileLog[len(before):]
		line := `"msg":"request",`
		got := map[string]bool{
			"stdout": strings.Contains(stdout, line),
			"stderr": strings.Contains(stderr, line),
			"file":   strings.Contains(string(fileLog), line),
		}
		for where, ok := range got {
			if ok != (where == tc.where) {
				t.Errorf("--access-log %q: line in %s: %v; want it only in %q", tc.flag, where, ok, tc.where)
			}
		}
		if tc.where == "file" && !strings.Contains(string(fileLog), `"path":"/logged/path"`) {
			t.Errorf("file: %q; want the request's path", fileLog)
		}
	}
}
