package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"

	"gateway/internal/reloadtest"
)

// TestSIGHUPReloads: a real gateway process reloads its config file on
// SIGHUP and keeps running.
func TestSIGHUPReloads(t *testing.T) {
	two, path := reloadtest.Fixture(t)
	c := startChild(t, "run", "-config", path)
	gw, _ := c.waitAddrs(t, true)
	get := func() string {
		t.Helper()
		resp, err := http.Get("http://" + gw + "/api/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != "one" {
		t.Fatalf("before: %q", got)
	}
	if err := os.WriteFile(path, reloadtest.Config(two), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	c.waitLog(t, "config reloaded", "reload")
	if got := get(); got != "two" {
		t.Fatalf("after SIGHUP: %q", got)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-c.done; err != nil {
		t.Fatalf("exit: %v; log:\n%s", err, c.logs())
	}
}

// TestSIGHUPWithoutConfigFile: gateway proxy has no file to reload; a
// SIGHUP is logged as such and does not end the process (its default
// action), which would cut off requests in flight.
func TestSIGHUPWithoutConfigFile(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "up")
	}))
	defer origin.Close()
	c := startChild(t, "proxy", "--listen", "127.0.0.1:0", "--admin", "off", "--to", origin.URL)
	gw, _ := c.waitAddrs(t, false)
	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	c.waitLog(t, "not started from a config file", "SIGHUP refusal")
	resp, err := http.Get("http://" + gw + "/")
	if err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "up" {
		t.Errorf("after SIGHUP: %q; want \"up\"", b)
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-c.done; err != nil {
		t.Fatalf("exit: %v; log:\n%s", err, c.logs())
	}
}
