package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"gateway/internal/testcert"
)

// minimal is the smallest valid config; cases below start from it so
// their line numbers are easy to follow.
const minimal = `listeners:
  - address: 127.0.0.1:8080
upstreams:
  app:
    targets: [http://127.0.0.1:9000]
routes:
  - upstream: app
`

// afterListeners is minimal without its listeners.
var afterListeners = minimal[strings.Index(minimal, "upstreams:"):]

type badCase struct {
	name string
	in   string
	want []string // substrings of the error, each naming file:line: field
	n    int      // exact number of problems, when not 0
}

var badCases = []badCase{
	// Syntax and structure.
	{name: "syntax", in: "listeners:\n  - address: [\n", want: []string{"t.yaml:2: did not find expected node content"}},
	{name: "syntax: bad indentation", in: "listeners:\n  - address: 127.0.0.1:0\nupstreams:\n  app:\n    targets: [http://x]\n   protocol: h2\nroutes:\n  - upstream: app\n",
		want: []string{`t.yaml:6: did not find expected key in "   protocol: h2": check its indentation against the lines above (after upstreams.app.targets)`}, n: 1},
	{name: "syntax: bad indentation in a list", in: "routes:\n  - upstream: app\n    path: /\n   methods: [GET]\n",
		want: []string{`t.yaml:4: did not find expected '-' indicator in "   methods: [GET]": check its indentation against the lines above (after routes[0].path)`}, n: 1},
	{name: "syntax: tab", in: "listeners:\n  - address: 127.0.0.1:0\nupstreams:\n  app:\n\ttargets: [http://x]\nroutes:\n  - upstream: app\n",
		want: []string{`t.yaml:5: found character that cannot start any token in "\ttargets: [http://x]": YAML indents with spaces, not tabs (after upstreams.app)`}, n: 1},
	{name: "syntax: unclosed quote", in: "listeners:\n  - address: \"127.0.0.1:0\nupstreams:\n  app:\n    targets: [http://x]\n",
		want: []string{`t.yaml:2: found unexpected end of stream in "  - address: \"127.0.0.1:0": a quote opened here is not closed (after listeners)`}, n: 1},
	{name: "syntax: unclosed list", in: "upstreams:\n  app:\n    targets: [http://x\nroutes:\n  - upstream: app\n",
		want: []string{`t.yaml:3: did not find expected ',' or ']' in "    targets: [http://x": a [ opened here is not closed (after upstreams.app)`}, n: 1},
	{name: "syntax: missing colon", in: "upstreams:\n  app:\n    targets [http://x]\n    protocol: h2\n",
		want: []string{`t.yaml:3: upstreams.app: "    targets [http://x]" has no ':' after its key, so its value runs on into line 4 (mapping values are not allowed in this context)`}, n: 1},
	{name: "syntax: bad indentation in a long file", in: "routes:\n" + strings.Repeat("  - path: /p\n    upstream: app\n", 400) + "   bad: x\n",
		want: []string{`t.yaml:802: did not find expected '-' indicator in "   bad: x": check its indentation against the lines above (after routes[399].upstream)`}, n: 1},
	{name: "syntax: colon in a value", in: "upstreams:\n  app:\n    targets: [http://x]\n    protocol: h2: x\n",
		want: []string{`t.yaml:4: mapping values are not allowed in this context in "    protocol: h2: x": a value holding ": " needs quotes (after upstreams.app.targets)`}, n: 1},
	{name: "empty file", in: "", want: []string{
		"t.yaml:1: listeners: no listeners",
		"t.yaml:1: upstreams: no upstreams",
		"t.yaml:1: routes: no routes",
	}, n: 3},
	{name: "comments only", in: "# nothing\n", want: []string{"listeners: no listeners"}},
	{name: "root not a mapping", in: "- a\n- b\n", want: []string{"t.yaml:1: want a mapping, got a list"}, n: 1},
	{name: "two documents", in: minimal + "---\nlisteners: []\n", want: []string{"t.yaml:8: a second YAML document"}},
	{name: "unknown field with suggestion", in: "listeners:\n  - adress: 127.0.0.1:8080\n" + afterListeners,
		want: []string{`t.yaml:2: listeners[0].adress: unknown field (did you mean "address"?)`}, n: 1},
	{name: "unknown field", in: minimal + "frobnicate: 1\n",
		want: []string{"t.yaml:8: frobnicate: unknown field (want one of: shutdown_grace, trusted_proxies, listeners, admin, upstreams, cache, batch, routes, jobs, log, access_log, server_timing, memory_profile, gc_heap_floor)"}},
	{name: "unknown field in map value", in: strings.Replace(minimal, "    targets:", "    target: x\n    targets:", 1),
		want: []string{`t.yaml:5: upstreams.app.target: unknown field (did you mean "targets"?)`}},
	{name: "odd key quoted in path", in: minimal + "\"a\\nb\": 1\n", want: []string{`t.yaml:8: ["a\nb"]: unknown field`}},
	{name: "duplicate key", in: minimal + "log:\n  level: info\n  level: debug\n",
		want: []string{"t.yaml:10: log.level: duplicate key (first at line 9)"}},
	{name: "duplicate upstream", in: minimal + "upstreams:\n  b:\n    targets: [http://a]\n",
		want: []string{"t.yaml:8: upstreams: duplicate key (first at line 3)"}},
	{name: "mapping for string", in: strings.Replace(minimal, "address: 127.0.0.1:8080", "address: {host: x}", 1),
		want: []string{"t.yaml:2: listeners[0].address: want a string, got a mapping"}, n: 1},
	{name: "list for string", in: minimal + "log:\n  level: [a]\n", want: []string{"t.yaml:9: log.level: want a string, got a list"}},
	{name: "scalar for list", in: minimal + "trusted_proxies: 10.0.0.0/8\n",
		want: []string{`t.yaml:8: trusted_proxies: want a list, got "10.0.0.0/8"`}},
	{name: "scalar for struct", in: minimal + "admin: on\n", want: []string{`t.yaml:8: admin: want a mapping, got "on"`}},
	{name: "list key", in: minimal + "log:\n  [a]: b\n", want: []string{"t.yaml:9: log: want a plain name as key, got a list"}},
	{name: "yes for int", in: strings.Replace(minimal, "    targets:", "    max_idle_per_target: yes\n    targets:", 1),
		want: []string{`t.yaml:5: upstreams.app.max_idle_per_target: invalid integer "yes"`}},
	{name: "int out of range", in: strings.Replace(minimal, "    targets:", "    max_idle_per_target: 99999999999999999999\n    targets:", 1),
		want: []string{`t.yaml:5: upstreams.app.max_idle_per_target: integer "99999999999999999999" out of range`}},
	{name: "float for int", in: strings.Replace(minimal, "    targets:", "    max_conns_per_target: 1.5\n    targets:", 1),
		want: []string{`t.yaml:5: upstreams.app.max_conns_per_target: invalid integer "1.5"`}},
	{name: "yes for bool", in: strings.Replace(minimal, "  - address: 127.0.0.1:8080", "  - address: 127.0.0.1:8080\n    h2c: yes", 1),
		want: []string{`t.yaml:3: listeners[0].h2c: invalid boolean "yes" (want true or false)`}},
	{name: "yes for *bool", in: strings.Replace(minimal, "    targets:", "    retry: no\n    targets:", 1),
		want: []string{`t.yaml:5: upstreams.app.retry: invalid boolean "no" (want true or false)`}},
	{name: "bad duration", in: minimal + "  - upstream: app\n    path: /x\n    timeout: 5x\n",
		want: []string{`t.yaml:10: routes[1].timeout: invalid duration "5x" (want e.g. 250ms, 30s, 2m)`}, n: 1},
	{name: "duration without unit", in: minimal + "shutdown_grace: 30\n",
		want: []string{`t.yaml:8: shutdown_grace: invalid duration "30" (want e.g. 250ms, 30s, 2m)`}},
	{name: "negative duration", in: minimal + "shutdown_grace: -1s\n",
		want: []string{`t.yaml:8: shutdown_grace: invalid duration "-1s": must not be negative`}},
	{name: "bad size", in: minimal + "    max_body_size: 10XB\n",
		want: []string{`t.yaml:8: routes[0].max_body_size: invalid size "10XB": unknown unit "XB"`}},
	{name: "negative size", in: strings.Replace(minimal, "8080\n", "8080\n    max_header_bytes: -1\n", 1),
		want: []string{`t.yaml:3: listeners[0].max_header_bytes: invalid size "-1": must not be negative`}},
	{name: "gc_heap_floor not a size", in: minimal + "gc_heap_floor: lots\n",
		want: []string{`t.yaml:8: gc_heap_floor: invalid size "lots"`}},
	{name: "memory_profile unknown", in: minimal + "memory_profile: tiny\n",
		want: []string{`t.yaml:8: memory_profile: invalid value "tiny" (want sidecar or edge)`}, n: 1},
	{name: "memory_profile not a string", in: minimal + "memory_profile: [edge]\n",
		want: []string{`t.yaml:8: memory_profile: want a string, got a list`}, n: 1},
	{name: "merge of a non-mapping", in: minimal + "log:\n  <<: 5\n", want: []string{`t.yaml:9: log: merge (<<) wants a mapping or a list of mappings, got "5"`}},
	{name: "merged fields are checked", in: minimal + "log:\n  <<: {levle: x}\n", want: []string{`t.yaml:9: log.levle: unknown field (did you mean "level"?)`}},
	{name: "merge cycle", in: minimal + "log: &l\n  <<: *l\n", want: []string{"t.yaml:8: log: merge (<<) includes the mapping it is in"}},
	{name: "alias bomb", in: aliasBomb(), want: []string{"t.yaml:2: listeners[0]: more than 262144 values once aliases are expanded"}},
	{name: "too many problems", in: minimal + "trusted_proxies: [" + strings.Repeat("x, ", 150) + "x]\n",
		want: []string{"t.yaml: too many problems; only the first 100 are shown"}, n: 101},

	// Environment.
	{name: "unterminated ${", in: strings.Replace(minimal, "[http://127.0.0.1:9000]", "[\"http://${HOST:9000\"]", 1),
		want: []string{`t.yaml:5: upstreams.app.targets[0]: unterminated "${" (write "$$" for a literal "$")`}},
	{name: "unset variable", in: minimal + "admin:\n  token: ${GATEWAY_TEST_SURELY_UNSET}\n",
		want: []string{"t.yaml:9: admin.token: environment variable GATEWAY_TEST_SURELY_UNSET is not set (write ${GATEWAY_TEST_SURELY_UNSET:-} to allow empty)"}},
	{name: "bad variable name", in: minimal + "admin:\n  token: ${1X}\n",
		want: []string{`t.yaml:9: admin.token: invalid variable reference "${1X}"`}},

	// Top level.
	{name: "bad trusted proxy", in: minimal + "trusted_proxies: [10.0.0.0/8, 10.0.0.0/33, '::1', nonsense]\n",
		want: []string{
			`t.yaml:8: trusted_proxies[1]: invalid "10.0.0.0/33" (want a CIDR such as 10.0.0.0/8 or an IP address)`,
			`t.yaml:8: trusted_proxies[3]: invalid "nonsense"`,
		}, n: 2},
	{name: "log enums", in: minimal + "log:\n  level: verbose\n  format: xml\n",
		want: []string{
			`t.yaml:9: log.level: invalid value "verbose" (want debug, info, warn or error)`,
			`t.yaml:10: log.format: invalid value "xml" (want text or json)`,
		}},

	// Listeners.
	{name: "no listeners", in: "listeners: []\n" + afterListeners, want: []string{"t.yaml:1: listeners: no listeners"}},
	{name: "listener without address", in: "listeners:\n  - h2c: true\n" + afterListeners,
		want: []string{"t.yaml:2: listeners[0].address: missing (want host:port"}},
	{name: "listener address without port", in: strings.Replace(minimal, "127.0.0.1:8080", "8080", 1),
		want: []string{`t.yaml:2: listeners[0].address: invalid address "8080": missing port in address (want host:port, e.g. 127.0.0.1:8080)`}},
	{name: "listener port out of range", in: strings.Replace(minimal, "127.0.0.1:8080", "127.0.0.1:70000", 1),
		want: []string{`t.yaml:2: listeners[0].address: invalid address "127.0.0.1:70000": port "70000" is not a number from 0 to 65535`}},
	{name: "listener port not numeric", in: strings.Replace(minimal, "127.0.0.1:8080", "127.0.0.1:http", 1),
		want: []string{`listeners[0].address: invalid address "127.0.0.1:http": port "http" is not a number`}},
	{name: "listener empty port", in: strings.Replace(minimal, "127.0.0.1:8080", "'127.0.0.1:'", 1),
		want: []string{`listeners[0].address: invalid address "127.0.0.1:": missing port`}},
	{name: "duplicate listeners", in: strings.Replace(minimal, "8080\n", "8080\n  - address: 127.0.0.1:8080\n  - address: :8080\n  - address: '[::]:08080'\n", 1),
		want: []string{
			`t.yaml:3: listeners[1].address: "127.0.0.1:8080" conflicts with listeners[0].address "127.0.0.1:8080" (line 2)`,
			`t.yaml:4: listeners[2].address: ":8080" conflicts with listeners[0].address "127.0.0.1:8080" (line 2)`,
			`t.yaml:5: listeners[3].address: "[::]:08080" conflicts with listeners[0].address`,
		}},
	{name: "tls cert without key", in: strings.Replace(minimal, "8080\n", "8080\n    tls:\n      cert_file: "+"testdata-missing.pem\n", 1),
		want: []string{
			"t.yaml:3: listeners[0].tls.key_file: missing; tls needs both cert_file and key_file",
			"t.yaml:4: listeners[0].tls.cert_file: stat testdata-missing.pem: no such file or directory",
		}, n: 2},
	{name: "tls key without cert", in: strings.Replace(minimal, "8080\n", "8080\n    tls: {key_file: /}\n", 1),
		want: []string{
			"t.yaml:3: listeners[0].tls.cert_file: missing; tls needs both cert_file and key_file",
			`t.yaml:3: listeners[0].tls.key_file: "/" is not a regular file`,
		}},
	{name: "h2c with tls", in: strings.Replace(minimal, "8080\n", "8080\n    h2c: true\n    tls: {cert_file: /nonexistent/c, key_file: /nonexistent/k}\n", 1),
		want: []string{"t.yaml:3: listeners[0].h2c: h2c is HTTP/2 without TLS and cannot be used with tls"}},
	{name: "http3 without tls", in: strings.Replace(minimal, "8080\n", "8080\n    http3: true\n    http3_max_streams: 0\n    http3_max_connections: -1\n", 1),
		want: []string{
			"t.yaml:3: listeners[0].http3: http3 needs tls (cert_file and key_file, or acme): HTTP/3 is always encrypted",
			"t.yaml:4: listeners[0].http3_max_streams: 0: must be at least 1 (default 250)",
			"t.yaml:5: listeners[0].http3_max_connections: -1: must be at least 1 (default 10000)",
		}},

	// Admin.
	{name: "admin bad address", in: minimal + "admin:\n  address: localhost\n",
		want: []string{`t.yaml:9: admin.address: invalid address "localhost": missing port in address (want host:port, e.g. 127.0.0.1:9090, or "off")`}},
	{name: "admin on a listener", in: minimal + "admin:\n  address: 127.0.0.1:8080\n",
		want: []string{`t.yaml:9: admin.address: "127.0.0.1:8080" conflicts with listeners[0].address "127.0.0.1:8080" (line 2)`}},
	{name: "admin exposed without token", in: minimal + "admin:\n  address: :9090\n",
		want: []string{`t.yaml:9: admin.address: ":9090" is reachable from other hosts; set admin.token`}},
	{name: "health bad address", in: minimal + "admin:\n  health_address: \"9091\"\n",
		want: []string{`t.yaml:9: admin.health_address: invalid address "9091": missing port in address (want host:port, e.g. :9091)`}, n: 1},
	{name: "health on a listener", in: minimal + "admin:\n  health_address: :8080\n",
		want: []string{`t.yaml:9: admin.health_address: ":8080" conflicts with listeners[0].address "127.0.0.1:8080" (line 2)`}, n: 1},
	{name: "health on admin", in: minimal + "admin:\n  address: 127.0.0.1:9090\n  health_address: 0.0.0.0:9090\n",
		want: []string{`t.yaml:10: admin.health_address: "0.0.0.0:9090" conflicts with admin.address "127.0.0.1:9090" (line 9)`}, n: 1},
	{name: "admin prefix without slash", in: minimal + "admin:\n  path_prefix: ops\n",
		want: []string{`t.yaml:9: admin.path_prefix: "ops" must start with "/" (e.g. /ops)`}, n: 1},
	{name: "admin prefix with trailing slash", in: minimal + "admin:\n  address: 127.0.0.1:9090\n  path_prefix: /ops/\n",
		want: []string{`t.yaml:10: admin.path_prefix: "/ops/" must not end with "/" (e.g. /ops)`}, n: 1},
	{name: "admin prefix with dot segment", in: minimal + "admin:\n  path_prefix: /ops/../x\n",
		want: []string{`t.yaml:9: admin.path_prefix: "/ops/../x" must be a clean path of plain segments (e.g. /ops)`}, n: 1},

	// Upstreams.
	{name: "no upstreams", in: "listeners:\n  - address: 127.0.0.1:8080\nupstreams: {}\nroutes:\n  - upstream: app\n",
		want: []string{"t.yaml:3: upstreams: no upstreams", `t.yaml:5: routes[0].upstream: unknown upstream "app" (defined: none)`}},
	{name: "bad upstream name", in: strings.Replace(minimal, "  app:", "  \"my app\":", 1),
		want: []string{`t.yaml:4: upstreams["my app"]: invalid upstream name`}},
	{name: "no targets", in: strings.Replace(minimal, "targets: [http://127.0.0.1:9000]", "protocol: auto", 1),
		want: []string{"t.yaml:4: upstreams.app.targets: no targets"}},
	{name: "empty targets", in: strings.Replace(minimal, "targets: [http://127.0.0.1:9000]", "targets: []", 1),
		want: []string{"t.yaml:5: upstreams.app.targets: no targets"}},
	{name: "null upstream", in: strings.Replace(minimal, "  app:\n    targets: [http://127.0.0.1:9000]", "  app:", 1),
		want: []string{"t.yaml:4: upstreams.app.targets: no targets"}},
	{name: "hash without hash_on", in: strings.Replace(minimal, "    targets:", "    balance: hash\n    targets:", 1),
		want: []string{"t.yaml:4: upstreams.app.hash_on: missing; balance hash needs hash_on: path, header:NAME or cookie:NAME"}},
	{name: "hash_on without hash", in: strings.Replace(minimal, "    targets:", "    hash_on: path\n    targets:", 1),
		want: []string{"t.yaml:5: upstreams.app.hash_on: only used with balance: hash (balance is round_robin)"}},
	{name: "ca_file missing", in: strings.Replace(minimal, "    targets:", "    tls:\n      ca_file: /nonexistent/ca.pem\n    targets:", 1),
		want: []string{"t.yaml:6: upstreams.app.tls.ca_file: stat /nonexistent/ca.pem: no such file or directory"}},

	// Routes.
	{name: "no routes", in: minimal[:strings.Index(minimal, "routes:")] + "routes:\n", want: []string{"t.yaml:6: routes: no routes"}},
	{name: "unknown upstream", in: strings.Replace(minimal, "upstream: app", "upstream: api", 1),
		want: []string{`t.yaml:7: routes[0].upstream: unknown upstream "api" (defined: app)`}},
	{name: "missing upstream", in: strings.Replace(minimal, "  - upstream: app", "  - path: /", 1),
		want: []string{"t.yaml:7: routes[0].upstream: missing (defined: app)"}},
	{name: "route path", in: minimal + "    path: api\n  - upstream: app\n    path: /a?b\n",
		want: []string{
			`t.yaml:8: routes[0].path: "api" must start with "/"`,
			`t.yaml:10: routes[1].path: "/a?b": a path prefix cannot hold "?" or "#"`,
		}},
	{name: "route hosts", in: minimal + "    hosts:\n      - example.com:8080\n      - a.*.com\n      - ''\n      - exa mple.com\n      - '*'\n      - bücher.de\n      - '[::1'\n",
		want: []string{
			`t.yaml:9: routes[0].hosts[0]: invalid host "example.com:8080": hosts match without the port`,
			`t.yaml:10: routes[0].hosts[1]: invalid host "a.*.com": only a leading "*." wildcard is allowed`,
			`t.yaml:11: routes[0].hosts[2]: empty host`,
			`t.yaml:12: routes[0].hosts[3]: invalid host "exa mple.com"`,
			`t.yaml:13: routes[0].hosts[4]: invalid host "*": only a leading "*." wildcard is allowed`,
			`t.yaml:14: routes[0].hosts[5]: invalid host "bücher.de": write international names in their xn-- form`,
			`t.yaml:15: routes[0].hosts[6]: invalid host "[::1"`,
		}, n: 7},
	{name: "route methods", in: minimal + "    methods: [GET, \"BAD METHOD\", \"\"]\n",
		want: []string{`t.yaml:8: routes[0].methods[1]: invalid method "BAD METHOD"`, `t.yaml:8: routes[0].methods[2]: invalid method ""`}},
	{name: "duplicate route names", in: minimal + "    name: r\n  - upstream: app\n    name: r\n    path: /b\n",
		want: []string{`t.yaml:10: routes[1].name: "r" is already the name of routes[0] (line 7)`}, n: 1},
	{name: "route name taken by a default name", in: minimal + "  - upstream: app\n    name: route0\n    path: /b\n",
		want: []string{`t.yaml:9: routes[1].name: "route0" is already the name of routes[0] (line 7)`}, n: 1},
	{name: "max_header_bytes too large", in: strings.Replace(minimal, "8080\n", "8080\n    max_header_bytes: 9223372036854775807\n", 1),
		want: []string{`t.yaml:3: listeners[0].max_header_bytes: `, `at most 64MiB`}, n: 1},

	// Cache.
	{name: "cache not a mapping", in: minimal + "cache: 1GiB\n",
		want: []string{`t.yaml:8: cache: want a mapping, got "1GiB"`}, n: 1},
	{name: "cache bad size", in: minimal + "cache:\n  max_size: lots\n",
		want: []string{`t.yaml:9: cache.max_size: invalid size "lots" (want bytes or e.g. 512KB, 10MB, 64KiB, 1GiB)`}, n: 1},
	{name: "cache negative size", in: minimal + "cache:\n  max_object_size: -1MiB\n",
		want: []string{`t.yaml:9: cache.max_object_size: invalid size "-1MiB": must not be negative`}, n: 1},
	{name: "cache unknown field", in: minimal + "cache:\n  max_sise: 1GiB\n",
		want: []string{`t.yaml:9: cache.max_sise: unknown field (did you mean "max_size"?)`}, n: 1},
	{name: "cache unknown field without suggestion", in: minimal + "cache:\n  path: /var/cache\n",
		want: []string{"t.yaml:9: cache.path: unknown field (want one of: max_size, max_object_size, shared)"}, n: 1},
	{name: "max_object_size zero", in: minimal + "cache:\n  max_object_size: 0\n",
		want: []string{"t.yaml:9: cache.max_object_size: must be positive"}, n: 1},
	{name: "max_size bad, not also compared", in: minimal + "cache:\n  max_size: 1XB\n  max_object_size: 1GiB\n",
		want: []string{`t.yaml:9: cache.max_size: invalid size "1XB": unknown unit "XB"`}, n: 1},
	{name: "route cache not a mapping", in: minimal + "    cache: true\n",
		want: []string{`t.yaml:8: routes[0].cache: want a mapping, got "true"`}, n: 1},
	{name: "route cache wrong types", in: minimal + `    cache:
      enabled: yes
      ignore_params: utm_source
      key_headers: {Accept: true}
      key_cookies: [[a]]
      allow_set_cookie: 1
      heuristic_max: 1d
      lock_timeout: 5
      grace: soon
`, want: []string{
		`t.yaml:9: routes[0].cache.enabled: invalid boolean "yes" (want true or false)`,
		`t.yaml:10: routes[0].cache.ignore_params: want a list, got "utm_source"`,
		`t.yaml:11: routes[0].cache.key_headers: want a list, got a mapping`,
		`t.yaml:12: routes[0].cache.key_cookies[0]: want a string, got a list`,
		`t.yaml:13: routes[0].cache.allow_set_cookie: invalid boolean "1" (want true or false)`,
		`t.yaml:14: routes[0].cache.heuristic_max: invalid duration "1d" (want e.g. 250ms, 30s, 2m)`,
		`t.yaml:15: routes[0].cache.lock_timeout: invalid duration "5" (want e.g. 250ms, 30s, 2m)`,
		`t.yaml:16: routes[0].cache.grace: invalid duration "soon" (want e.g. 250ms, 30s, 2m)`,
	}, n: 8},
	{name: "route cache negative durations", in: minimal + `    cache:
      heuristic_max: -1h
      stale_while_revalidate: -1s
      stale_if_error: -1m
      hit_for_pass: -60s
      lock_timeout: -5s
      grace: -10m
`, want: []string{
		`t.yaml:9: routes[0].cache.heuristic_max: invalid duration "-1h": must not be negative`,
		`t.yaml:10: routes[0].cache.stale_while_revalidate: invalid duration "-1s": must not be negative`,
		`t.yaml:11: routes[0].cache.stale_if_error: invalid duration "-1m": must not be negative`,
		`t.yaml:12: routes[0].cache.hit_for_pass: invalid duration "-60s": must not be negative`,
		`t.yaml:13: routes[0].cache.lock_timeout: invalid duration "-5s": must not be negative`,
		`t.yaml:14: routes[0].cache.grace: invalid duration "-10m": must not be negative`,
	}, n: 6},
	{name: "route cache unknown field", in: minimal + "    cache:\n      enabled: true\n      key_header: [Accept]\n",
		want: []string{`t.yaml:10: routes[0].cache.key_header: unknown field (did you mean "key_headers"?)`}, n: 1},
	{name: "route cache unknown field without suggestion", in: minimal + "    cache:\n      ttl: 1h\n",
		want: []string{"t.yaml:9: routes[0].cache.ttl: unknown field (want one of: enabled, ignore_params, key_headers, key_cookies, allow_set_cookie, heuristic_max, stale_while_revalidate, stale_if_error, grace, hit_for_pass, lock_timeout, targeted_field, strip_targeted, slice)"}, n: 1},
	{name: "targeted_field not a field name", in: minimal + "    cache:\n      targeted_field: Gateway Cache Control\n",
		want: []string{`t.yaml:9: routes[0].cache.targeted_field: "Gateway Cache Control": want a field name other than Cache-Control`}, n: 1},
	{name: "targeted_field Cache-Control", in: minimal + "    cache:\n      targeted_field: cache-control\n",
		want: []string{`t.yaml:9: routes[0].cache.targeted_field: "cache-control": want a field name other than Cache-Control`}, n: 1},
	{name: "slice over max_object_size", in: minimal + "    cache:\n      enabled: true\n      slice: 2GiB\n",
		want: []string{"t.yaml:10: routes[0].cache.slice: 2GiB: at most cache.max_object_size"}, n: 1},
	{name: "slice negative", in: minimal + "    cache:\n      slice: -1MiB\n",
		want: []string{"t.yaml:9: routes[0].cache.slice: "}, n: 1},
	{name: "strip_targeted not a boolean", in: minimal + "    cache:\n      strip_targeted: yes\n",
		want: []string{`t.yaml:9: routes[0].cache.strip_targeted: invalid boolean "yes" (want true or false)`}, n: 1},
	{name: "lock_timeout zero when enabled", in: minimal + "    cache:\n      enabled: true\n      lock_timeout: 0s\n",
		want: []string{"t.yaml:10: routes[0].cache.lock_timeout: must be positive when caching is enabled"}, n: 1},

	// Compression.
	{name: "route compress not a mapping", in: minimal + "    compress: true\n",
		want: []string{`t.yaml:8: routes[0].compress: want a mapping, got "true"`}, n: 1},
	{name: "route compress wrong types", in: minimal + `    compress:
      enabled: on
      encodings: gzip
      stream_level: [fast]
      min_size: big
      types: {text: html}
`, want: []string{
		`t.yaml:9: routes[0].compress.enabled: invalid boolean "on" (want true or false)`,
		`t.yaml:10: routes[0].compress.encodings: want a list, got "gzip"`,
		`t.yaml:11: routes[0].compress.stream_level: want a string, got a list`,
		`t.yaml:12: routes[0].compress.min_size: invalid size "big" (want bytes or e.g. 512KB, 10MB, 64KiB, 1GiB)`,
		`t.yaml:13: routes[0].compress.types: want a list, got a mapping`,
	}, n: 5},
	{name: "compress unknown field", in: minimal + "    compress:\n      level: best\n",
		want: []string{"t.yaml:9: routes[0].compress.level: unknown field (want one of: enabled, encodings, stream_level, cached_level, min_size, types)"}, n: 1},
	{name: "compress unknown field with suggestion", in: minimal + "    compress:\n      encoding: [gzip]\n",
		want: []string{`t.yaml:9: routes[0].compress.encoding: unknown field (did you mean "encodings"?)`}, n: 1},
	{name: "compress negative min_size", in: minimal + "    compress:\n      min_size: -1KiB\n",
		want: []string{`t.yaml:9: routes[0].compress.min_size: invalid size "-1KiB": must not be negative`}, n: 1},

	// Batch.
	{name: "batch not a mapping", in: minimal + "batch: true\n",
		want: []string{`t.yaml:8: batch: want a mapping, got "true"`}, n: 1},
	{name: "batch unknown field with suggestion", in: minimal + "batch:\n  enable: true\n",
		want: []string{`t.yaml:9: batch.enable: unknown field (did you mean "enabled"?)`}, n: 1},
	{name: "batch unknown field", in: minimal + "batch:\n  size: 1\n",
		want: []string{"t.yaml:9: batch.size: unknown field (want one of: enabled, path, max_items, max_body_size, max_response_size, max_total_response_size, concurrency, item_timeout, inherit_headers)"}, n: 1},
	// An explicit 0 would be the package's default: the file's to refuse.
	{name: "batch zero counts", in: minimal + "batch:\n  max_items: 0\n  concurrency: 0\n",
		want: []string{"t.yaml:9: batch.max_items: 0: must be at least 1", "t.yaml:10: batch.concurrency: 0: must be at least 1"}, n: 2},
	{name: "rate_limit zero max_keys", in: minimal + "    rate_limit:\n      rate: 10/s\n      max_keys: 0\n",
		want: []string{"t.yaml:10: routes[0].rate_limit.max_keys: 0: must be at least 1"}, n: 1},
	{name: "batch wrong types", in: minimal + "batch:\n  enabled: yes\n  max_items: many\n  item_timeout: 10\n  inherit_headers: Cookie\n",
		want: []string{
			`t.yaml:9: batch.enabled: invalid boolean "yes" (want true or false)`,
			`t.yaml:10: batch.max_items: invalid integer "many"`,
			`t.yaml:11: batch.item_timeout: invalid duration "10" (want e.g. 250ms, 30s, 2m)`,
			`t.yaml:12: batch.inherit_headers: want a list, got "Cookie"`,
		}, n: 4},
	{name: "batchable not a bool", in: minimal + "    batchable: 1\n",
		want: []string{`t.yaml:8: routes[0].batchable: invalid boolean "1" (want true or false)`}, n: 1},

	// Composite routes.
	{name: "composite not a mapping", in: minimal + "    composite: [a]\n",
		want: []string{"t.yaml:8: routes[0].composite: want a mapping, got a list"}, n: 1},
	{name: "braces outside a composite", in: minimal + "  - upstream: app\n    path: /users/{id}\n",
		want: []string{`t.yaml:9: routes[1].path: "/users/{id}": {name} segments are only for composite routes`}, n: 1},

	// Several problems at once, reported in line order.
}

// aliasBomb is a small document whose aliases expand to billions of
// values: a list of lists nine deep, and mappings that each merge the
// one below ten times.
func aliasBomb() string {
	var b strings.Builder
	refs := func(name string) string {
		return strings.TrimSuffix(strings.Repeat("*"+name+", ", 10), ", ")
	}
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	b.WriteString("m0: &m0 {k: v}\n")
	for i := 1; i < 10; i++ {
		n, prev := strconv.Itoa(i), strconv.Itoa(i-1)
		b.WriteString("a" + n + ": &a" + n + " [" + refs("a"+prev) + "]\n")
		b.WriteString("m" + n + ": &m" + n + " {<<: [" + refs("m"+prev) + "]}\n")
	}
	b.WriteString("trusted_proxies: *a9\nlisteners: [{<<: *m9}]\n")
	return b.String()
}

func TestParseErrors(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("got no error; want %q", tc.want)
			}
			if cfg != nil {
				t.Errorf("got a config with the error; want nil")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got\n%v\nwant it to contain\n%s", err, w)
				}
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %T; want Errors", err)
			}
			if tc.n != 0 && len(es) != tc.n {
				t.Errorf("got %d problems:\n%v\nwant %d", len(es), err, tc.n)
			}
			for i := 1; i < len(es); i++ {
				if es[i].Line != 0 && es[i].Line < es[i-1].Line {
					t.Errorf("got line %d after line %d; want problems sorted by line", es[i].Line, es[i-1].Line)
				}
			}
		})
	}
}

// TestListenerTLSPairErrors: a listener's cert_file and key_file that
// exist but do not make a certificate (garbage, the two files swapped,
// a key of another certificate) are an error on cert_file naming both
// files and crypto/tls's reason, so validate catches what run would fail
// on. The files are written per test, so the table is kept apart from
// badCases; $DIR in in and want is the directory holding them.
func TestListenerTLSPairErrors(t *testing.T) {
	dir := t.TempDir()
	writeTestPair(t, dir, "a")
	writeTestPair(t, dir, "b")
	if err := os.WriteFile(filepath.Join(dir, "garbage.pem"), []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsListener := func(cert, key string) string {
		return strings.Replace(minimal, "8080\n", "8080\n    tls:\n      cert_file: $DIR/"+cert+"\n      key_file: $DIR/"+key+"\n", 1)
	}
	for _, tc := range []badCase{
		{name: "garbage cert", in: tlsListener("garbage.pem", "a-key.pem"), want: []string{
			`t.yaml:4: listeners[0].tls.cert_file: cannot load certificate "$DIR/garbage.pem" with key_file "$DIR/a-key.pem": tls: failed to find any PEM data in certificate input`,
		}, n: 1},
		{name: "garbage key", in: tlsListener("a-cert.pem", "garbage.pem"), want: []string{
			`t.yaml:4: listeners[0].tls.cert_file: cannot load certificate "$DIR/a-cert.pem" with key_file "$DIR/garbage.pem": tls: failed to find any PEM data in key input`,
		}, n: 1},
		{name: "swapped cert and key", in: tlsListener("a-key.pem", "a-cert.pem"), want: []string{
			`t.yaml:4: listeners[0].tls.cert_file: cannot load certificate "$DIR/a-key.pem" with key_file "$DIR/a-cert.pem": tls: `,
			"PEM inputs may have been switched",
		}, n: 1},
		{name: "mismatched pair", in: tlsListener("a-cert.pem", "b-key.pem"), want: []string{
			`t.yaml:4: listeners[0].tls.cert_file: cannot load certificate "$DIR/a-cert.pem" with key_file "$DIR/b-key.pem": tls: private key does not match public key`,
		}, n: 1},
		// A missing file is reported as such, without a load error too.
		{name: "missing key", in: tlsListener("a-cert.pem", "none.pem"), want: []string{
			"t.yaml:5: listeners[0].tls.key_file: stat $DIR/none.pem: no such file or directory",
		}, n: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(strings.ReplaceAll(tc.in, "$DIR", dir)))
			if err == nil {
				t.Fatalf("got no error; want %q", tc.want)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "$DIR", dir); !strings.Contains(err.Error(), w) {
					t.Errorf("got\n%v\nwant it to contain\n%s", err, w)
				}
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != tc.n {
				t.Errorf("got %d problems:\n%v\nwant %d", len(es), err, tc.n)
			}
		})
	}
	// The good pair passes.
	if _, err := Parse("t.yaml", []byte(strings.ReplaceAll(tlsListener("a-cert.pem", "a-key.pem"), "$DIR", dir))); err != nil {
		t.Errorf("a valid pair: got %v; want no error", err)
	}
}

// writeTestPair writes a self-signed certificate and its key to
// dir/NAME-cert.pem and dir/NAME-key.pem.
func writeTestPair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile = filepath.Join(dir, name+"-cert.pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	testcert.Write(t, certFile, keyFile, 1, name)
	return certFile, keyFile
}

func TestErrorValues(t *testing.T) {
	_, err := Parse("g.yaml", []byte(strings.Replace(minimal, "    targets:", "    dial_timeout: 5x\n    targets:", 1)))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T; want it to hold an *Error", err)
	}
	want := Error{File: "g.yaml", Line: 5, Field: "upstreams.app.dial_timeout", Msg: `invalid duration "5x" (want e.g. 250ms, 30s, 2m)`}
	if *e != want {
		t.Errorf("got %+v; want %+v", *e, want)
	}
}

func TestUnknownFieldDoesNotCascade(t *testing.T) {
	// A typo of a required field is one problem, not also "missing".
	_, err := Parse("t.yaml", []byte("listeners:\n  - adress: 127.0.0.1:8080\n"+afterListeners))
	if got := err.Error(); strings.Contains(got, "address: missing") {
		t.Errorf("got %q; want only the unknown field", got)
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("GW_HOST", "10.1.2.3")
	t.Setenv("GW_EMPTY", "")
	t.Setenv("GW_TOKEN", "s3cr$t\nlisteners: []")
	t.Setenv("GW_UNSET", "")
	os.Unsetenv("GW_UNSET")

	in := strings.Replace(minimal, "[http://127.0.0.1:9000]", "[\"http://${GW_HOST}:${GW_PORT_UNSET:-9000}\"]", 1) + `    name: "$$HOME costs $5 ${GW_EMPTY:-fallback} ${GW_UNSET:-dflt} [${GW_EMPTY}] [${GW_UNSET:-}]"
    timeout: ${GW_TIMEOUT_UNSET:-2m}
admin:
  token: ${GW_TOKEN}
`
	c, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Upstreams["app"].Targets[0], "http://10.1.2.3:9000"; got != want {
		t.Errorf("got target %q; want %q", got, want)
	}
	if got, want := c.Routes[0].Name, "$HOME costs $5 fallback dflt [] []"; got != want {
		t.Errorf("got name %q; want %q", got, want)
	}
	if got, want := c.Routes[0].Timeout.D(), 2*time.Minute; got != want {
		t.Errorf("got timeout %v; want %v", got, want)
	}
	// The value stays one string: its newline and YAML do not add keys.
	if got, want := c.Admin.Token, "s3cr$t\nlisteners: []"; got != want {
		t.Errorf("got token %q; want %q", got, want)
	}
	if len(c.Listeners) != 1 {
		t.Errorf("got %d listeners; want 1", len(c.Listeners))
	}
}

func TestEnvEmptyKeepsDefault(t *testing.T) {
	t.Setenv("GW_EMPTY", "")
	c, err := Parse("t.yaml", []byte(minimal+"    timeout: ${GW_EMPTY}\nshutdown_grace: \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Routes[0].Timeout, Duration(60*time.Second); got != want {
		t.Errorf("got %v; want %v", got, want)
	}
	if got, want := c.ShutdownGrace, Duration(30*time.Second); got != want {
		t.Errorf("got %v; want %v", got, want)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "x", "E": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x"},
		{in: "a${A}b${A}", want: "axbx"},
		{in: "${E}", want: ""},
		{in: "${E:-d}", want: "d"},
		{in: "${U:-d}", want: "d"},
		{in: "${A:-d}", want: "x"},
		{in: "${U:-}", want: ""},
		{in: "${U:-a:-b}", want: "a:-b"},
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "$$$", want: "$$"},
		{in: "$A $", want: "$A $"},
		{in: "${U}", err: "environment variable U is not set"},
		{in: "${A", err: `unterminated "${"`},
		{in: "${}", err: "invalid variable reference"},
		{in: "${A-b}", err: "invalid variable reference"},
		{in: "${ A}", err: "invalid variable reference"},
	} {
		got, err := expand(tc.in, lookup)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("expand(%q): got %q, %v; want error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("expand(%q): got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
		err  string
	}{
		{in: "0", want: 0},
		{in: "512", want: 512},
		{in: "512B", want: 512},
		{in: "1KB", want: 1000},
		{in: "1kb", want: 1000},
		{in: "1k", want: 1000},
		{in: "1K", want: 1000},
		{in: "10MB", want: 10_000_000},
		{in: "10 mb", want: 10_000_000},
		{in: "2m", want: 2_000_000},
		{in: "1GB", want: 1_000_000_000},
		{in: "64KiB", want: 64 << 10},
		{in: "64kib", want: 64 << 10},
		{in: "1MiB", want: 1 << 20},
		{in: "1mi", want: 1 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "1.5KiB", want: 1536},
		{in: "0.5MB", want: 500_000},
		{in: " 7 ", want: 7},
		{in: "8589934591GiB", want: 8589934591 << 30},
		{in: "", err: "invalid size"},
		{in: "KB", err: "invalid size"},
		{in: "-1", err: "must not be negative"},
		{in: "-1KB", err: "must not be negative"},
		{in: "1.5B", err: "not a whole number of bytes"},
		{in: "1.", err: "invalid size"},
		{in: ".5", err: "invalid size"},
		{in: "1.2.3", err: "unknown unit"},
		{in: "10XB", err: `unknown unit "XB"`},
		{in: "1e6", err: "unknown unit"},
		{in: "0x10", err: "unknown unit"},
		{in: "1_000", err: "unknown unit"},
		{in: "8589934592GiB", err: "too large"},
		{in: "99999999999999999999", err: "too large"},
	} {
		got, err := parseSize(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseSize(%q): got %d, %v; want error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseSize(%q): got %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "2m", want: 2 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "30", err: `invalid duration "30" (want e.g. 250ms, 30s, 2m)`},
		{in: "5x", err: `invalid duration "5x"`},
		{in: "", err: "invalid duration"},
		{in: "-1s", err: "must not be negative"},
		{in: "9999999h", err: "invalid duration"},
	} {
		got, err := parseDuration(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseDuration(%q): got %v, %v; want error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got.D() != tc.want):
			t.Errorf("parseDuration(%q): got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestStringForms(t *testing.T) {
	for _, tc := range []struct {
		v    interface{ String() string }
		want string
	}{
		{Duration(0), "0s"},
		{Duration(250 * time.Millisecond), "250ms"},
		{Duration(90 * time.Second), "1m30s"},
		{Duration(2 * time.Minute), "2m"},
		{Duration(2 * time.Hour), "2h"},
		{Duration(2*time.Hour + 5*time.Second), "2h0m5s"},
		{Size(0), "0"},
		{Size(512), "512"},
		{Size(1000), "1KB"},
		{Size(1024), "1KiB"},
		{Size(1 << 20), "1MiB"},
		{Size(10_000_000), "10MB"},
		{Size(3 << 30), "3GiB"},
		{Size(1536), "1536"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("got %q; want %q", got, tc.want)
		}
	}
	// Each form reads back as the same value.
	for _, s := range []Size{0, 1, 512, 1000, 1024, 1536, 1 << 20, 10_000_000, 3 << 30, 1<<62 + 1} {
		if got, err := parseSize(s.String()); err != nil || got != s {
			t.Errorf("parseSize(%q): got %d, %v; want %d", s.String(), got, err, s)
		}
	}
	for _, d := range []Duration{0, 1, Duration(time.Hour), Duration(time.Hour + time.Second), Duration(90 * time.Minute)} {
		if got, err := parseDuration(d.String()); err != nil || got != d {
			t.Errorf("parseDuration(%q): got %v, %v; want %v", d.String(), got, err, d)
		}
	}
	b, err := json.Marshal(struct {
		D Duration
		S Size
	}{Duration(30 * time.Second), 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"D":"30s","S":"1MiB"}`; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}

// defaults is minimal after defaults are applied.
func defaults() *Config {
	t := true
	return &Config{
		ShutdownGrace:  Duration(30 * time.Second),
		TrustedProxies: []string{},
		Listeners: []Listener{{
			Address:           "127.0.0.1:8080",
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(60 * time.Second),
			WriteTimeout:      Duration(60 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			MaxHeaderBytes:    1 << 20,
			HTTP3MaxStreams:   250, HTTP3MaxConnections: 10000,
		}},
		Admin: Admin{Address: "127.0.0.1:9090"},
		Upstreams: map[string]Upstream{"app": {
			Targets:          []string{"http://127.0.0.1:9000"},
			Protocol:         "auto",
			Balance:          "round_robin",
			MaxIdlePerTarget: 64,
			IdleConnTimeout:  Duration(90 * time.Second),
			DialTimeout:      Duration(5 * time.Second),
			HTTP2:            HTTP2{ReadIdleTimeout: Duration(30 * time.Second), PingTimeout: Duration(15 * time.Second)},
			HealthCheck: HealthCheck{
				MaxFails: 3,
				CoolDown: Duration(10 * time.Second),
				Interval: Duration(5 * time.Second),
				Timeout:  Duration(2 * time.Second),
			},
			Retry: &t,
		}},
		Cache:  Cache{MaxSize: 256 << 20, MaxObjectSize: 8 << 20},
		Batch:  batchDefaults(),
		Routes: []Route{{Name: "route0", Path: "/", Upstream: "app", Timeout: Duration(60 * time.Second), Cache: routeCacheDefaults(), Compress: routeCompressDefaults(), WebSocket: routeWebSocketDefaults(), Concurrency: routeConcurrencyDefaults()}},
		Jobs:   jobsSectionDefaults(),
		Log:    Log{Level: "info", Format: "text"},
		File:   "t.yaml",

		AccessLog:     AccessLog{Enabled: true, Format: "text", Output: "stdout"},
		MemoryProfile: MemoryEdge,
		GCHeapFloor:   64 << 20,
	}
}

// jobsSectionDefaults is the jobs section after defaults.
func jobsSectionDefaults() Jobs {
	return Jobs{Prefix: "/_jobs/", DataDir: "./data", Store: "auto", Visibility: Duration(5 * time.Minute)}
}

// batchDefaults is the batch section after defaults.
func batchDefaults() Batch {
	return Batch{
		Path:                 "/_batch",
		MaxItems:             50,
		MaxBodySize:          1 << 20,
		MaxResponseSize:      4 << 20,
		MaxTotalResponseSize: 16 << 20,
		Concurrency:          8,
		ItemTimeout:          Duration(10 * time.Second),
		InheritHeaders:       []string{"Authorization", "Cookie", "Accept-Language"},
	}
}

// routeCacheDefaults is a route's cache section after defaults.
func routeCacheDefaults() RouteCache {
	return RouteCache{
		IgnoreParams: []string{},
		KeyHeaders:   []string{},
		KeyCookies:   []string{},
		HeuristicMax: Duration(24 * time.Hour),
		Grace:        Duration(10 * time.Minute),
		HitForPass:   Duration(60 * time.Second),
		LockTimeout:  Duration(5 * time.Second),
	}
}

// routeWebSocketDefaults is a route's websocket section after defaults.
func routeWebSocketDefaults() RouteWebSocket {
	return RouteWebSocket{IdleTimeout: Duration(5 * time.Minute)}
}

// routeCompressDefaults is a route's compress section after defaults.
func routeCompressDefaults() RouteCompress {
	return RouteCompress{
		Encodings:   []string{"br", "zstd", "gzip"},
		StreamLevel: "fastest",
		CachedLevel: "default",
		MinSize:     1 << 10,
		Types:       []string{},
	}
}

func TestDefaults(t *testing.T) {
	got, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if want := defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if !got.Upstreams["app"].RetryEnabled() || !got.Admin.Enabled() {
		t.Errorf("got retry %v, admin %v; want both enabled", got.Upstreams["app"].RetryEnabled(), got.Admin.Enabled())
	}
}

// TestShippedConfig keeps gateway.yaml loadable and its values the real
// defaults.
func TestShippedConfig(t *testing.T) {
	got, err := Load("../gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := defaults()
	want.File = "../gateway.yaml"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestFullConfig(t *testing.T) {
	dir := t.TempDir()
	// The listener's pair is loaded by validation, so it must be real.
	certFile, keyFile := writeTestPair(t, dir, "listener")
	for f, src := range map[string]string{"cert.pem": certFile, "key.pem": keyFile} {
		if err := os.Rename(src, filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GW_DIR", dir)
	in := `shutdown_grace: 5s
trusted_proxies: [10.0.0.0/8, 192.168.1.10, "::1"]
base: &tuning
  read_timeout: 15s
  write_timeout: 20s
listeners:
  - address: ":8443"
    tls:
      cert_file: ${GW_DIR}/cert.pem
      key_file: ${GW_DIR}/key.pem
    <<: *tuning
    read_header_timeout: 1s
    idle_timeout: 0s
    max_header_bytes: 64KiB
  - address: 127.0.0.1:8080
    h2c: true
    <<: *tuning
    write_timeout: 21s
admin:
  address: 0.0.0.0:9091
  token: t0k3n
upstreams:
  api:
    targets: [https://api1.internal:8443, "https://api2.internal/"]
    protocol: h2
    balance: hash
    hash_on: header:X-User
    max_conns_per_target: 100
    max_idle_per_target: 0
    idle_conn_timeout: 1m
    dial_timeout: 1s
    response_header_timeout: 10s
    tls:
      ca_file: ${GW_DIR}/ca.pem
      server_name: api.internal
      insecure_skip_verify: true
    http2:
      read_idle_timeout: 10s
      ping_timeout: 5s
    health_check:
      max_fails: 0
      cool_down: 30s
      path: /healthz
      interval: 1s
      timeout: 500ms
    retry: false
  static:
    targets: [http://127.0.0.1:9001]
    protocol: h2c
    balance: least_requests
routes:
  - name: api
    hosts: [API.Example.com, "*.api.example.com", "[::1]", 10.0.0.1]
    path: /api/
    methods: [get, Post]
    upstream: api
    strip_prefix: true
    timeout: 30s
    max_body_size: 10MB
    batchable: true
    cache:
      enabled: true
      ignore_params: [utm_*, gclid]
      key_headers: [Accept-Language, x-tenant]
      key_cookies: [session]
      allow_set_cookie: true
      heuristic_max: 1h
      stale_while_revalidate: 30s
      stale_if_error: 10m
      grace: 0s
      hit_for_pass: 0s
      lock_timeout: 250ms
      targeted_field: Gateway-Cache-Control
      strip_targeted: true
      slice: 1MiB
    compress:
      enabled: true
      encodings: [GZIP, br]
      stream_level: default
      cached_level: best
      min_size: 0
      types: [Text/*, application/json, "application/*+XML"]
  - upstream: static
    cache:
      key_headers:
        - Accept
  - name: dashboard
    path: /dashboard/{user}
    methods: [get]
    batchable: true
    composite:
      parts:
        - key: profile
          path: /users/{user}
        - key: orders
          path: /orders?user={user}
      on_error: omit
  - path: /summary
    composite:
      parts: [{key: status, path: /status}]
cache:
  max_size: 1GiB
  max_object_size: 1GiB
batch:
  enabled: true
  path: /api/_batch
  max_items: 10
  max_body_size: 64KiB
  max_response_size: 1MiB
  concurrency: 2
  item_timeout: 0s
  inherit_headers: [authorization, X-Tenant]
log:
  level: debug
  format: json
`
	// "base" is not a field; anchors to merge live where they are used.
	_, err := Parse("t.yaml", []byte(in))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:3: base: unknown field") {
		t.Fatalf("got %v; want the unknown field base", err)
	}
	in = strings.Replace(in, "base: &tuning\n  read_timeout: 15s\n  write_timeout: 20s\n", "", 1)
	in = strings.Replace(in, "    <<: *tuning\n    read_header_timeout", "    <<: &tuning {read_timeout: 15s, write_timeout: 20s}\n    read_header_timeout", 1)
	got, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	f, tr := false, false
	want := &Config{
		ShutdownGrace:  Duration(5 * time.Second),
		TrustedProxies: []string{"10.0.0.0/8", "192.168.1.10", "::1"},
		Listeners: []Listener{{
			Address:           ":8443",
			TLS:               TLS{CertFile: dir + "/cert.pem", KeyFile: dir + "/key.pem"},
			ReadHeaderTimeout: Duration(time.Second),
			ReadTimeout:       Duration(15 * time.Second),
			WriteTimeout:      Duration(20 * time.Second),
			IdleTimeout:       0,
			MaxHeaderBytes:    64 << 10,
			HTTP3MaxStreams:   250, HTTP3MaxConnections: 10000,
		}, {
			Address:           "127.0.0.1:8080",
			H2C:               true,
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(15 * time.Second),
			WriteTimeout:      Duration(21 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			MaxHeaderBytes:    1 << 20,
			HTTP3MaxStreams:   250, HTTP3MaxConnections: 10000,
		}},
		Admin: Admin{Address: "0.0.0.0:9091", Token: "t0k3n"},
		Upstreams: map[string]Upstream{
			"api": {
				Targets:               []string{"https://api1.internal:8443", "https://api2.internal/"},
				Protocol:              "h2",
				Balance:               "hash",
				HashOn:                "header:X-User",
				MaxConnsPerTarget:     100,
				MaxIdlePerTarget:      0,
				IdleConnTimeout:       Duration(time.Minute),
				DialTimeout:           Duration(time.Second),
				ResponseHeaderTimeout: Duration(10 * time.Second),
				TLS:                   UpstreamTLS{CAFile: dir + "/ca.pem", ServerName: "api.internal", InsecureSkipVerify: true},
				HTTP2:                 HTTP2{ReadIdleTimeout: Duration(10 * time.Second), PingTimeout: Duration(5 * time.Second)},
				HealthCheck: HealthCheck{
					MaxFails: 0,
					CoolDown: Duration(30 * time.Second),
					Path:     "/healthz",
					Interval: Duration(time.Second),
					Timeout:  Duration(500 * time.Millisecond),
				},
				Retry: &f,
			},
			"static": {
				Targets:          []string{"http://127.0.0.1:9001"},
				Protocol:         "h2c",
				Balance:          "least_requests",
				MaxIdlePerTarget: 64,
				IdleConnTimeout:  Duration(90 * time.Second),
				DialTimeout:      Duration(5 * time.Second),
				HTTP2:            HTTP2{ReadIdleTimeout: Duration(30 * time.Second), PingTimeout: Duration(15 * time.Second)},
				HealthCheck: HealthCheck{
					MaxFails: 3,
					CoolDown: Duration(10 * time.Second),
					Interval: Duration(5 * time.Second),
					Timeout:  Duration(2 * time.Second),
				},
				Retry: &tr,
			},
		},
		Routes: []Route{{
			Name:        "api",
			Hosts:       []string{"api.example.com", "*.api.example.com", "[::1]", "10.0.0.1"},
			Path:        "/api/",
			Methods:     []string{"GET", "POST"},
			Upstream:    "api",
			StripPrefix: true,
			Timeout:     Duration(30 * time.Second),
			MaxBodySize: 10_000_000,
			Batchable:   true,
			Cache: RouteCache{
				Enabled:              true,
				IgnoreParams:         []string{"utm_*", "gclid"},
				KeyHeaders:           []string{"Accept-Language", "x-tenant"},
				KeyCookies:           []string{"session"},
				AllowSetCookie:       true,
				HeuristicMax:         Duration(time.Hour),
				StaleWhileRevalidate: Duration(30 * time.Second),
				StaleIfError:         Duration(10 * time.Minute),
				HitForPass:           0,
				LockTimeout:          Duration(250 * time.Millisecond),
				TargetedField:        "Gateway-Cache-Control",
				StripTargeted:        true,
				Slice:                1 << 20,
			},
			Compress: RouteCompress{
				Enabled:     true,
				Encodings:   []string{"gzip", "br"},
				StreamLevel: "default",
				CachedLevel: "best",
				MinSize:     0,
				Types:       []string{"text/*", "application/json", "application/*+xml"},
			},
			WebSocket:   routeWebSocketDefaults(),
			Concurrency: routeConcurrencyDefaults(),
		}, {
			Name:        "route1",
			Path:        "/",
			Upstream:    "static",
			Timeout:     Duration(60 * time.Second),
			Cache:       routeCacheDefaults(),
			Compress:    routeCompressDefaults(),
			WebSocket:   routeWebSocketDefaults(),
			Concurrency: routeConcurrencyDefaults(),
		}, {
			Name:      "dashboard",
			Path:      "/dashboard/{user}",
			Methods:   []string{"GET"},
			Timeout:   Duration(60 * time.Second),
			Batchable: true,
			Composite: &RouteComposite{
				Parts:   []CompositePart{{Key: "profile", Path: "/users/{user}"}, {Key: "orders", Path: "/orders?user={user}"}},
				OnError: "omit",
			},
			Cache:       routeCacheDefaults(),
			Compress:    routeCompressDefaults(),
			WebSocket:   routeWebSocketDefaults(),
			Concurrency: routeConcurrencyDefaults(),
		}, {
			Name:        "route3",
			Path:        "/summary",
			Timeout:     Duration(60 * time.Second),
			Composite:   &RouteComposite{Parts: []CompositePart{{Key: "status", Path: "/status"}}, OnError: "fail"},
			Cache:       routeCacheDefaults(),
			Compress:    routeCompressDefaults(),
			WebSocket:   routeWebSocketDefaults(),
			Concurrency: routeConcurrencyDefaults(),
		}},
		Cache: Cache{MaxSize: 1 << 30, MaxObjectSize: 1 << 30},
		Batch: Batch{
			Enabled:              true,
			Path:                 "/api/_batch",
			MaxItems:             10,
			MaxBodySize:          64 << 10,
			MaxResponseSize:      1 << 20,
			MaxTotalResponseSize: 16 << 20,
			Concurrency:          2,
			ItemTimeout:          0,
			InheritHeaders:       []string{"authorization", "X-Tenant"},
		},
		Jobs: jobsSectionDefaults(),
		Log:  Log{Level: "debug", Format: "json"},
		File: "t.yaml",

		AccessLog:     AccessLog{Enabled: true, Format: "text", Output: "stdout"},
		MemoryProfile: MemoryEdge,
		GCHeapFloor:   64 << 20,
	}
	want.Routes[1].Cache.KeyHeaders = []string{"Accept"}
	tr = true
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if got.Upstreams["api"].RetryEnabled() {
		t.Errorf("got retry enabled; want disabled")
	}

	// The marshalled form loads back as the same config.
	out, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("t.yaml", out)
	if err != nil {
		t.Fatalf("reloading\n%s\ngot %v", out, err)
	}
	if !reflect.DeepEqual(again, got) {
		t.Errorf("reloading\n%s\ngot\n%+v\nwant\n%+v", out, again, got)
	}

	r := got.Redacted()
	if r.Admin.Token != "REDACTED" || got.Admin.Token != "t0k3n" {
		t.Errorf("got redacted token %q, original %q; want REDACTED, t0k3n", r.Admin.Token, got.Admin.Token)
	}
	if !reflect.DeepEqual(r.Routes, got.Routes) || r.Cache != got.Cache {
		t.Errorf("got redacted routes %+v, cache %+v; want them as loaded", r.Routes, r.Cache)
	}
	r.Routes[0].Hosts[0] = "changed"
	r.Routes[0].Cache.IgnoreParams[0] = "changed"
	r.Routes[0].Cache.KeyHeaders[0] = "changed"
	r.Routes[0].Cache.KeyCookies[0] = "changed"
	r.Routes[0].Compress.Encodings[0] = "changed"
	r.Routes[0].Compress.Types[0] = "changed"
	r.Routes[2].Composite.Parts[0].Key = "changed"
	r.Routes[2].Composite.OnError = "changed"
	r.Batch.InheritHeaders[0] = "changed"
	r.Upstreams["api"].Targets[0] = "changed"
	*r.Upstreams["api"].Retry = true
	if got.Routes[0].Hosts[0] == "changed" || got.Upstreams["api"].Targets[0] == "changed" || *got.Upstreams["api"].Retry ||
		got.Routes[0].Cache.IgnoreParams[0] == "changed" || got.Routes[0].Cache.KeyHeaders[0] == "changed" || got.Routes[0].Cache.KeyCookies[0] == "changed" ||
		got.Routes[0].Compress.Encodings[0] == "changed" || got.Routes[0].Compress.Types[0] == "changed" ||
		got.Routes[2].Composite.Parts[0].Key == "changed" || got.Routes[2].Composite.OnError == "changed" || got.Batch.InheritHeaders[0] == "changed" {
		t.Errorf("got the original changed through the redacted copy; want them independent")
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "t0k3n") {
		t.Errorf("got token in %s; want it redacted", b)
	}

	// The effective config, as the admin endpoint shows it, holds every
	// cache setting in its configured form.
	b, err = json.Marshal(got.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Cache  map[string]any
		Routes []struct{ Cache, Compress map[string]any }
	}
	if err := json.Unmarshal(b, &shown); err != nil {
		t.Fatal(err)
	}
	if got, want := shown.Cache, map[string]any{"max_size": "1GiB", "max_object_size": "1GiB"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got cache %v; want %v", got, want)
	}
	for i, want := range []map[string]any{{
		"enabled":                true,
		"ignore_params":          []any{"utm_*", "gclid"},
		"key_headers":            []any{"Accept-Language", "x-tenant"},
		"key_cookies":            []any{"session"},
		"allow_set_cookie":       true,
		"heuristic_max":          "1h",
		"stale_while_revalidate": "30s",
		"stale_if_error":         "10m",
		"grace":                  "0s",
		"hit_for_pass":           "0s",
		"lock_timeout":           "250ms",
		"targeted_field":         "Gateway-Cache-Control",
		"strip_targeted":         true,
		"slice":                  "1MiB",
	}, {
		"enabled":                false,
		"ignore_params":          []any{},
		"key_headers":            []any{"Accept"},
		"key_cookies":            []any{},
		"allow_set_cookie":       false,
		"heuristic_max":          "24h",
		"stale_while_revalidate": "0s",
		"stale_if_error":         "0s",
		"grace":                  "10m",
		"hit_for_pass":           "1m",
		"lock_timeout":           "5s",
		"targeted_field":         "",
		"strip_targeted":         false,
		"slice":                  "0",
	}} {
		if got := shown.Routes[i].Cache; !reflect.DeepEqual(got, want) {
			t.Errorf("got routes[%d].cache %v; want %v", i, got, want)
		}
	}
	for i, want := range []map[string]any{{
		"enabled":      true,
		"encodings":    []any{"gzip", "br"},
		"stream_level": "default",
		"cached_level": "best",
		"min_size":     "0",
		"types":        []any{"text/*", "application/json", "application/*+xml"},
	}, {
		"enabled":      false,
		"encodings":    []any{"br", "zstd", "gzip"},
		"stream_level": "fastest",
		"cached_level": "default",
		"min_size":     "1KiB",
		"types":        []any{},
	}} {
		if got := shown.Routes[i].Compress; !reflect.DeepEqual(got, want) {
			t.Errorf("got routes[%d].compress %v; want %v", i, got, want)
		}
	}
}

func TestAdminOff(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimal+"admin:\n  address: off\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Enabled() {
		t.Errorf("got admin enabled; want off")
	}
	if r := c.Redacted(); r.Admin.Token != "" {
		t.Errorf("got token %q; want empty left empty", r.Admin.Token)
	}
}

// TestHealthAddress: the probe-only listener may listen on every
// interface without admin.token, beside an admin listener on loopback or
// none at all.
func TestHealthAddress(t *testing.T) {
	for _, admin := range []string{"  health_address: :9091\n", "  address: off\n  health_address: 0.0.0.0:9090\n"} {
		c, err := Parse("t.yaml", []byte(minimal+"admin:\n"+admin))
		if err != nil {
			t.Fatalf("%q: %v", admin, err)
		}
		if c.Admin.HealthAddress == "" || c.Admin.Token != "" {
			t.Errorf("%q: got %+v; want a health address and no token", admin, c.Admin)
		}
	}
}

func TestCacheSize(t *testing.T) {
	// With no route caching, a zero max_size is accepted: nothing is
	// stored. max_object_size is then not compared with it.
	c, err := Parse("t.yaml", []byte(minimal+"    cache:\n      enabled: false\n      key_headers: [Accept]\ncache:\n  max_size: 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Cache, (Cache{MaxSize: 0, MaxObjectSize: 8 << 20}); got != want {
		t.Errorf("got %+v; want %+v", got, want)
	}
	// max_object_size may equal max_size, and either may be written in
	// any unit.
	c, err = Parse("t.yaml", []byte(minimal+"    cache: {enabled: true}\ncache:\n  max_size: 1000000\n  max_object_size: 1MB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Cache, (Cache{MaxSize: 1_000_000, MaxObjectSize: 1_000_000}); got != want {
		t.Errorf("got %+v; want %+v", got, want)
	}
	if !c.Routes[0].Cache.Enabled {
		t.Errorf("got caching disabled; want enabled")
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v; want a not-exist error", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range badCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte(minimal))
	if b, err := os.ReadFile("../gateway.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("got config %v and error %v; want exactly one", c != nil, err)
		}
		if err == nil {
			if _, err := json.Marshal(c.Redacted()); err != nil {
				t.Fatalf("got %v marshalling the config; want none", err)
			}
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml:") {
				t.Errorf("got error line %q; want it to start with fuzz.yaml:", line)
			}
		}
	})
}

func TestParsePrefix(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.168.1.10", "192.168.1.10/32"},
		{"::1", "::1/128"},
		{"::ffff:127.0.0.1", "127.0.0.1/32"},
		{"fd00::/8", "fd00::/8"},
	} {
		got, err := ParsePrefix(tt.in)
		if err != nil || got.String() != tt.want {
			t.Errorf("ParsePrefix(%q): got %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "example.com", "1.2.3"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q): got nil error; want one", bad)
		}
	}
}

// TestAdminPathPrefixAccepted: a prefix of plain segments, or "/" (none).
func TestAdminPathPrefixAccepted(t *testing.T) {
	for _, p := range []string{"/ops", "/a/b-c_d", "/", ""} {
		c, err := Parse("t.yaml", []byte(minimal+"admin:\n  path_prefix: \""+p+"\"\n"))
		if err != nil {
			t.Errorf("path_prefix %q: %v", p, err)
			continue
		}
		if c.Admin.PathPrefix != p {
			t.Errorf("path_prefix %q: got %q", p, c.Admin.PathPrefix)
		}
	}
}

// TestMemoryProfile: the profile gives gc_heap_floor its default, and a
// gc_heap_floor in the file overrides it, 0 included.
func TestMemoryProfile(t *testing.T) {
	tests := []struct {
		extra   string
		profile string
		floor   Size
	}{
		{"", MemoryEdge, 64 << 20},
		{"memory_profile: edge\n", MemoryEdge, 64 << 20},
		{"memory_profile: sidecar\n", MemorySidecar, 0},
		{"memory_profile: sidecar\ngc_heap_floor: 16MiB\n", MemorySidecar, 16 << 20},
		{"memory_profile: edge\ngc_heap_floor: 0\n", MemoryEdge, 0},
		{"gc_heap_floor: 128MiB\n", MemoryEdge, 128 << 20},
	}
	for _, tt := range tests {
		c, err := Parse("t.yaml", []byte(minimal+tt.extra))
		if err != nil {
			t.Errorf("%q: %v", tt.extra, err)
			continue
		}
		if c.MemoryProfile != tt.profile || c.GCHeapFloor != tt.floor {
			t.Errorf("%q: got memory_profile %q, gc_heap_floor %s; want %q, %s", tt.extra, c.MemoryProfile, c.GCHeapFloor, tt.profile, tt.floor)
		}
	}
}
