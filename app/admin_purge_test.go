package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAdminPurgeByPath: on the app's real listeners, a purge by path
// finds what clients stored under 127.0.0.1, narrowed or not by a
// route's hosts, and a purge that matches nothing says why: the URL an
// operator wrote with localhost missed the entries stored under
// 127.0.0.1.
func TestAdminPurgeByPath(t *testing.T) {
	var n atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "v%d", n.Add(1))
	}))
	defer origin.Close()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := fmt.Sprintf(`
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
routes:
  - name: ip
    hosts: ["127.0.0.1"]
    path: /
    upstream: app
    cache: {enabled: true}
  - name: named
    hosts: ["localhost", "*.localhost"]
    path: /
    upstream: app
    cache: {enabled: true}
`, origin.URL)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAppFile(t, path)
	hostPort := a.server.Addrs()[0].String() // 127.0.0.1:PORT
	_, port, _ := strings.Cut(hostPort, ":")
	adm := "http://" + a.adminLn.Addr().String()

	fetch := func(p string) string {
		t.Helper()
		resp, err := http.Get("http://" + hostPort + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	purge := func(prefix string, q url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(adm+prefix+"/cache/purge?"+q.Encode(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("purge %v: %v", q, err)
		}
		return resp.StatusCode, v
	}

	for _, p := range []string{"/x", "/x?a=1", "/css/a.css", "/css/b.css"} {
		fetch(p)
		if b := fetch(p); !strings.HasPrefix(b, "v") {
			t.Fatalf("GET %s: %q", p, b)
		}
	}
	stored := fetch("/x")

	localURL := "http://localhost:" + port + "/x"
	for _, prefix := range []string{"/api/v1", ""} {
		st, v := purge(prefix, url.Values{"url": {localURL}})
		want := "no entry for " + localURL + "; entries exist under host " + hostPort
		if st != http.StatusOK || v["purged"] != 0.0 || v["soft"] != false || v["reason"] != want {
			t.Errorf("%s/cache/purge?url=%s: %d %v; want 200, purged 0, reason %q", prefix, localURL, st, v, want)
		}
		st, v = purge(prefix, url.Values{"path": {"/x"}, "route": {"named"}})
		want = "nothing stored under that path for the hosts of route named; entries exist under host " + hostPort
		if st != http.StatusOK || v["purged"] != 0.0 || v["reason"] != want {
			t.Errorf("%s/cache/purge?path=/x&route=named: %d %v; want 200, purged 0, reason %q", prefix, st, v, want)
		}
	}
	if b := fetch("/x"); b != stored {
		t.Errorf("after purges that matched nothing: %q; want the stored %q", b, stored)
	}

	st, v := purge("/api/v1", url.Values{"path": {"/x"}, "route": {"ip"}})
	if _, has := v["reason"]; st != http.StatusOK || v["purged"] != 1.0 || has {
		t.Errorf("path=/x&route=ip: %d %v; want 200, 1 purged, no reason", st, v)
	}
	if b := fetch("/x"); b == stored {
		t.Errorf("after the purge by path: still %q", b)
	}
	if b := fetch("/x?a=1"); b == "" {
		t.Error("GET /x?a=1: empty")
	}
	st, v = purge("", url.Values{"path": {"/x"}})
	if st != http.StatusOK || v["purged"] != 1.0 {
		t.Errorf("/cache/purge?path=/x: %d %v; want 200, 1 purged (not /x?a=1)", st, v)
	}
	st, v = purge("/api/v1", url.Values{"prefix": {"/css/"}, "soft": {"true"}})
	if st != http.StatusOK || v["purged"] != 2.0 || v["soft"] != true {
		t.Errorf("prefix=/css/&soft=true: %d %v; want 200, 2 purged, soft", st, v)
	}
	st, v = purge("/api/v1", url.Values{"path": {"/x"}, "route": {"nope"}})
	if st != http.StatusBadRequest || v["error"] != "no cached route named nope" {
		t.Errorf("route=nope: %d %v; want 400 naming the route", st, v)
	}
}
