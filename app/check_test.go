package app

import (
	"errors"
	"strings"
	"testing"

	"gateway/config"
)

// These cases were package config's own (its TestParseErrors) until the
// checks they exercise moved to the packages whose options they are;
// they keep their inputs and their expected messages, file, line and
// field, byte for byte, now through Parse and Check.

type badCase struct {
	name string
	in   string
	want []string // substrings of the error, each naming file:line: field
	n    int      // exact number of problems, when not 0
}

// withBreaker is minimal with a circuit_breaker section on upstream app
// (its lines start at 6).
func withBreaker(body string) string {
	return strings.Replace(minimal, "    targets: [http://127.0.0.1:9000]\n", "    targets: [http://127.0.0.1:9000]\n    circuit_breaker:\n"+body, 1)
}

var checkBadCases = []badCase{
	// Negative counts are the packages' to refuse, in the words the file
	// used for them; an explicit 0 stays the file's (config's tests).
	{name: "negative batch counts", in: minimal + "batch:\n  max_items: -2\n  concurrency: -1\n",
		want: []string{
			"t.yaml:9: batch.max_items: -2: must be at least 1",
			"t.yaml:10: batch.concurrency: -1: must be at least 1",
		}, n: 2},
	// That the rate is positive is package limit's to check, reported
	// under the name the file gave it.
	{name: "rate_limit zero rate", in: minimal + "    rate_limit:\n      rate: 0/s\n",
		want: []string{`t.yaml:9: routes[0].rate_limit.rate: must be positive`}, n: 1},
	{name: "rate_limit zero requests_per_second", in: minimal + "    rate_limit:\n      requests_per_second: 0\n",
		want: []string{`t.yaml:9: routes[0].rate_limit.requests_per_second: must be positive`}, n: 1},
	{name: "negative max_keys", in: minimal + "    rate_limit:\n      rate: 10/s\n      max_keys: -5\n",
		want: []string{"t.yaml:10: routes[0].rate_limit.max_keys: -5: must be at least 1"}, n: 1},
	{name: "bad hash_on", in: strings.Replace(minimal, "    targets:", "    balance: hash\n    hash_on: query:x\n    targets:", 1),
		want: []string{`t.yaml:6: upstreams.app.hash_on: invalid value "query:x" (want path, header:NAME or cookie:NAME)`}},
	{name: "bad hash header", in: strings.Replace(minimal, "    targets:", "    balance: hash\n    hash_on: \"header:X User\"\n    targets:", 1),
		want: []string{`t.yaml:6: upstreams.app.hash_on: invalid header name "X User" in hash_on "header:X User"`}},
	{name: "bad hash cookie", in: strings.Replace(minimal, "    targets:", "    balance: hash\n    hash_on: \"cookie:\"\n    targets:", 1),
		want: []string{`t.yaml:6: upstreams.app.hash_on: invalid cookie name "" in hash_on "cookie:"`}},
	{name: "health check path", in: strings.Replace(minimal, "    targets:", "    health_check:\n      path: healthz\n      interval: 0s\n    targets:", 1),
		want: []string{
			`t.yaml:6: upstreams.app.health_check.path: "healthz" must start with "/"`,
			"t.yaml:7: upstreams.app.health_check.interval: must be positive when path enables active checks",
		}},
	{name: "circuit_breaker bad values", in: withBreaker("      failure_ratio: 1.5\n      min_requests: 0\n      window: 0s\n      open_timeout: 0s\n      half_open_requests: 0\n"),
		want: []string{
			`t.yaml:7: upstreams.app.circuit_breaker.failure_ratio: 1.5: want a fraction of the requests, more than 0 and at most 1`,
			`t.yaml:8: upstreams.app.circuit_breaker.min_requests: 0: must be at least 1 and at most 4294967295`,
			`t.yaml:9: upstreams.app.circuit_breaker.window: must be positive`,
			`t.yaml:10: upstreams.app.circuit_breaker.open_timeout: must be positive`,
			`t.yaml:11: upstreams.app.circuit_breaker.half_open_requests: 0: must be at least 1 and at most 4294967295`,
		}, n: 5},
	{name: "duplicate routes", in: minimal + "    hosts: [a.com, B.com]\n    methods: [get]\n  - upstream: app\n    hosts: [b.com, a.com]\n    methods: [GET]\n",
		want: []string{"t.yaml:10: routes[1]: same hosts, path and methods as routes[0] (line 7), so it can never match"}},
	{name: "duplicate default routes", in: minimal + "  - upstream: app\n    path: /\n",
		want: []string{"t.yaml:8: routes[1]: same hosts, path and methods as routes[0] (line 7)"}},
	{name: "max_object_size over max_size", in: minimal + "cache:\n  max_size: 1MiB\n  max_object_size: 2MiB\n",
		want: []string{"t.yaml:10: cache.max_object_size: 2MiB is larger than cache.max_size 1MiB (line 9); want at most the whole cache"}, n: 1},
	{name: "max_object_size over default max_size", in: minimal + "cache:\n  max_object_size: 1GiB\n",
		want: []string{"t.yaml:9: cache.max_object_size: 1GiB is larger than cache.max_size 256MiB (the default)"}, n: 1},
	{name: "max_size zero with a caching route", in: minimal + "    cache: {enabled: true}\n  - upstream: app\n    path: /b\n    cache:\n      enabled: true\ncache:\n  max_size: 0\n",
		want: []string{"t.yaml:14: cache.max_size: must be positive when a route caches (routes[0].cache.enabled at line 8)"}, n: 1},
	{name: "bad header name", in: minimal + "    cache:\n      key_headers:\n        - Accept-Language\n        - \"X User\"\n",
		want: []string{`t.yaml:11: routes[0].cache.key_headers[1]: invalid header name "X User"`}, n: 1},
	{name: "duplicate header name", in: minimal + "    cache:\n      key_headers: [Accept, x-a, X-B, ACCEPT]\n",
		want: []string{`t.yaml:9: routes[0].cache.key_headers[3]: duplicate header "ACCEPT"`}, n: 1},
	{name: "bad ignore params", in: minimal + "    cache:\n      ignore_params:\n        - utm_*\n        - a*b\n  - upstream: app\n    path: /b\n    cache:\n      ignore_params: [\"*\"]\n  - upstream: app\n    path: /c\n    cache:\n      ignore_params: [a, b, \"\"]\n",
		want: []string{
			`t.yaml:11: routes[0].cache.ignore_params[1]: ignored parameter "a*b": '*' is only allowed at the end`,
			`t.yaml:15: routes[1].cache.ignore_params[0]: ignored parameter "*" would ignore the whole query`,
			`t.yaml:19: routes[2].cache.ignore_params[2]: empty ignored parameter name`,
		}, n: 3},
	{name: "duplicate ignore param", in: minimal + "    cache:\n      ignore_params: [utm_*, gclid, fbclid, utm_*]\n",
		want: []string{`t.yaml:9: routes[0].cache.ignore_params[3]: duplicate ignored parameter "utm_*"`}, n: 1},
	{name: "bad cookie names", in: minimal + "    cache:\n      enabled: true\n      key_cookies: [session, \"a b\"]\n  - upstream: app\n    path: /b\n    cache:\n      key_cookies: [SID, sid]\n",
		want: []string{
			`t.yaml:10: routes[0].cache.key_cookies[1]: invalid cookie name "a b"`,
			`t.yaml:14: routes[1].cache.key_cookies[1]: duplicate cookie "sid"`,
		}, n: 2},
	{name: "cache key lists each reported", in: minimal + "    cache:\n      ignore_params: [\"\"]\n      key_headers: [\"a:b\"]\n      key_cookies: [\"\"]\n",
		want: []string{
			"t.yaml:9: routes[0].cache.ignore_params[0]: empty ignored parameter name",
			`t.yaml:10: routes[0].cache.key_headers[0]: invalid header name "a:b"`,
			`t.yaml:11: routes[0].cache.key_cookies[0]: invalid cookie name ""`,
		}, n: 3},
	{name: "cache key from empty variable", in: minimal + "    cache:\n      key_headers: [\"${GATEWAY_TEST_SURELY_UNSET:-}\"]\n",
		want: []string{`t.yaml:9: routes[0].cache.key_headers[0]: invalid header name ""`}, n: 1},
	{name: "compress bad encodings", in: minimal + "    compress:\n      enabled: true\n      encodings:\n        - gzip\n        - deflate\n        - identity\n        - GZIP\n",
		want: []string{
			`t.yaml:12: routes[0].compress.encodings[1]: unknown coding "deflate" (want br, zstd or gzip)`,
			`t.yaml:13: routes[0].compress.encodings[2]: identity is always available and is not offered (want br, zstd or gzip)`,
			`t.yaml:14: routes[0].compress.encodings[3]: duplicate coding "GZIP"`,
		}, n: 3},
	{name: "compress bad levels", in: minimal + "    compress:\n      stream_level: fast\n      cached_level: 11\n",
		want: []string{
			`t.yaml:9: routes[0].compress.stream_level: invalid value "fast" (want fastest, default or best)`,
			`t.yaml:10: routes[0].compress.cached_level: invalid value "11" (want fastest, default or best)`,
		}, n: 2},
	{name: "compress bad types", in: minimal + "    compress:\n      types: [text/*, \"*/*\", text, application/json, \"application/*json\", TEXT/*]\n  - upstream: app\n    path: /b\n    compress:\n      types:\n        - \"text/html; charset=utf-8\"\n",
		want: []string{
			`t.yaml:9: routes[0].compress.types[1]: type "*/*" would compress any type, images and archives too; list the types instead`,
			`t.yaml:9: routes[0].compress.types[2]: invalid type "text" (want type/subtype, type/* or type/*+suffix, e.g. application/json, text/*, application/*+json)`,
			`t.yaml:9: routes[0].compress.types[4]: invalid type "application/*json"`,
			`t.yaml:9: routes[0].compress.types[5]: duplicate type "TEXT/*"`,
			`t.yaml:14: routes[1].compress.types[0]: invalid type "text/html; charset=utf-8"`,
		}, n: 5},
	{name: "compress empty type from variable", in: minimal + "    compress:\n      types: [\"${GATEWAY_TEST_SURELY_UNSET:-}\"]\n",
		want: []string{`t.yaml:9: routes[0].compress.types[0]: invalid type ""`}, n: 1},
	{name: "batch bad values", in: minimal + `batch:
  path: x
  max_items: 0
  concurrency: -1
  max_body_size: 0
  max_response_size: 0
  inherit_headers: [Connection, "bad name", Accept-Encoding, X-Forwarded-For, Host, Cookie, cookie, Proxy-Authorization]
`, want: []string{
		`t.yaml:9: batch.path: "x" must start with "/"`,
		`t.yaml:10: batch.max_items: 0: must be at least 1`,
		`t.yaml:11: batch.concurrency: -1: must be at least 1`,
		`t.yaml:12: batch.max_body_size: must be positive`,
		`t.yaml:13: batch.max_response_size: must be positive`,
		`t.yaml:14: batch.inherit_headers[0]: Connection is hop-by-hop and cannot be inherited`,
		`t.yaml:14: batch.inherit_headers[1]: invalid header name "bad name"`,
		`t.yaml:14: batch.inherit_headers[2]: Accept-Encoding is never sent on sub-requests`,
		`t.yaml:14: batch.inherit_headers[3]: X-Forwarded-For is set by the gateway and cannot be inherited`,
		`t.yaml:14: batch.inherit_headers[4]: Host is set by the gateway and cannot be inherited`,
		`t.yaml:14: batch.inherit_headers[6]: duplicate header "cookie" (also batch.inherit_headers[5])`,
		`t.yaml:14: batch.inherit_headers[7]: Proxy-Authorization is hop-by-hop`,
	}, n: 12},
	{name: "batch path not clean", in: minimal + "batch:\n  path: /a/../_batch/\n",
		want: []string{`t.yaml:9: batch.path: "/a/../_batch/": want a clean path`}, n: 1},
	{name: "batch path with braces", in: minimal + "batch:\n  path: /b/{x}\n",
		want: []string{`t.yaml:9: batch.path: "/b/{x}": the batch path cannot hold "?", "#", "{" or "}"`}, n: 1},
	{name: "composite empty", in: minimal + "    composite: {}\n",
		want: []string{
			"t.yaml:7: routes[0].upstream: a composite route has no upstream (its parts are requests to other routes)",
			"t.yaml:8: routes[0].composite.parts: no parts (want at least one, e.g. - {key: profile, path: \"/users/{user}\"})",
		}, n: 2},
	{name: "composite problems", in: minimal + `  - path: /dash/{user}
    upstream: app
    strip_prefix: true
    methods: [GET, post]
    cache: {enabled: true}
    composite:
      on_error: ignore
      parts:
        - key: errors
          path: /users/{user}
        - key: a
          path: /orders?user={usr}
        - key: a
          path: users/{user}
        - key: b
        - path: /x
`, want: []string{
		"t.yaml:9: routes[1].upstream: a composite route has no upstream",
		"t.yaml:10: routes[1].strip_prefix: a composite route has no upstream to strip the prefix for",
		"t.yaml:11: routes[1].methods[1]: POST: a composite route answers GET and HEAD only",
		"t.yaml:12: routes[1].cache.enabled: a composite response is never stored; its parts are cached on their own routes",
		`t.yaml:14: routes[1].composite.on_error: invalid value "ignore" (want fail or omit)`,
		`t.yaml:16: routes[1].composite.parts[0].key: key "errors" is where failed parts are listed`,
		`t.yaml:19: routes[1].composite.parts[1].path: "/orders?user={usr}": unknown parameter {usr} (the route's path has {user})`,
		`t.yaml:20: routes[1].composite.parts[2].key: duplicate key "a" (also routes[1].composite.parts[1])`,
		`t.yaml:21: routes[1].composite.parts[2].path: "users/{user}" must start with "/"`,
		"t.yaml:22: routes[1].composite.parts[3].path: missing (want a path such as /users/{user})",
		"t.yaml:23: routes[1].composite.parts[4].key: missing key",
	}, n: 11},
	{name: "composite path patterns", in: minimal + "  - path: /dash/{user}x\n    composite:\n      parts: [{key: a, path: /a}]\n  - path: /d/{a}/{a}\n    composite:\n      parts: [{key: a, path: \"/a/{b}\"}]\n",
		want: []string{
			`t.yaml:8: routes[1].path: "/dash/{user}x": segment "{user}x": a parameter is a whole segment {name}, name of letters, digits and _`,
			`t.yaml:11: routes[2].path: "/d/{a}/{a}": parameter {a} used twice`,
		}, n: 2},
	{name: "composite shadows a route", in: minimal + "  - upstream: app\n    path: /dash\n  - path: /dash/{u}\n    composite:\n      parts: [{key: a, path: \"/a/{u}\"}]\n",
		want: []string{"t.yaml:10: routes[2]: same hosts, path and methods as routes[1] (line 8), so it can never match"}, n: 1},
	{name: "rate_limit bad burst and keys", in: minimal + "    rate_limit:\n      rate: 10/s\n      burst: 0\n      max_keys: 0\n",
		want: []string{
			`t.yaml:10: routes[0].rate_limit.burst: 0: must be at least 1`,
			`t.yaml:11: routes[0].rate_limit.max_keys: 0: must be at least 1`,
		}, n: 2},
	{name: "rate_limit bad key", in: minimal + "    rate_limit:\n      rate: 10/s\n      key: cookie:session\n",
		want: []string{`t.yaml:10: routes[0].rate_limit.key: invalid value "cookie:session" (want ip or header:NAME)`}, n: 1},
	{name: "rate_limit bad header name", in: minimal + "    rate_limit:\n      rate: 10/s\n      key: \"header:X Key\"\n",
		want: []string{`t.yaml:10: routes[0].rate_limit.key: invalid header name "X Key" in "header:X Key"`}, n: 1},
	{name: "concurrency negative", in: minimal + "    concurrency:\n      max_in_flight: -1\n      queue: -2\n      queue_timeout: -1s\n",
		want: []string{
			`t.yaml:9: routes[0].concurrency.max_in_flight: -1: must not be negative`,
			`t.yaml:10: routes[0].concurrency.queue: -2: must not be negative`,
			`t.yaml:11: routes[0].concurrency.queue_timeout: invalid duration "-1s": must not be negative`,
		}, n: 3},
	{name: "concurrency queue without max", in: minimal + "    concurrency:\n      queue: 10\n",
		want: []string{`t.yaml:9: routes[0].concurrency.queue: a queue needs max_in_flight`}, n: 1},
	{name: "concurrency queue without timeout", in: minimal + "    concurrency:\n      max_in_flight: 5\n      queue: 10\n      queue_timeout: 0s\n",
		want: []string{`t.yaml:11: routes[0].concurrency.queue_timeout: must be positive when queue is set`}, n: 1},
	{name: "bad balance", in: strings.Replace(minimal, "    targets:", "    balance: random\n    targets:", 1),
		want: []string{`t.yaml:5: upstreams.app.balance: invalid value "random" (want round_robin, least_requests or hash)`}},
	{name: "bad protocol", in: strings.Replace(minimal, "    targets:", "    protocol: http2\n    targets:", 1),
		want: []string{`t.yaml:5: upstreams.app.protocol: invalid value "http2" (want http1, h2, h2c or auto)`}},
	{name: "negative ints", in: strings.Replace(minimal, "    targets:", "    max_conns_per_target: -1\n    max_idle_per_target: -2\n    health_check:\n      max_fails: -3\n    targets:", 1),
		want: []string{
			"t.yaml:5: upstreams.app.max_conns_per_target: -1: must not be negative",
			"t.yaml:6: upstreams.app.max_idle_per_target: -2: must not be negative",
			"t.yaml:8: upstreams.app.health_check.max_fails: -3: must not be negative",
		}, n: 3},
	{name: "bad targets", in: strings.Replace(minimal, "targets: [http://127.0.0.1:9000]", `targets:
      - ftp://a
      - http://
      - http://a?x=1
      - http://a#f
      - http://u:p@a
      - http://a/base
      - http://a:99999
      - "http://a b"
      - http://a/`, 1),
		want: []string{
			`t.yaml:6: upstreams.app.targets[0]: "ftp://a": scheme must be http or https`,
			`t.yaml:7: upstreams.app.targets[1]: "http://": no host`,
			`t.yaml:8: upstreams.app.targets[2]: "http://a?x=1": a target cannot have a query`,
			`t.yaml:9: upstreams.app.targets[3]: "http://a#f": a target cannot have a fragment`,
			`t.yaml:10: upstreams.app.targets[4]: "http://u:p@a": user info is not supported in targets`,
			`t.yaml:11: upstreams.app.targets[5]: "http://a/base": a target cannot have a path; requests keep their own path`,
			`t.yaml:12: upstreams.app.targets[6]: "http://a:99999": port "99999" is not a number from 0 to 65535`,
			`t.yaml:13: upstreams.app.targets[7]: invalid URL "http://a b"`,
		}, n: 8},
	{name: "targets without a scheme", in: strings.Replace(minimal, "targets: [http://127.0.0.1:9000]", `targets:
      - 127.0.0.1:3000
      - backend:8080
      - example.com
      - "a b"`, 1),
		want: []string{
			`t.yaml:6: upstreams.app.targets[0]: "127.0.0.1:3000": no scheme (did you mean http://127.0.0.1:3000?)`,
			`t.yaml:7: upstreams.app.targets[1]: "backend:8080": no scheme (did you mean http://backend:8080?)`,
			`t.yaml:8: upstreams.app.targets[2]: "example.com": no scheme (did you mean http://example.com?)`,
			`t.yaml:9: upstreams.app.targets[3]: "a b": scheme must be http or https`,
		}, n: 4},
	{name: "h2 needs https", in: strings.Replace(minimal, "    targets: [http://127.0.0.1:9000]", "    protocol: h2\n    targets: [https://a, http://b]", 1),
		want: []string{`t.yaml:6: upstreams.app.targets[1]: "http://b": protocol h2 is HTTP/2 over TLS and needs an https target`}, n: 1},
	{name: "h2c needs http", in: strings.Replace(minimal, "    targets: [http://127.0.0.1:9000]", "    protocol: h2c\n    targets: [https://a, http://b]", 1),
		want: []string{`t.yaml:6: upstreams.app.targets[0]: "https://a": protocol h2c is HTTP/2 without TLS and needs an http target`}, n: 1},
	{name: "many problems", in: `listeners:
  - address: 127.0.0.1:8080
    adress: x
upstreams:
  app:
    targets: [ftp://x]
    balance: hash
routes:
  - upstream: nope
    timeout: 5x
log:
  level: loud
`, want: []string{
		`t.yaml:3: listeners[0].adress: unknown field (did you mean "address"?)` + "\n" +
			`t.yaml:5: upstreams.app.hash_on: missing; balance hash needs hash_on: path, header:NAME or cookie:NAME` + "\n" +
			`t.yaml:6: upstreams.app.targets[0]: "ftp://x": scheme must be http or https (want e.g. http://127.0.0.1:9000)` + "\n" +
			`t.yaml:9: routes[0].upstream: unknown upstream "nope" (defined: app)` + "\n" +
			`t.yaml:10: routes[0].timeout: invalid duration "5x" (want e.g. 250ms, 30s, 2m)` + "\n" +
			`t.yaml:12: log.level: invalid value "loud" (want debug, info, warn or error)`,
	}, n: 6},
	// A target that does not parse leaves the others, and the rest of
	// its upstream, to be checked: each reported at its own line.
	{name: "bad target with other upstream problems", in: strings.Replace(minimal, "    targets: [http://127.0.0.1:9000]", `    protocol: h2
    balance: random
    max_conns_per_target: -1
    targets:
      - "http://a b"
      - http://b
      - ftp://c
  other:
    protocol: http2
    health_check:
      max_fails: -3
    targets: ["http://a b"]`, 1),
		want: []string{
			`t.yaml:6: upstreams.app.balance: invalid value "random" (want round_robin, least_requests or hash)` + "\n" +
				`t.yaml:7: upstreams.app.max_conns_per_target: -1: must not be negative` + "\n" +
				`t.yaml:9: upstreams.app.targets[0]: invalid URL "http://a b": invalid character " " in host name` + "\n" +
				`t.yaml:10: upstreams.app.targets[1]: "http://b": protocol h2 is HTTP/2 over TLS and needs an https target (h2c is HTTP/2 without TLS)` + "\n" +
				`t.yaml:11: upstreams.app.targets[2]: "ftp://c": scheme must be http or https (want e.g. http://127.0.0.1:9000)` + "\n" +
				`t.yaml:13: upstreams.other.protocol: invalid value "http2" (want http1, h2, h2c or auto)` + "\n" +
				`t.yaml:15: upstreams.other.health_check.max_fails: -3: must not be negative` + "\n" +
				`t.yaml:16: upstreams.other.targets[0]: invalid URL "http://a b"`,
		}, n: 8},
	// One problem a target: the file's, when it has one.
	{name: "target refused by the file and the protocol", in: strings.Replace(minimal, "    targets: [http://127.0.0.1:9000]", "    protocol: h2\n    targets: [http://a/base, backend:8080, ftp://c]", 1),
		want: []string{
			`t.yaml:6: upstreams.app.targets[0]: "http://a/base": a target cannot have a path; requests keep their own path` + "\n" +
				`t.yaml:6: upstreams.app.targets[1]: "backend:8080": no scheme (did you mean http://backend:8080?)` + "\n" +
				`t.yaml:6: upstreams.app.targets[2]: "ftp://c": scheme must be http or https (want e.g. http://127.0.0.1:9000)`,
		}, n: 3},
}

func TestCheckErrors(t *testing.T) {
	for _, tc := range checkBadCases {
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
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %T; want config.Errors", err)
			}
			if tc.n != 0 && len(es) != tc.n {
				t.Errorf("got %d problems:\n%v\nwant %d", len(es), err, tc.n)
			}
			for i := 1; i < len(es); i++ {
				if es[i].Line != 0 && es[i].Line < es[i-1].Line {
					t.Errorf("got line %d after line %d; want problems sorted by line", es[i].Line, es[i-1].Line)
				}
			}
			// Each case has a problem that only Check finds: config
			// alone, which knows no package's options, misses it.
			_, alone := config.Parse("t.yaml", []byte(tc.in))
			missed := alone == nil
			for _, w := range tc.want {
				missed = missed || !strings.Contains(alone.Error(), w)
			}
			if !missed {
				t.Errorf("config.Parse alone reports every problem; want one found by Check only")
			}
		})
	}
}
