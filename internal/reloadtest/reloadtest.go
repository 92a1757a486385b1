// Package reloadtest is the fixture of the gateway's reload tests, which
// both the app package (in-process) and the command line (a real process
// and SIGHUP) run: two origins that answer with their names and a config
// file routing to the first.
package reloadtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// YAML is the config, with the upstream's target as its one %q.
const YAML = `
access_log: {enabled: false}
listeners:
  - address: "127.0.0.1:0"
admin:
  address: "127.0.0.1:0"
upstreams:
  app:
    targets: [%q]
routes:
  - name: api
    path: /api
    upstream: app
  - name: cached
    path: /c
    upstream: app
    cache: {enabled: true}
`

// Config is YAML routing to target.
func Config(target string) []byte { return []byte(fmt.Sprintf(YAML, target)) }

// Fixture starts two origins that answer with their names, "one" and
// "two", writes a config file routing to one, and returns two's URL and
// the file's path.
func Fixture(t testing.TB) (two, path string) {
	t.Helper()
	origin := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		t.Cleanup(s.Close)
		return s.URL
	}
	one := origin("one")
	two = origin("two")
	path = filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, Config(one), 0o600); err != nil {
		t.Fatal(err)
	}
	return two, path
}
