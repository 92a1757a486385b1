package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
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
		line := " GET " // the text line, --log-format's default
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
		if tc.where == "file" && !strings.Contains(string(fileLog), " /logged/path ") {
			t.Errorf("file: %q; want the request's path", fileLog)
		}
	}
}

// accessTextLine is a text access log line: time of day, status,
// method, host, path, duration, cache outcome, bytes, upstream.
var accessTextLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} \d{3} [A-Z]+ \S+ \S+ \d+(\.\d+)?(µs|ms|s)( cache=[a-z]+)? \d+(\.\d)?(B|KiB|MiB|GiB)( upstream=\S+)?( aborted)?$`)

// TestLogFormatFlag: proxy and demo write the access log as text by
// default and as JSON with --log-format json, to stdout and nothing else
// there (the demo's banner is on stderr); JSON lines have no empty
// member; another value is a usage error.
func TestLogFormatFlag(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer up.Close()
	for _, tc := range []struct {
		args   []string
		path   string
		format string
	}{
		{[]string{"proxy", "--to", up.URL}, "/p/1", "text"},
		{[]string{"proxy", "--to", up.URL, "--log-format", "text"}, "/p/2", "text"},
		{[]string{"proxy", "--to", up.URL, "--log-format", "json"}, "/p/3", "json"},
		{[]string{"demo"}, "/api/hello", "text"},
		{[]string{"demo", "--log-format", "json"}, "/api/hello", "json"},
	} {
		name := strings.Join(tc.args, " ")
		c := startChild(t, append(tc.args, "--listen", "127.0.0.1:0", "--admin", "off")...)
		gw, _ := c.waitAddrs(t, false)
		get(t, "http://"+gw+tc.path, http.StatusOK)
		get(t, "http://"+gw+tc.path, http.StatusOK)
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		if code := c.wait(t); code != 0 {
			t.Fatalf("%s: exit code %d; log:\n%s", name, code, c.logs())
		}
		c.mu.Lock()
		stdout, stderr := c.stdout.String(), c.stderr.String()
		c.mu.Unlock()
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != 2 {
			t.Errorf("%s: stdout %q; want the two requests' lines alone", name, stdout)
			continue
		}
		for _, l := range lines {
			switch tc.format {
			case "text":
				if !accessTextLine.MatchString(l) || !strings.Contains(l, " 200 GET "+gw+" "+tc.path+" ") || !strings.Contains(l, " upstream=") {
					t.Errorf("%s: line %q; want a text line for 200 GET %s%s with its upstream", name, l, gw, tc.path)
				}
			case "json":
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] != "request" || m["path"] != tc.path || m["status"] != 200.0 {
					t.Errorf("%s: line %q (%v); want a JSON request line for %s", name, l, err, tc.path)
				}
				for k, v := range m {
					if v == "" {
						t.Errorf("%s: %s empty in %q", name, k, l)
					}
				}
			}
		}
		if tc.args[0] == "demo" && !strings.Contains(stderr, "curl -s http://"+gw+"/api/hello") {
			t.Errorf("%s: stderr %q; want the banner", name, stderr)
		}
	}
	for _, args := range [][]string{{"proxy", "--to", up.URL}, {"demo"}} {
		c := startChild(t, append(args, "--log-format", "yaml")...)
		if code := c.wait(t); code != 2 || !strings.Contains(c.logs(), "log-format") {
			t.Errorf("%s --log-format yaml: exit %d, stderr %q; want 2 and the flag named", args[0], code, c.logs())
		}
	}
}
