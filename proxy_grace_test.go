package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

// TestProxyGraceByDefault: `gateway proxy` answers with a stale response
// when its origin goes down, though the response named no stale-if-error.
func TestProxyGraceByDefault(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Stored, and stale at once: the next request goes forward.
		w.Header().Set("Cache-Control", "max-age=0")
		io.WriteString(w, "from the origin")
	}))
	c := startChild(t, "proxy", "--to", up.URL, "--listen", "127.0.0.1:0", "--admin", "off", "--access-log", "off")
	gw, _ := c.waitAddrs(t, false)
	if body := get(t, "http://"+gw+"/p", http.StatusOK); body != "from the origin" {
		t.Fatalf("first: %q", body)
	}
	up.Close()
	resp, err := http.Get("http://" + gw + "/p")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cs := resp.Header.Get("Cache-Status")
	if resp.StatusCode != http.StatusOK || string(b) != "from the origin" || !strings.Contains(cs, "fwd=stale; fwd-status=502") || !strings.Contains(cs, `detail="grace"`) {
		t.Errorf("origin down: %d %q, Cache-Status %q; want the stale 200 with fwd-status=502 and detail \"grace\"", resp.StatusCode, b, cs)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, c.logs())
	}
}
