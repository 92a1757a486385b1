package config

import (
	"crypto/tls"
	"os"
	"strings"
	"time"
)

// The shared cache tier: cache.shared, a tier on Redis under the memory
// one. Its defaults are package redistier's (Config.WithDefaults),
// written out here as this package imports no runtime package; a test in
// package app keeps them equal. Addresses, mode and the rest of what
// redistier.Config.Validate checks are package redistier's to check (see
// app's Check); this file checks what only the file knows: the password
// source, the TLS files, and explicit zeros, which the package would
// take for its defaults.

// Defaults of cache.shared, as redistier's.
const (
	defaultSharedMode             = "auto"
	defaultSharedKeyPrefix        = "gw:"
	defaultSharedTimeout          = 10 * time.Millisecond
	defaultSharedWriteTimeout     = 250 * time.Millisecond
	defaultSharedDialTimeout      = time.Second
	defaultSharedMaxObjectSize    = 1 * mib
	defaultSharedWriteConcurrency = 4
	defaultSharedWriteQueue       = 1024
	defaultSharedPurgeBound       = time.Second
	defaultSharedLeaseTTL         = 2 * time.Second
	defaultSharedBreakerFailures  = 5
	defaultSharedBreakerCoolDown  = time.Second
)

// CacheShared is the shared cache tier on Redis.
type CacheShared struct {
	// Addresses are host:port, redis://host:port or rediss://host:port
	// (TLS) of the Redis servers, Sentinels or Cluster seed nodes.
	Addresses []string `yaml:"addresses" json:"addresses"`
	// Mode is auto, standalone, sentinel or cluster.
	Mode string `yaml:"mode" json:"mode"`
	// MasterName is the Sentinel master set's name (mode sentinel only).
	MasterName string `yaml:"master_name" json:"master_name"`
	// Username is the Redis ACL user; "" is the default user.
	Username string `yaml:"username" json:"username"`
	// PasswordFile names a file holding the password (a trailing newline
	// is dropped); PasswordEnv names an environment variable holding it.
	// Give one of them, or neither.
	PasswordFile string `yaml:"password_file" json:"password_file"`
	PasswordEnv  string `yaml:"password_env" json:"password_env"`
	// DB selects a database (standalone and Sentinel only).
	DB  int       `yaml:"db" json:"db"`
	TLS SharedTLS `yaml:"tls" json:"tls"`
	// KeyPrefix namespaces every key the tier writes.
	KeyPrefix string `yaml:"key_prefix" json:"key_prefix"`
	// Timeout bounds each Redis operation on a request's path; past it
	// the request goes on without the tier.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// WriteTimeout bounds each write, done after the response.
	WriteTimeout Duration `yaml:"write_timeout" json:"write_timeout"`
	// DialTimeout bounds connecting.
	DialTimeout Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// MaxObjectSize is the largest entry the tier takes; a larger one
	// stays in this process's memory only.
	MaxObjectSize Size `yaml:"max_object_size" json:"max_object_size"`
	// WriteConcurrency writes run at once, WriteQueue more may wait; a
	// write that finds the queue full is dropped.
	WriteConcurrency int `yaml:"write_concurrency" json:"write_concurrency"`
	WriteQueue       int `yaml:"write_queue" json:"write_queue"`
	// PurgeBound is how late a purge may take effect on a process that
	// missed its notification.
	PurgeBound Duration `yaml:"purge_bound" json:"purge_bound"`
	// LeaseTTL is how long waiters wait for a fill lease whose holder
	// died.
	LeaseTTL Duration      `yaml:"lease_ttl" json:"lease_ttl"`
	Breaker  SharedBreaker `yaml:"breaker" json:"breaker"`

	// Password is read from PasswordFile or PasswordEnv when the config
	// is loaded. It has no name in the file nor in the effective config,
	// and prints as REDACTED.
	Password Secret `yaml:"-" json:"-"`
}

// SharedTLS is how the shared tier talks TLS to Redis. A rediss://
// address turns TLS on as Enabled does.
type SharedTLS struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// CAFile holds the CAs to verify the servers with; "" means the
	// system's.
	CAFile string `yaml:"ca_file" json:"ca_file"`
	// CertFile and KeyFile are a client certificate, for servers that
	// ask for one; give both or neither.
	CertFile           string `yaml:"cert_file" json:"cert_file"`
	KeyFile            string `yaml:"key_file" json:"key_file"`
	ServerName         string `yaml:"server_name" json:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
}

// SharedBreaker stops waiting on Redis after Failures failed operations
// in a row; every CoolDown a probe tries it again.
type SharedBreaker struct {
	Failures int      `yaml:"failures" json:"failures"`
	CoolDown Duration `yaml:"cool_down" json:"cool_down"`
}

// Secret is a value that is never shown: it formats as REDACTED.
type Secret string

// String hides the value, so that no log or dump shows it.
func (Secret) String() string { return "REDACTED" }

// GoString hides the value from %#v too.
func (Secret) GoString() string { return `"REDACTED"` }

// Reveal returns the value, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// sharedDefaults fills in cache.shared when present.
func sharedDefaults(c *Config, d *decoder) {
	sh := c.Cache.Shared
	if sh == nil {
		return
	}
	const p = "cache.shared."
	dur := func(v *Duration, name string, def time.Duration) {
		if !d.set[p+name] {
			*v = Duration(def)
		}
	}
	num := func(v *int, name string, def int) {
		if !d.set[p+name] {
			*v = def
		}
	}
	if sh.Addresses == nil {
		sh.Addresses = []string{}
	}
	if sh.Mode == "" {
		sh.Mode = defaultSharedMode
	}
	if sh.KeyPrefix == "" {
		sh.KeyPrefix = defaultSharedKeyPrefix
	}
	dur(&sh.Timeout, "timeout", defaultSharedTimeout)
	dur(&sh.WriteTimeout, "write_timeout", defaultSharedWriteTimeout)
	dur(&sh.DialTimeout, "dial_timeout", defaultSharedDialTimeout)
	dur(&sh.PurgeBound, "purge_bound", defaultSharedPurgeBound)
	dur(&sh.LeaseTTL, "lease_ttl", defaultSharedLeaseTTL)
	dur(&sh.Breaker.CoolDown, "breaker.cool_down", defaultSharedBreakerCoolDown)
	if !d.set[p+"max_object_size"] {
		sh.MaxObjectSize = defaultSharedMaxObjectSize
	}
	num(&sh.WriteConcurrency, "write_concurrency", defaultSharedWriteConcurrency)
	num(&sh.WriteQueue, "write_queue", defaultSharedWriteQueue)
	num(&sh.Breaker.Failures, "breaker.failures", defaultSharedBreakerFailures)
}

// validateShared checks cache.shared for what only the file knows, and
// reads the password.
func validateShared(c *Config, d *decoder) {
	sh := c.Cache.Shared
	if sh == nil {
		return
	}
	const p = "cache.shared."
	// 0 would be package redistier's default: refused rather than
	// silently replaced. Negatives are the package's to refuse.
	for _, z := range []struct {
		name string
		zero bool
		why  string
	}{
		{"timeout", sh.Timeout == 0, "each Redis operation on a request's path is bounded by it"},
		{"write_timeout", sh.WriteTimeout == 0, "each write to Redis is bounded by it"},
		{"dial_timeout", sh.DialTimeout == 0, "connecting is bounded by it"},
		{"max_object_size", sh.MaxObjectSize == 0, "larger entries stay in this process's memory"},
		{"write_concurrency", sh.WriteConcurrency == 0, "that many writes run at once"},
		{"write_queue", sh.WriteQueue == 0, "that many writes may wait"},
		{"purge_bound", sh.PurgeBound == 0, "a missed purge notification is made up for within it"},
		{"lease_ttl", sh.LeaseTTL == 0, "waiters wait this long for a fill lease whose holder died"},
		{"breaker.failures", sh.Breaker.Failures == 0, "that many failures in a row open the breaker"},
		{"breaker.cool_down", sh.Breaker.CoolDown == 0, "an open breaker probes Redis this often"},
	} {
		if z.zero {
			d.report(p+z.name, "must be positive (%s)", z.why)
		}
	}
	sh.Password = readPassword(d, sh)

	tp := p + "tls"
	t := sh.TLS
	hasCert, hasKey := t.CertFile != "", t.KeyFile != ""
	switch {
	case hasCert && !hasKey:
		d.report(tp+".key_file", "missing; a client certificate needs both cert_file and key_file")
	case hasKey && !hasCert:
		d.report(tp+".cert_file", "missing; a client certificate needs both cert_file and key_file")
	}
	checkFile(d, tp+".ca_file", t.CAFile)
	certOK := checkFile(d, tp+".cert_file", t.CertFile)
	keyOK := checkFile(d, tp+".key_file", t.KeyFile)
	// A pair that does not load would otherwise fail only when the tier
	// first connects, in the background.
	if hasCert && hasKey && certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			d.report(tp+".cert_file", "cannot load certificate %q with key_file %q: %v", t.CertFile, t.KeyFile, err)
		}
	}
}

// readPassword reads the password from its source; "" when there is none
// or it cannot be read (reported).
func readPassword(d *decoder, sh *CacheShared) Secret {
	const fp, ep = "cache.shared.password_file", "cache.shared.password_env"
	switch {
	case sh.PasswordFile != "" && sh.PasswordEnv != "":
		d.report(ep, "give password_file or password_env, not both (password_file at line %d)", d.line(fp))
		return ""
	case sh.PasswordFile != "":
		if !checkFile(d, fp, sh.PasswordFile) {
			return ""
		}
		b, err := os.ReadFile(sh.PasswordFile)
		if err != nil {
			d.report(fp, "%v", err)
			return ""
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			d.report(fp, "%q is empty", sh.PasswordFile)
		}
		return Secret(pw)
	case sh.PasswordEnv != "":
		if !isVarName(sh.PasswordEnv) {
			d.report(ep, "%q is not an environment variable name", sh.PasswordEnv)
			return ""
		}
		pw, ok := os.LookupEnv(sh.PasswordEnv)
		switch {
		case !ok:
			d.report(ep, "environment variable %s is not set", sh.PasswordEnv)
		case pw == "":
			d.report(ep, "environment variable %s is empty", sh.PasswordEnv)
		}
		return Secret(pw)
	}
	return ""
}

// TLSOn reports whether the shared tier talks TLS: tls.enabled, or
// an address written rediss://.
func (sh *CacheShared) TLSOn() bool {
	if sh.TLS.Enabled {
		return true
	}
	for _, a := range sh.Addresses {
		if strings.HasPrefix(strings.ToLower(a), "rediss://") {
			return true
		}
	}
	return false
}
