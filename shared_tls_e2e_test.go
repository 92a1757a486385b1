package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gateway/internal/redistest"
)

// TestReplicasTLSACL: two gateway processes share a tier on a Redis that
// speaks TLS only (its certificate signed by a test CA the config names)
// and lets in only the ACL user gw, whose password one replica reads
// from a file and the other from the environment.
func TestReplicasTLSACL(t *testing.T) {
	const password = "secret"
	redis := redistest.StartTLS(t)
	redis.Do(t, "ACL", "SETUSER", "gw", "on", ">"+password, "~gw:*", "&gw:*", "+@all")
	redis.Do(t, "ACL", "SETUSER", "default", "off")
	redis.Auth("gw", password)

	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REDIS_PW", password) // inherited by the gateway processes
	section := func(source string) string {
		return sharedSection("standalone", []string{"rediss://" + redis.Addr}, `    username: gw
    `+source+`
    tls:
      ca_file: `+redis.CAFile+`
`)
	}
	o := newSharedOrigin(t)
	rs := []*replica{
		startReplica(t, o.URL, section("password_file: "+pwFile)),
		startReplica(t, o.URL, section("password_env: REDIS_PW")),
	}
	for i, r := range rs {
		eventually(t, 30*time.Second, "replica "+string(rune('1'+i))+"'s shared tier up", func() bool {
			return r.sharedState(t) == "up closed"
		})
	}
	if n := strings.Count(redis.Do(t, "CLIENT", "LIST"), " user=gw "); n < 3 {
		t.Errorf("%d connections as user gw; want the replicas' and this one", n)
	}

	// Stored by replica 1, a hit on replica 2 from the shared tier: the
	// first only-if-cached 200 there (a 504 stores nothing) comes from
	// Redis, not from replica 2's memory.
	if code, body, _ := rs[0].fetch(t, "/a/one"); code != http.StatusOK || body != "/a/one #1" {
		t.Fatalf("first request: %d %q", code, body)
	}
	var status string
	eventually(t, 10*time.Second, "replica 2 finds /a/one in the shared tier", func() bool {
		code, body, st := rs[1].fetch(t, "/a/one", "Cache-Control", "only-if-cached")
		if code == http.StatusOK && body != "/a/one #1" {
			t.Fatalf("replica 2 answered %q; want the first fill", body)
		}
		status = st
		return code == http.StatusOK
	})
	if !strings.Contains(status, `detail="shared"`) {
		t.Errorf("replica 2's hit: Cache-Status %q; want detail=\"shared\"", status)
	}
	if n := o.count("/a/one"); n != 1 {
		t.Errorf("the origin saw /a/one %d times; want 1", n)
	}

	// A purge on replica 2 reaches replica 1 through the same TLS and ACL.
	rs[1].purge(t, map[string][]string{"url": {"http://site.test/a/one"}})
	eventually(t, 10*time.Second, "replica 1 misses /a/one after the purge", func() bool { return !rs[0].cached(t, "/a/one") })

	for i, r := range rs {
		cfg := get(t, "http://"+r.adm+"/config", 200)
		if strings.Contains(cfg, password) {
			t.Errorf("GET /config of replica %d shows the password:\n%s", i+1, cfg)
		}
		if !strings.Contains(cfg, `"username": "gw"`) || !strings.Contains(cfg, redis.CAFile) {
			t.Errorf("GET /config of replica %d lacks the username or the CA file:\n%s", i+1, cfg)
		}
		if l := r.c.logs(); strings.Contains(l, password) {
			t.Errorf("replica %d logged the password:\n%s", i+1, l)
		}
	}
}
