package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

// TestProxyCommandBatch: gateway proxy --batch serves the endpoint for
// its one route.
func TestProxyCommandBatch(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path": %q}`, r.URL.Path)
	}))
	defer up.Close()
	c := startChild(t, "proxy", "--listen", "127.0.0.1:0", "--to", up.URL, "--admin", "off", "--batch")
	gw, _ := c.waitAddrs(t, false)
	resp, err := http.Post("http://"+gw+"/_batch", "application/json", strings.NewReader(`{"requests": [{"id": "a", "path": "/x"}, {"id": "b", "path": "/y"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `{"id":"a","status":200`) || !strings.Contains(string(b), `"body":{"path":"/y"}`) {
		t.Errorf("got %d %s", resp.StatusCode, b)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit code: got %d; want 0", code)
	}
}
