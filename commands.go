package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gateway/app"
	"gateway/config"
	"gateway/demo"
)

// cmdProxy serves one route to one upstream from flags alone, like
// `caddy reverse-proxy`. It goes through the same config parser as a
// file, so defaults and validation are the same.
func cmdProxy(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve clients on")
	to := fs.String("to", "", "upstream URL; several, comma-separated, are balanced; without a scheme, http:// is assumed (127.0.0.1:3000)")
	protocol := fs.String("protocol", "auto", "upstream protocol: http1, h2, h2c or auto")
	h2c := fs.Bool("h2c", true, "also accept HTTP/2 without TLS (prior knowledge)")
	adminAddr := fs.String("admin", "127.0.0.1:9090", `admin listener address, or "off"`)
	cacheSize := fs.String("cache-size", "64MiB", "memory for cached responses (RFC 9111 rules decide what is stored: a response with only a\nLast-Modified is fresh for 10% of its age, at most 24h; a config file's cache.heuristic_max: 0 turns that off)")
	noCache := fs.Bool("no-cache", false, "do not cache; pass every request through")
	noCompress := fs.Bool("no-compress", false, "do not compress responses (gzip, br, zstd)")
	batchOn := fs.Bool("batch", false, "serve the batching endpoint, POST /_batch, for the route")
	accessLog := fs.String("access-log", "stdout", `access log: "stdout", "stderr", "off" or a file path`)
	logFormat := fs.String("log-format", "text", `access log format: "text" (one short line per request) or "json"`)
	async := fs.String("async", "", "make the route async: a request is queued durably and answered 202 Accepted with Location: /_jobs/ID\nto poll for the result (docs/async.md); \"prefer\" only for requests sent with Prefer: respond-async,\n\"always\" for every request")
	dataDir := fs.String("data-dir", "./data", "with --async: the directory of the job store, jobs.db (created if missing; with --redis the jobs\ngo to Redis instead)")
	profile := fs.String("profile", config.MemorySidecar, "what the process favours when memory and CPU trade: \"sidecar\" (a small resident set: Go's GC pacing,\nidle memory returned early) or \"edge\" (less CPU per request: the heap grows 64 MiB between collections);\nthe memory_profile of a config file, where edge is the default")
	var redis listFlag
	fs.Var(&redis, "redis", "a shared cache tier on Redis under the memory one, for several gateways to share:\nredis://HOST:PORT (rediss:// for TLS); repeat it or separate with commas for a Sentinel's or Cluster's nodes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkLogFormat(fs, *logFormat); err != nil {
		return err
	}
	if len(redis) > 0 && *noCache {
		fmt.Fprintln(stderr, "proxy: --redis is a tier of the cache; it cannot go with --no-cache")
		fs.Usage()
		return errUsage
	}
	dataDirSet := false
	fs.Visit(func(f *flag.Flag) { dataDirSet = dataDirSet || f.Name == "data-dir" })
	switch {
	case *async != "" && *async != "prefer" && *async != "always":
		fmt.Fprintf(stderr, "proxy: invalid value %q for flag --async: want prefer or always\n", *async)
		fs.Usage()
		return errUsage
	case dataDirSet && *async == "":
		fmt.Fprintln(stderr, "proxy: --data-dir is where async jobs are kept; it needs --async")
		fs.Usage()
		return errUsage
	}
	if *profile != config.MemorySidecar && *profile != config.MemoryEdge {
		fmt.Fprintf(stderr, "proxy: invalid value %q for flag --profile: want sidecar or edge\n", *profile)
		fs.Usage()
		return errUsage
	}
	if *to == "" {
		fmt.Fprintln(stderr, "proxy: --to URL is required")
		fs.Usage()
		return errUsage
	}
	fields := flagFields{}
	fields.add("listeners[0]", "--listen", *listen, *listen)
	fields.add("listeners[0].h2c", "--h2c", strconv.FormatBool(*h2c), strconv.FormatBool(*h2c))
	fields.add("admin", "--admin", *adminAddr, *adminAddr)
	fields.add("upstreams.upstream", "--to", *to, *to)
	fields.add("upstreams.upstream.protocol", "--protocol", *protocol, *protocol)
	fields.add("cache", "--cache-size", *cacheSize, *cacheSize)
	fields.add("access_log", "--access-log", *accessLog, *accessLog)
	fields.add("memory_profile", "--profile", *profile, *profile)
	var targets []string
	for i, typed := range strings.Split(*to, ",") {
		typed = strings.TrimSpace(typed)
		t := typed
		if !strings.Contains(t, "://") {
			t = "http://" + t
		}
		fields.add(fmt.Sprintf("upstreams.upstream.targets[%d]", i), "--to", typed, t)
		targets = append(targets, yamlString(t))
	}
	yaml := fmt.Sprintf(`memory_profile: %s
listeners:
  - address: %s
    h2c: %t
admin:
  address: %s
upstreams:
  upstream:
    targets: [%s]
    protocol: %s
cache:
  max_size: %s
batch:
  enabled: %t
routes:
  - name: proxy
    path: /
    upstream: upstream
    batchable: %t
    cache:
      enabled: %t
    compress:
      enabled: %t
`, yamlString(*profile), yamlString(*listen), *h2c, yamlString(*adminAddr), strings.Join(targets, ", "), yamlString(*protocol), yamlString(*cacheSize), *batchOn, *batchOn, !*noCache, !*noCompress)
	yaml += accessLogYAML(*accessLog, *logFormat)
	if *async != "" {
		fields.add("routes[0].async", "--async", *async, *async)
		fields.add("jobs", "--data-dir", *dataDir, *dataDir)
		// The route is the last key of its entry, and jobs a section of
		// its own: both append.
		yaml = strings.Replace(yaml, "    compress:\n      enabled: "+strconv.FormatBool(!*noCompress)+"\n",
			"    compress:\n      enabled: "+strconv.FormatBool(!*noCompress)+"\n    async:\n      mode: "+yamlString(*async)+"\n", 1)
		yaml += "jobs:\n  data_dir: " + yamlString(*dataDir) + "\n"
		// Made here, so that a directory that cannot be made names the
		// flag rather than the generated config's field.
		if len(redis) == 0 {
			if err := os.MkdirAll(*dataDir, 0o700); err != nil {
				return fmt.Errorf("--data-dir %q: cannot create it: %w", *dataDir, err)
			}
		}
	}
	if len(redis) > 0 {
		fields.add("cache.shared", "--redis", redis.String(), redis.String())
		var addrs []string
		for i, a := range redis {
			fields.add(fmt.Sprintf("cache.shared.addresses[%d]", i), "--redis", a, a)
			addrs = append(addrs, yamlString(a))
		}
		// cache is the last section of its level but access_log: a
		// second cache key would be a duplicate, so shared goes in by
		// replacing the cache section's one line.
		yaml = strings.Replace(yaml, "cache:\n  max_size: "+yamlString(*cacheSize)+"\n",
			"cache:\n  max_size: "+yamlString(*cacheSize)+"\n  shared:\n    addresses: ["+strings.Join(addrs, ", ")+"]\n", 1)
	}
	cfg, err := app.Parse("proxy flags", []byte(yaml))
	if err != nil {
		return fields.explain("proxy", err)
	}
	return fields.explain("proxy", runConfig(cfg, stdout, stderr, nil))
}

// listFlag is a flag that may be repeated, each value a comma-separated
// list: --redis a --redis b,c is [a b c].
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// accessLogYAML is the access_log section for the --access-log and
// --log-format flags.
func accessLogYAML(flag, format string) string {
	if flag == "off" {
		return "access_log:\n  enabled: false\n"
	}
	return "access_log:\n  output: " + yamlString(flag) + "\n  format: " + yamlString(format) + "\n"
}

// checkLogFormat reports a --log-format other than text or json as a
// usage error. proxy and demo default to text, a fixed default (not one
// that depends on whether stdout is a terminal); a config file's
// access_log.format defaults to json.
func checkLogFormat(fs *flag.FlagSet, format string) error {
	if format == "text" || format == "json" {
		return nil
	}
	fmt.Fprintf(fs.Output(), "invalid value %q for flag -log-format: want text or json\n", format)
	fs.Usage()
	return errUsage
}

// yamlString quotes a flag's value for the generated config. The config
// expands ${VAR} and $$; a flag is taken as typed, so each $ is doubled.
func yamlString(s string) string {
	return strconv.Quote(strings.ReplaceAll(s, "$", "$$"))
}

// cmdDemo runs two instances of the sample backend on loopback and the
// gateway in front of them, and prints curl lines to try.
func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address the gateway serves on")
	adminAddr := fs.String("admin", "127.0.0.1:9090", "admin listener address")
	accessLog := fs.String("access-log", "stdout", `access log: "stdout", "stderr", "off" or a file path`)
	logFormat := fs.String("log-format", "text", `access log format: "text" (one short line per request) or "json"`)
	dataDir := fs.String("data-dir", "", "the directory of the async route's job store; default: a temporary one, removed on exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkLogFormat(fs, *logFormat); err != nil {
		return err
	}
	dataDirGiven := *dataDir != ""
	if !dataDirGiven {
		// The demo needs nothing of the machine: its jobs live as long
		// as it does.
		dir, err := os.MkdirTemp("", "gateway-demo-jobs-")
		if err != nil {
			return fmt.Errorf("demo: a directory for the jobs: %w", err)
		}
		defer os.RemoveAll(dir)
		*dataDir = dir
	}
	var backends []string
	for _, name := range []string{"a", "b"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("demo backend: %w", err)
		}
		srv := &http.Server{Handler: demo.Backend(name), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(stderr, "demo backend:", err)
			}
		}()
		defer srv.Close()
		backends = append(backends, strconv.Quote("http://"+ln.Addr().String()))
	}
	yaml := fmt.Sprintf(`shutdown_grace: 5s
listeners:
  - address: %s
    h2c: true
admin:
  address: %s
batch:
  enabled: true
upstreams:
  sample:
    targets: [%s]
    balance: round_robin
    health_check:
      path: /healthz
      interval: 5s
routes:
  - name: api
    path: /api
    strip_prefix: true
    upstream: sample
    timeout: 10s
    max_body_size: 1MiB
    batchable: true
    cache:
      enabled: true
      stale_while_revalidate: 10s
      stale_if_error: 1m
    compress:
      enabled: true
  - name: reports
    path: /reports/
    upstream: sample
    timeout: 30s
    async:
      mode: always
      max_attempts: 2
      attempt_timeout: 30s
      result_lifetime: 10m
jobs:
  data_dir: %s
`, yamlString(*listen), yamlString(*adminAddr), strings.Join(backends, ", "), yamlString(*dataDir))
	yaml += accessLogYAML(*accessLog, *logFormat)
	fields := flagFields{}
	fields.add("listeners[0]", "--listen", *listen, *listen)
	fields.add("admin", "--admin", *adminAddr, *adminAddr)
	fields.add("access_log", "--access-log", *accessLog, *accessLog)
	if dataDirGiven {
		fields.add("jobs", "--data-dir", *dataDir, *dataDir)
	}
	cfg, err := app.Parse("demo", []byte(yaml))
	if err != nil {
		return fields.explain("demo", err)
	}
	return fields.explain("demo", runConfig(cfg, stdout, stderr, func(a *app.App) {
		adm := ""
		if ad := a.AdminAddr(); ad != nil {
			adm = ad.String()
		}
		// On stderr with the gateway's own log: stdout is the access
		// log's alone.
		printDemo(stderr, a.Addrs()[0].String(), adm)
	}))
}

// printDemo prints the lines to try against the demo at gw, and those of
// its admin listener at adm unless that is "" (--admin off).
func printDemo(w io.Writer, gw, adm string) {
	base := (&url.URL{Scheme: "http", Host: gw}).String()
	fmt.Fprintf(w, `
The gateway is serving on %[1]s, in front of two sample backends.
Try, in another terminal:

  # a JSON answer, balanced round-robin over instances a and b
  curl -s %[1]s/api/hello
  # the same over HTTP/2 without TLS (h2c)
  curl -s --http2-prior-knowledge %[1]s/api/hello
  # what the backend receives: X-Forwarded-For/-Host/-Proto and Via set by the gateway
  curl -s -H 'X-Forwarded-For: 6.6.6.6' %[1]s/api/headers
  # server-sent events, streamed event by event
  curl -sN %[1]s/api/events
  # a slow backend and the route's 10s timeout: 504
  curl -si %[1]s/api/slow?ms=11000 | head -1
  # a body over the route's 1 MiB limit: 413
  head -c 2000000 /dev/zero | curl -si --data-binary @- %[1]s/api/headers | head -1
  # no route: 404
  curl -si %[1]s/other | head -1

The /api route caches (RFC 9111). /api/cached takes 300 ms at the backend
and is fresh for 30 s; watch Cache-Status and Age change:
  curl -si '%[1]s/api/cached?ms=300' | grep -iE '^(cache-status|age|etag)'
  curl -si '%[1]s/api/cached?ms=300' | grep -iE '^(cache-status|age|etag)'
  # a conditional request answered by the cache: 304
  curl -si -H 'If-None-Match: *' '%[1]s/api/cached?ms=300' | head -1
  # the client may demand a fresh answer: fwd=request
  curl -si -H 'Cache-Control: no-cache' '%[1]s/api/cached?ms=300' | grep -i cache-status
  # no-store answers pass through and are never stored
  curl -si %[1]s/api/hello | grep -i cache-status
  # compressed for clients that accept it; a cached object is encoded once
  curl -s -H 'Accept-Encoding: br' '%[1]s/api/cached?ms=300' -o /dev/null -w '%%{size_download} bytes\n' -D - | grep -iE '^(content-encoding|vary)|bytes'
  # several requests in one round trip, run side by side in the gateway
  # (through the route and its cache), answered in order
  curl -s %[1]s/_batch -H 'Content-Type: application/json' -d '{"requests": [{"id": "h", "path": "/api/hello"}, {"id": "c", "path": "/api/cached?ms=300"}]}'

The /reports/ route is async (docs/async.md): a report takes the backend 3 s,
so the gateway stores the request, answers 202 Accepted at once with the
job's Location, and runs it behind; poll that Location for the result:
  curl -i -X POST %[1]s/reports/q1
  # then, with the id from the Location header: 200 with the job's status
  # while it runs, then 303 to its result, which -L follows
  curl -iL %[1]s/_jobs/<id>
`, base)
	if adm != "" {
		admin := (&url.URL{Scheme: "http", Host: adm}).String()
		fmt.Fprintf(w, `
Admin (loopback only):
  # the live dashboard: open it in a browser while the curl lines above run
  %[2]s/ui/
  curl -s %[2]s/readyz
  curl -s %[2]s/upstreams
  curl -s %[2]s/config
  curl -s %[2]s/cache/stats
  curl -s %[2]s/compress/stats
  curl -s %[2]s/jobs/stats
  # Prometheus metrics: requests by route, status and cache outcome, latencies, upstreams
  curl -s %[2]s/metrics | grep ^gateway_
  # purge what the backend tagged "demo" (Surrogate-Key), or one URL
  curl -s -X POST '%[2]s/cache/purge?tag=demo'
  curl -s -X POST '%[2]s/cache/purge?url=%[1]s/api/cached?ms=300'
`, base, admin)
	}
	fmt.Fprint(w, `
Stop with Ctrl-C: in-flight requests finish first.
`)
}
