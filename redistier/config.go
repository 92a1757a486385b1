package redistier

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"gateway/internal/fielderr"
)

// Modes of a Config: how Addrs are read.
const (
	ModeAuto       = "auto"       // ask the first reachable address: cluster when it says so, else standalone
	ModeStandalone = "standalone" // one Redis (or a proxy in front of several)
	ModeSentinel   = "sentinel"   // Addrs are Sentinels watching MasterName
	ModeCluster    = "cluster"    // Addrs are seed nodes of a Redis Cluster
)

// Defaults of a Config's zero fields.
const (
	DefaultKeyPrefix        = "gw:"
	DefaultTimeout          = 10 * time.Millisecond
	DefaultWriteTimeout     = 250 * time.Millisecond
	DefaultDialTimeout      = time.Second
	DefaultMaxObjectSize    = 1 << 20
	DefaultWriteConcurrency = 4
	DefaultWriteQueue       = 1024
	DefaultPurgeBound       = time.Second
	DefaultLeaseTTL         = 2 * time.Second
	DefaultBreakerFailures  = 5
	DefaultBreakerCoolDown  = time.Second
)

// Config is the shared tier's connection and limits.
type Config struct {
	// Addrs are host:port addresses (or redis:// and rediss:// URLs,
	// whose scheme turns TLS on) of the Redis servers, Sentinels or
	// Cluster seed nodes.
	Addrs []string
	// Mode is one of the Mode constants; "" means ModeAuto.
	Mode string
	// MasterName is the Sentinel master set's name (ModeSentinel).
	MasterName string
	// Username and Password authenticate (Redis ACL; Username "" is the
	// default user). The password is never logged nor shown.
	Username string
	Password string
	// DB selects a database (standalone and Sentinel only).
	DB int
	// TLS, when not nil, is used for every connection.
	TLS *tls.Config
	// KeyPrefix namespaces every key the tier writes.
	KeyPrefix string
	// Timeout bounds each Redis operation on a request's path (lookups,
	// leases, purges): past it the operation counts as failed and the
	// request goes on without the tier.
	Timeout time.Duration
	// WriteTimeout bounds each write, done after the response.
	WriteTimeout time.Duration
	// DialTimeout bounds connecting.
	DialTimeout time.Duration
	// MaxObjectSize is the largest entry (body and encoded forms) the
	// tier takes; a larger one stays in this process's memory only.
	MaxObjectSize int64
	// WriteConcurrency is how many writes run at once, and WriteQueue
	// how many may wait; a write that finds the queue full is dropped
	// and counted.
	WriteConcurrency int
	WriteQueue       int
	// PurgeBound is how late a purge may take effect on a process that
	// missed its notification.
	PurgeBound time.Duration
	// LeaseTTL is how long a fill lease lasts unless its holder, alive,
	// extends it: how long waiters wait for a holder that died.
	LeaseTTL time.Duration
	// BreakerFailures failed operations in a row open the breaker; while
	// open nothing waits on Redis, and every BreakerCoolDown a probe
	// tries to close it.
	BreakerFailures int
	BreakerCoolDown time.Duration
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeAuto
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Timeout, DefaultTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.DialTimeout, DefaultDialTimeout)
	def(&c.PurgeBound, DefaultPurgeBound)
	def(&c.LeaseTTL, DefaultLeaseTTL)
	def(&c.BreakerCoolDown, DefaultBreakerCoolDown)
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = DefaultMaxObjectSize
	}
	if c.WriteConcurrency == 0 {
		c.WriteConcurrency = DefaultWriteConcurrency
	}
	if c.WriteQueue == 0 {
		c.WriteQueue = DefaultWriteQueue
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = DefaultBreakerFailures
	}
	return c
}

// Validate reports c's problems (after WithDefaults), each a
// *fielderr.Error naming the Config field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fielderr.New("redistier", field, msg)) }
	if len(c.Addrs) == 0 {
		bad("Addrs", "at least one address is required")
	}
	for i, a := range c.Addrs {
		if _, _, err := ParseAddr(a); err != nil {
			errs = append(errs, fielderr.At("redistier", "Addrs", i, err.Error()))
		}
	}
	switch c.Mode {
	case ModeAuto, ModeStandalone, ModeCluster:
		if c.MasterName != "" {
			bad("MasterName", "is for mode sentinel only")
		}
	case ModeSentinel:
		if c.MasterName == "" {
			bad("MasterName", "is required in mode sentinel")
		}
	default:
		bad("Mode", fmt.Sprintf("%q must be auto, standalone, sentinel or cluster", c.Mode))
	}
	if c.DB < 0 || c.DB > 15 && c.Mode != ModeStandalone {
		bad("DB", fmt.Sprintf("%d must be between 0 and 15", c.DB))
	}
	if c.DB != 0 && c.Mode == ModeCluster {
		bad("DB", "a Redis Cluster has database 0 only")
	}
	if strings.ContainsAny(c.KeyPrefix, "{}") {
		bad("KeyPrefix", "must not contain { or }: they pick Redis Cluster hash slots")
	}
	pos := func(field string, d time.Duration) {
		if d < 0 {
			bad(field, "must not be negative")
		}
	}
	pos("Timeout", c.Timeout)
	pos("WriteTimeout", c.WriteTimeout)
	pos("DialTimeout", c.DialTimeout)
	pos("PurgeBound", c.PurgeBound)
	pos("LeaseTTL", c.LeaseTTL)
	pos("BreakerCoolDown", c.BreakerCoolDown)
	if c.MaxObjectSize < 0 {
		bad("MaxObjectSize", "must not be negative")
	}
	if c.WriteConcurrency < 0 {
		bad("WriteConcurrency", "must not be negative")
	}
	if c.WriteQueue < 0 {
		bad("WriteQueue", "must not be negative")
	}
	if c.BreakerFailures < 0 {
		bad("BreakerFailures", "must not be negative")
	}
	return errors.Join(errs...)
}

// ParseAddr reads one of Config.Addrs: host:port, or a redis:// or
// rediss:// URL (rediss: TLS) whose only parts are the host and port.
func ParseAddr(a string) (hostport string, tls bool, err error) {
	if strings.Contains(a, "://") {
		u, err := url.Parse(a)
		if err != nil {
			return "", false, fmt.Errorf("%q is not a URL", redactAddr(a))
		}
		switch u.Scheme {
		case "redis":
		case "rediss":
			tls = true
		default:
			return "", false, fmt.Errorf("%q: scheme must be redis or rediss", a)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return "", false, fmt.Errorf("%q: give only the host and port (credentials and database have fields of their own)", u.Redacted())
		}
		a = u.Host
		if u.Port() == "" {
			a = net.JoinHostPort(u.Hostname(), "6379")
		}
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || port == "" {
		return "", false, fmt.Errorf("%q must be host:port", a)
	}
	return a, tls, nil
}

// redactAddr hides the userinfo of an address that is not a valid URL,
// since it may hold a password: problems quote the address.
func redactAddr(a string) string {
	scheme, rest, ok := strings.Cut(a, "://")
	if !ok {
		return a
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		return scheme + "://xxxxx" + rest[i:]
	}
	return a
}
