package config

import (
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Async routes and the job queue: a route's async section and the
// top-level jobs section. The defaults are package jobs' (Default*),
// written out here as this package imports no runtime package; a test in
// package app keeps them equal. Package jobs has no check of its own
// options, so this file checks all of them.

// Defaults of a route's async section and of the jobs section, as
// package jobs'.
const (
	defaultAsyncConcurrency    = 4
	defaultAsyncQueueDepth     = 1000
	defaultAsyncMaxAttempts    = 3
	defaultAsyncAttemptTimeout = 10 * time.Minute
	defaultAsyncBackoff        = time.Second
	defaultAsyncMaxBackoff     = time.Minute
	defaultAsyncResultLifetime = time.Hour
	defaultAsyncMaxResultSize  = 16 * mib
	defaultAsyncCredential     = "Authorization"
	defaultJobsPrefix          = "/_jobs/"
	defaultJobsDataDir         = "./data"
	defaultJobsStore           = "auto"
	defaultJobsVisibility      = 5 * time.Minute
)

// Modes of an async route.
const (
	AsyncPrefer = "prefer" // only requests sent with Prefer: respond-async
	AsyncAlways = "always" // every request the route takes
)

// Job stores.
const (
	JobsStoreAuto  = "auto"  // Redis with cache.shared, else bolt
	JobsStoreBolt  = "bolt"  // <data_dir>/jobs.db, this process only
	JobsStoreRedis = "redis" // the shared tier's Redis, every replica
)

// RouteAsync makes a proxied route asynchronous: a request it selects is
// queued durably and answered 202 Accepted with a Location under
// jobs.prefix, and a worker sends it upstream later, retrying what may be
// retried. Off when the section is absent.
type RouteAsync struct {
	// Mode is prefer (requests that send Prefer: respond-async) or
	// always (every request); required.
	Mode string `yaml:"mode" json:"mode"`
	// Concurrency is how many of the route's jobs run at once.
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// QueueDepth bounds the route's jobs queued or running; past it a
	// request gets 503.
	QueueDepth int `yaml:"queue_depth" json:"queue_depth"`
	// MaxAttempts is how many times a job is sent upstream at most.
	MaxAttempts int `yaml:"max_attempts" json:"max_attempts"`
	// AttemptTimeout bounds each attempt.
	AttemptTimeout Duration `yaml:"attempt_timeout" json:"attempt_timeout"`
	// Backoff is the first retry's wait, doubled for each retry after it
	// (with jitter) up to MaxBackoff.
	Backoff    Duration `yaml:"backoff" json:"backoff"`
	MaxBackoff Duration `yaml:"max_backoff" json:"max_backoff"`
	// RetryUnsafe retries methods that are not idempotent; otherwise only
	// idempotent methods and requests with an Idempotency-Key are.
	RetryUnsafe bool `yaml:"retry_unsafe" json:"retry_unsafe"`
	// ResultLifetime is how long a finished job and its result are kept;
	// after it the job answers 410 Gone.
	ResultLifetime Duration `yaml:"result_lifetime" json:"result_lifetime"`
	// MaxResultSize bounds a stored result body; a larger one fails the
	// job.
	MaxResultSize Size `yaml:"max_result_size" json:"max_result_size"`
	// Credentials name what identifies a job's owner.
	Credentials AsyncCredentials `yaml:"credentials" json:"credentials"`
	// Callback allows clients to name a URL notified when their job ends.
	Callback AsyncCallback `yaml:"callback" json:"callback"`
}

// AsyncCredentials is the request field whose value owns a job: only a
// request with the same value sees it. Give header or cookie; the
// default is the Authorization header.
type AsyncCredentials struct {
	Header string `yaml:"header" json:"header"`
	Cookie string `yaml:"cookie" json:"cookie"`
}

// AsyncCallback is where a job's end may be announced: a POST to the
// Callback-Url the client sent, when its host is allowed, signed with
// the secret.
type AsyncCallback struct {
	// AllowedHosts are the hosts a Callback-Url may name; none refuses
	// callbacks.
	AllowedHosts []string `yaml:"allowed_hosts" json:"allowed_hosts"`
	// SecretFile names a file holding the signing key (a trailing
	// newline is dropped); SecretEnv names an environment variable
	// holding it. One of them is required with AllowedHosts.
	SecretFile string `yaml:"secret_file" json:"secret_file"`
	SecretEnv  string `yaml:"secret_env" json:"secret_env"`

	// Secret is read from SecretFile or SecretEnv when the config is
	// loaded. It has no name in the file nor in the effective config,
	// and prints as REDACTED.
	Secret Secret `yaml:"-" json:"-"`
}

// Jobs is the job queue of the async routes: where it answers and where
// it keeps its jobs. It is opened only when a route is async.
type Jobs struct {
	// Prefix is where jobs are answered for (status, result, cancel),
	// before routing: GET <prefix><id>.
	Prefix string `yaml:"prefix" json:"prefix"`
	// DataDir holds the embedded store's file, jobs.db; it is created
	// if missing.
	DataDir string `yaml:"data_dir" json:"data_dir"`
	// Store is auto (Redis with cache.shared, so every replica sees
	// every job; else bolt), bolt or redis.
	Store string `yaml:"store" json:"store"`
	// Visibility is how long a running job may go without its worker
	// being heard of (a live worker renews it) before another worker
	// takes it: how soon a job whose replica died runs again.
	Visibility Duration `yaml:"visibility" json:"visibility"`
}

// Async reports whether a route of c is async.
func (c *Config) Async() bool {
	for _, r := range c.Routes {
		if r.Async != nil {
			return true
		}
	}
	return false
}

// JobsStore is the store the job queue uses: bolt or redis, auto
// resolved.
func (c *Config) JobsStore() string {
	if c.Jobs.Store == JobsStoreAuto {
		if c.Cache.Shared != nil {
			return JobsStoreRedis
		}
		return JobsStoreBolt
	}
	return c.Jobs.Store
}

// jobsDefaults fills in the jobs section and each async section.
func jobsDefaults(c *Config, d *decoder) {
	if c.Jobs.Prefix == "" {
		c.Jobs.Prefix = defaultJobsPrefix
	}
	if c.Jobs.DataDir == "" {
		c.Jobs.DataDir = defaultJobsDataDir
	}
	if c.Jobs.Store == "" {
		c.Jobs.Store = defaultJobsStore
	}
	if !d.set["jobs.visibility"] {
		c.Jobs.Visibility = Duration(defaultJobsVisibility)
	}
	for i := range c.Routes {
		a := c.Routes[i].Async
		if a == nil {
			continue
		}
		p := indexPath("routes", i) + ".async."
		num := func(v *int, name string, def int) {
			if !d.set[p+name] {
				*v = def
			}
		}
		dur := func(v *Duration, name string, def time.Duration) {
			if !d.set[p+name] {
				*v = Duration(def)
			}
		}
		num(&a.Concurrency, "concurrency", defaultAsyncConcurrency)
		num(&a.QueueDepth, "queue_depth", defaultAsyncQueueDepth)
		num(&a.MaxAttempts, "max_attempts", defaultAsyncMaxAttempts)
		dur(&a.AttemptTimeout, "attempt_timeout", defaultAsyncAttemptTimeout)
		dur(&a.Backoff, "backoff", defaultAsyncBackoff)
		dur(&a.MaxBackoff, "max_backoff", defaultAsyncMaxBackoff)
		dur(&a.ResultLifetime, "result_lifetime", defaultAsyncResultLifetime)
		if !d.set[p+"max_result_size"] {
			a.MaxResultSize = defaultAsyncMaxResultSize
		}
		if a.Credentials.Header == "" && a.Credentials.Cookie == "" {
			a.Credentials.Header = defaultAsyncCredential
		}
		if a.Callback.AllowedHosts == nil {
			a.Callback.AllowedHosts = []string{}
		}
	}
}

// validateJobs checks the jobs section, async or not, and each async
// section, and reads the callback secrets.
func validateJobs(c *Config, d *decoder) {
	j := c.Jobs
	switch {
	case !strings.HasPrefix(j.Prefix, "/") || !strings.HasSuffix(j.Prefix, "/") || len(j.Prefix) < 2:
		d.report("jobs.prefix", "%q must start and end with \"/\" and name a path below the root, e.g. /_jobs/", j.Prefix)
	case strings.ContainsAny(j.Prefix, "?#{}"):
		d.report("jobs.prefix", "%q: a path prefix cannot hold \"?\", \"#\", \"{\" or \"}\"", j.Prefix)
	case jobsCollide(j.Prefix, c.Batch.Path):
		where := "the default"
		if d.set["batch.path"] {
			where = "line " + strconv.Itoa(d.line("batch.path"))
		}
		d.report("jobs.prefix", "%q collides with batch.path %q (%s); the two are served before routing and need paths apart", j.Prefix, c.Batch.Path, where)
	}
	if j.Visibility <= 0 {
		d.report("jobs.visibility", "must be positive")
	}
	if oneOf(d, "jobs.store", j.Store, JobsStoreAuto, JobsStoreBolt, JobsStoreRedis) && j.Store == JobsStoreRedis && c.Cache.Shared == nil {
		d.report("jobs.store", "redis keeps jobs in the shared tier's Redis; it needs cache.shared")
	}
	async := c.Async()
	for i := range c.Routes {
		r := &c.Routes[i]
		p := indexPath("routes", i)
		if async && r.Path != "/" && strings.HasPrefix(r.Path+"/", j.Prefix) {
			d.report(p+".path", "%q is under jobs.prefix %q, which is served before routing; this route would never match", r.Path, j.Prefix)
		}
		if r.Async != nil {
			validateAsync(c, d, p, r)
		}
	}
}

// jobsCollide reports whether the jobs prefix and the batch path could
// take each other's requests.
func jobsCollide(prefix, batchPath string) bool {
	b := strings.TrimSuffix(batchPath, "/")
	return strings.HasPrefix(b+"/", prefix) || strings.HasPrefix(prefix, b+"/")
}

// validateAsync checks route r's async section (at path p).
func validateAsync(c *Config, d *decoder, p string, r *Route) {
	a := r.Async
	ap := p + ".async"
	switch {
	case a.Mode == "":
		d.report(ap+".mode", "missing (want %s or %s)", AsyncPrefer, AsyncAlways)
	default:
		oneOf(d, ap+".mode", a.Mode, AsyncPrefer, AsyncAlways)
	}
	switch {
	case r.Composite != nil:
		d.report(ap, "a composite route cannot be async: only a proxied route's request can be queued and sent upstream later")
	case r.WebSocket.MaxConnections > 0:
		d.report(ap, "a route for WebSocket tunnels (websocket.max_connections at line %d) cannot be async: a tunnel cannot wait in a queue", d.line(p+".websocket.max_connections"))
	}
	for _, n := range []struct {
		name string
		v    int
		why  string
	}{
		{"concurrency", a.Concurrency, "that many of the route's jobs run at once"},
		{"queue_depth", a.QueueDepth, "that many jobs may be queued or running"},
		{"max_attempts", a.MaxAttempts, "a job is sent upstream at most that many times"},
	} {
		if n.v < 1 {
			d.report(ap+"."+n.name, "%d: must be at least 1 (%s)", n.v, n.why)
		}
	}
	for _, t := range []struct {
		name string
		v    Duration
		why  string
	}{
		{"attempt_timeout", a.AttemptTimeout, "each attempt is bounded by it"},
		{"backoff", a.Backoff, "the first retry waits this long"},
		{"max_backoff", a.MaxBackoff, "retries wait at most this long"},
		{"result_lifetime", a.ResultLifetime, "a finished job is kept this long"},
	} {
		if t.v <= 0 {
			d.report(ap+"."+t.name, "%s: must be positive (%s)", t.v, t.why)
		}
	}
	if a.Backoff > 0 && a.MaxBackoff > 0 && a.MaxBackoff < a.Backoff {
		d.report(ap+".max_backoff", "%s is shorter than backoff %s (line %d)", a.MaxBackoff, a.Backoff, d.line(ap+".backoff"))
	}
	if a.MaxResultSize <= 0 {
		d.report(ap+".max_result_size", "must be positive (a larger result fails the job)")
	}

	cp := ap + ".credentials"
	switch cr := a.Credentials; {
	case cr.Header != "" && cr.Cookie != "":
		d.report(cp+".cookie", "give header or cookie, not both (header at line %d)", d.line(cp+".header"))
	case cr.Header != "" && !httpguts.ValidHeaderFieldName(cr.Header):
		d.report(cp+".header", "%q is not a header name", cr.Header)
	case cr.Cookie != "" && !isCookieName(cr.Cookie):
		d.report(cp+".cookie", "%q is not a cookie name", cr.Cookie)
	}

	bp := ap + ".callback"
	cb := &a.Callback
	for k, h := range cb.AllowedHosts {
		h = strings.ToLower(h)
		cb.AllowedHosts[k] = h
		if strings.Contains(h, "*") {
			d.report(indexPath(bp+".allowed_hosts", k), "%q: name each host a callback may go to; wildcards are not allowed", h)
		} else if err := checkHost(h); err != nil {
			d.report(indexPath(bp+".allowed_hosts", k), "%v", err)
		}
	}
	hasSecret := cb.SecretFile != "" || cb.SecretEnv != ""
	switch {
	case len(cb.AllowedHosts) > 0 && !hasSecret:
		d.report(bp+".secret_file", "missing: callbacks are signed; give secret_file or secret_env with allowed_hosts")
	case len(cb.AllowedHosts) == 0 && hasSecret:
		d.report(bp+".allowed_hosts", "missing: a secret with no allowed host signs nothing (name the hosts callbacks may go to)")
	}
	cb.Secret = readSecret(d, bp+".secret_file", bp+".secret_env", cb.SecretFile, cb.SecretEnv)
}

// isCookieName reports whether s is a cookie name (an RFC 6265 token).
func isCookieName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// readSecret reads a secret from the file or environment variable the
// fields fp and ep name; "" when there is none or it cannot be read
// (reported).
func readSecret(d *decoder, fp, ep, file, env string) Secret {
	switch {
	case file != "" && env != "":
		d.report(ep, "give %s or %s, not both (%s at line %d)", lastName(fp), lastName(ep), lastName(fp), d.line(fp))
		return ""
	case file != "":
		if !checkFile(d, fp, file) {
			return ""
		}
		b, err := os.ReadFile(file)
		if err != nil {
			d.report(fp, "%v", err)
			return ""
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if s == "" {
			d.report(fp, "%q is empty", file)
		}
		return Secret(s)
	case env != "":
		if !isVarName(env) {
			d.report(ep, "%q is not an environment variable name", env)
			return ""
		}
		s, ok := os.LookupEnv(env)
		switch {
		case !ok:
			d.report(ep, "environment variable %s is not set", env)
		case s == "":
			d.report(ep, "environment variable %s is empty", env)
		}
		return Secret(s)
	}
	return ""
}

// lastName is the last field name of path.
func lastName(path string) string {
	return path[strings.LastIndexByte(path, '.')+1:]
}
