package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"gateway/config"
	"gateway/redistier"
)

// withShared is minimal with a cache.shared section: "cache:" at line 8,
// "shared:" at 9, its addresses at 10 and body from line 11 on.
func withShared(body string) string {
	return minimal + "cache:\n  shared:\n    addresses: [\"redis://127.0.0.1:6379\"]\n" + body
}

// TestSharedConfigErrors: cache.shared's problems name the file, the
// line and the field, whether the file's checks find them or package
// redistier's.
func TestSharedConfigErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GATEWAY_TEST_EMPTY_PASSWORD", "")
	cases := []struct{ name, in, want string }{
		{"bad mode", withShared("    mode: bogus\n"),
			`t.yaml:11: cache.shared.mode: "bogus" must be auto, standalone, sentinel or cluster`},
		{"sentinel without master_name", withShared("    mode: sentinel\n"),
			`t.yaml:9: cache.shared.master_name: is required in mode sentinel`},
		{"master_name without sentinel", withShared("    master_name: m\n"),
			`t.yaml:11: cache.shared.master_name: is for mode sentinel only`},
		{"both password sources", withShared("    password_file: /x\n    password_env: X\n"),
			`t.yaml:12: cache.shared.password_env: give password_file or password_env, not both (password_file at line 11)`},
		{"missing env var", withShared("    password_env: GATEWAY_TEST_UNSET_PASSWORD\n"),
			`t.yaml:11: cache.shared.password_env: environment variable GATEWAY_TEST_UNSET_PASSWORD is not set`},
		{"empty env var", withShared("    password_env: GATEWAY_TEST_EMPTY_PASSWORD\n"),
			`t.yaml:11: cache.shared.password_env: environment variable GATEWAY_TEST_EMPTY_PASSWORD is empty`},
		{"unreadable password file", withShared("    password_file: " + filepath.Join(dir, "missing") + "\n"),
			`t.yaml:11: cache.shared.password_file: stat ` + filepath.Join(dir, "missing") + `: no such file or directory`},
		{"password file is a directory", withShared("    password_file: " + dir + "\n"),
			`t.yaml:11: cache.shared.password_file: "` + dir + `" is not a regular file`},
		{"negative timeout", withShared("    timeout: -5ms\n"),
			`t.yaml:11: cache.shared.timeout: invalid duration "-5ms": must not be negative`},
		{"zero timeout", withShared("    timeout: 0s\n"),
			`t.yaml:11: cache.shared.timeout: must be positive`},
		{"negative write_concurrency", withShared("    write_concurrency: -1\n"),
			`t.yaml:11: cache.shared.write_concurrency: must not be negative`},
		{"negative breaker failures", withShared("    breaker: {failures: -2}\n"),
			`t.yaml:11: cache.shared.breaker.failures: must not be negative`},
		{"unknown field", withShared("    passwd: x\n"),
			`t.yaml:11: cache.shared.passwd: unknown field`},
		{"bad address", minimal + "cache:\n  shared:\n    addresses: [\"http://r:1\"]\n",
			`t.yaml:10: cache.shared.addresses[0]: "http://r:1": scheme must be redis or rediss`},
		{"no address", minimal + "cache:\n  shared:\n    mode: auto\n",
			`t.yaml:9: cache.shared.addresses: at least one address is required`},
		{"key prefix with braces", withShared("    key_prefix: \"{gw}\"\n"),
			`t.yaml:11: cache.shared.key_prefix: must not contain { or }`},
		{"client cert without key", withShared("    tls: {enabled: true, cert_file: " + filepath.Join(dir, "c.pem") + "}\n"),
			`t.yaml:11: cache.shared.tls.key_file: missing; a client certificate needs both cert_file and key_file`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got\n%v\nwant it to contain\n%s", err, tc.want)
			}
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %T; want config.Errors", err)
			}
		})
	}
}

// TestSharedDefaults: a cache.shared section that gives only addresses
// shows package redistier's defaults in the effective config, and maps
// to what redistier would make of it; without the section there is no
// shared tier.
func TestSharedDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(withShared("")))
	if err != nil {
		t.Fatal(err)
	}
	want := redistier.Config{Addrs: []string{"redis://127.0.0.1:6379"}}.WithDefaults()
	if got := sharedOptions(c.Cache.Shared); !reflect.DeepEqual(got, want) {
		t.Errorf("defaults map to\n%+v\nwant redistier's\n%+v", got, want)
	}
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"mode":"auto"`, `"key_prefix":"gw:"`, `"timeout":"10ms"`, `"write_timeout":"250ms"`,
		`"dial_timeout":"1s"`, `"max_object_size":"1MiB"`, `"write_concurrency":4`, `"write_queue":1024`,
		`"purge_bound":"1s"`, `"lease_ttl":"2s"`, `"breaker":{"failures":5,"cool_down":"1s"}`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("effective config lacks %s:\n%s", w, b)
		}
	}
	c, err = Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cache.Shared != nil {
		t.Errorf("no cache.shared: got %+v; want nil", c.Cache.Shared)
	}
	if b, _ := json.Marshal(c.Redacted()); strings.Contains(string(b), `"shared"`) {
		t.Errorf("no cache.shared: the effective config shows one: %s", b)
	}
}

// TestSharedPassword: the password is read from its file (without the
// trailing newline) or variable, and shown nowhere: neither in the
// effective config's JSON nor its YAML, nor when the config is printed.
func TestSharedPassword(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEWAY_TEST_PASSWORD", secret)
	for _, src := range []string{"password_file: " + file, "password_env: GATEWAY_TEST_PASSWORD"} {
		c, err := Parse("t.yaml", []byte(withShared("    "+src+"\n")))
		if err != nil {
			t.Fatal(err)
		}
		if got := sharedOptions(c.Cache.Shared).Password; got != secret {
			t.Errorf("%s: the tier gets password %q; want %q", src, got, secret)
		}
		b, _ := json.Marshal(c.Redacted())
		y, _ := yaml.Marshal(c.Redacted())
		for what, s := range map[string]string{
			"JSON": string(b), "YAML": string(y), "%+v": fmt.Sprintf("%+v", *c.Cache.Shared), "%#v": fmt.Sprintf("%#v", *c.Cache.Shared),
		} {
			if strings.Contains(s, secret) {
				t.Errorf("%s: the password shows in the config's %s: %s", src, what, s)
			}
		}
		if !strings.Contains(string(b), strings.SplitN(src, ": ", 2)[1]) {
			t.Errorf("%s: the effective config does not show the source: %s", src, b)
		}
	}
}

// TestSharedReloadRules: what a reload may change of cache.shared.
func TestSharedReloadRules(t *testing.T) {
	parse := func(body string) *config.CacheShared {
		t.Helper()
		c, err := Parse("t.yaml", []byte(withShared(body)))
		if err != nil {
			t.Fatal(err)
		}
		return c.Cache.Shared
	}
	base := parse("")
	if got := sharedChange(base, parse("    timeout: 50ms\n    write_queue: 10\n    breaker: {failures: 2}\n")); got != "" {
		t.Errorf("timeouts and limits changed: got %q; want a reload to apply them", got)
	}
	for _, body := range []string{"    mode: standalone\n", "    db: 2\n", "    key_prefix: \"x:\"\n", "    username: u\n", "    tls: {enabled: true}\n"} {
		if got := sharedChange(base, parse(body)); got == "" {
			t.Errorf("%q: got no change; want a restart", body)
		}
	}
	if sharedChange(nil, base) == "" || sharedChange(base, nil) == "" {
		t.Error("adding or removing cache.shared: got no change; want a restart")
	}
}

// TestQuantile: the latency quantiles of /cache/stats, estimated from
// cumulative buckets as histogram_quantile does.
func TestQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.01, 0.1}
	counts := []uint64{50, 90, 100}
	for _, tc := range []struct {
		q     float64
		total uint64
		want  float64
	}{
		{0.5, 100, 0.001},  // the 50th falls at the first bound
		{0.7, 100, 0.0055}, // halfway into the second bucket
		{0.99, 100, 0.091}, // 9 of the third bucket's 10
		{0.99, 200, 0.1},   // past every bound: the largest
		{0.5, 0, 0},        // no operation yet
	} {
		if got := quantile(tc.q, bounds, counts, tc.total); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("q %v of %d: got %v; want %v", tc.q, tc.total, got, tc.want)
		}
	}
}
