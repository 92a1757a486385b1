// Package redistier is the shared cache tier: a cache.Store on Redis
// (standalone, Sentinel or Cluster, through rueidis) that several gateway
// processes share, composed under each one's memory store with
// cache.NewTieredStore. It also coalesces misses across the processes
// (cache.Coordinator) and carries purges to all of them.
package redistier

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/sony/gobreaker/v2"

	"gateway/cache"
)

// Options are what the tier needs from the process that opens it.
type Options struct {
	Logger *slog.Logger
	// OnPurge applies a purge another process made to this process's
	// first tier (cache.Cache.ApplyPurge). It is called from the tier's
	// own goroutines.
	OnPurge func(kind cache.PurgeKind, value string, soft bool)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Tier is the shared tier. It implements cache.Store, cache.Recoster and
// cache.Coordinator. Open it with Open, release it with Close.
type Tier struct {
	cfg   atomic.Pointer[Config] // the current timeouts and limits
	fixed Config                 // as opened: what Reconfigure may not change
	o     Options
	now   func() time.Time
	log   *slog.Logger
	k     keys
	id    string // this process's instance id, in the purges it makes

	cb *gobreaker.CircuitBreaker[struct{}]

	// client is nil until the first connection; connMu orders storing it
	// with Close.
	connMu    sync.Mutex
	client    atomic.Pointer[rueidis.Client]
	attempted atomic.Bool // a connection attempt failed

	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Write queues: one per worker, a key's writes always on the same.
	closeMu sync.RWMutex
	closed  bool
	queues  []chan writeOp
	writers sync.WaitGroup
	drainBy atomic.Int64 // Unix ns past which queued writes are dropped (Close)
	// queuedBytes is what the queued writes hold, against queueBudget
	// (writeQueueBytes; tests lower it).
	queuedBytes atomic.Int64
	queueBudget int64
	storedEarly atomic.Bool // stored before the first purge sync

	corruptMu   sync.Mutex
	corruptDel  map[string]bool // keys whose DEL is queued
	corruptWarn rateLimit

	purges            purgeLog
	syncNow           chan struct{} // asks the poller to sync the purge log now
	waitMu            sync.Mutex
	waiters           map[string][]*leaseWaiter // by key hash: this process's Lease calls waiting for another's lease
	held              sync.Map                  // object key → *lease this process holds
	lapsed            map[string]bool           // key hashes whose lease a wait here saw lapse
	st                counters
	latency           histogram
	testHook          atomic.Pointer[func(string)] // tests observe events
	dropPurgeMessages atomic.Bool                  // tests lose purge notifications
}

var (
	_ cache.Store       = (*Tier)(nil)
	_ cache.Recoster    = (*Tier)(nil)
	_ cache.Coordinator = (*Tier)(nil)
)

// ErrDown is the error of an operation tried while the tier is not
// connected or its breaker is open.
var ErrDown = errors.New("redis: shared tier down")

// Open checks cfg (after WithDefaults) and starts connecting in the
// background: Redis being unreachable is not an error (the tier reports
// itself down until it connects), only a Config that cannot work is.
func Open(cfg Config, o Options) (*Tier, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tier{
		fixed:   cfg,
		o:       o,
		now:     o.Now,
		log:     o.Logger,
		k:       keys{prefix: cfg.KeyPrefix},
		id:      instanceID(),
		syncNow: make(chan struct{}, 1),
		waiters: map[string][]*leaseWaiter{},
		lapsed:  map[string]bool{},

		queueBudget: writeQueueBytes,
		corruptDel:  map[string]bool{},
		corruptWarn: rateLimit{period: time.Second},
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.cfg.Store(&cfg)
	t.purges.init()
	t.latency.init()
	t.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     cfg.BreakerCoolDown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(max(t.config().BreakerFailures, 1))
		},
		// A caller that gave up says nothing of Redis.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			t.log.Warn("shared tier breaker", "from", from.String(), "to", to.String())
		},
	})
	t.ctx, t.cancel = context.WithCancel(context.Background())
	w := max(cfg.WriteConcurrency, 1)
	per := max(cfg.WriteQueue/w, 1)
	for range w {
		q := make(chan writeOp, per)
		t.queues = append(t.queues, q)
		t.writers.Go(func() { t.writer(q) })
	}
	t.wg.Go(t.connect)
	t.wg.Go(t.probe)
	t.wg.Go(t.poll)
	return t, nil
}

func instanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (t *Tier) config() *Config { return t.cfg.Load() }

func (t *Tier) conn() rueidis.Client {
	if p := t.client.Load(); p != nil {
		return *p
	}
	return nil
}

// clientOption is cfg as rueidis takes it.
func clientOption(cfg Config) rueidis.ClientOption {
	var addrs []string
	useTLS := false
	for _, a := range cfg.Addrs {
		hp, tl, _ := ParseAddr(a) // checked by Validate
		addrs = append(addrs, hp)
		useTLS = useTLS || tl
	}
	tc := cfg.TLS
	if tc == nil && useTLS {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	dialer := net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 15 * time.Second}
	opt := rueidis.ClientOption{
		InitAddress: addrs,
		Username:    cfg.Username,
		Password:    cfg.Password,
		ClientName:  clientName(),
		SelectDB:    cfg.DB,
		TLSConfig:   tc,
		Dialer:      dialer,
		// Past it a connection whose Redis stopped answering is closed
		// and redialed; operations have their own, shorter deadlines.
		ConnWriteTimeout: max(cfg.DialTimeout, time.Second),
	}
	switch cfg.Mode {
	case ModeStandalone:
		opt.ForceSingleClient = true
	case ModeSentinel:
		opt.Sentinel = rueidis.SentinelOption{MasterSet: cfg.MasterName, Dialer: dialer, TLSConfig: tc}
	}
	// ModeAuto and ModeCluster: rueidis asks the server and takes a
	// cluster for one.
	return opt
}

// connect creates the client, retrying until it can or the tier closes.
func (t *Tier) connect() {
	backoff := 50 * time.Millisecond
	for {
		c, err := rueidis.NewClient(clientOption(t.fixed))
		if err == nil {
			t.connMu.Lock()
			if t.ctx.Err() != nil {
				t.connMu.Unlock()
				c.Close()
				return
			}
			t.client.Store(&c)
			t.wg.Go(func() { t.subscribe(c) })
			t.connMu.Unlock()
			t.log.Info("shared tier connected", "addrs", t.fixed.Addrs, "mode", t.fixed.Mode)
			return
		}
		// The first failure is worth a warning; the retries, every
		// cool-down while Redis stays away, are not.
		level := slog.LevelDebug
		if !t.attempted.Swap(true) {
			level = slog.LevelWarn
		}
		t.log.Log(t.ctx, level, "shared tier: cannot connect", "addrs", t.fixed.Addrs, "mode", t.fixed.Mode, "err", err)
		select {
		case <-t.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, max(t.fixed.BreakerCoolDown, 50*time.Millisecond))
	}
}

// probe PINGs through the breaker while it is not closed, so that the
// tier comes back by itself once Redis answers again.
func (t *Tier) probe() {
	tick := time.NewTicker(max(t.fixed.BreakerCoolDown/2, 5*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		if t.conn() == nil || t.cb.State() == gobreaker.StateClosed {
			continue
		}
		_ = t.do(t.ctx, t.config().Timeout, func(ctx context.Context, c rueidis.Client) error {
			return c.Do(ctx, c.B().Ping().Build()).Error()
		})
	}
}

// do runs f with a deadline through the breaker, timing and counting it.
// A Redis error reply (the server answered) does not count against the
// breaker; f should map a nil reply to no error.
func (t *Tier) do(ctx context.Context, timeout time.Duration, f func(context.Context, rueidis.Client) error) error {
	c := t.conn()
	if c == nil {
		t.st.err("breaker-open")
		return ErrDown
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var opErr error
	_, err := t.cb.Execute(func() (struct{}, error) {
		opErr = f(ctx, c)
		if _, ok := rueidis.IsRedisErr(opErr); ok {
			return struct{}{}, nil
		}
		return struct{}{}, opErr
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		t.st.err("breaker-open")
		return ErrDown
	}
	t.latency.observe(time.Since(start))
	if opErr != nil {
		t.st.err(errKind(opErr))
		return opErr
	}
	return nil
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, errCorrupt):
		return "corrupt"
	}
	if _, ok := rueidis.IsRedisErr(err); ok {
		return "redis"
	}
	return "connection" // refused, reset, closed: the connection failed
}

// Stats are the tier's counters.
type Stats struct {
	State   string // "up", "down" (never connected or lost), "connecting"
	Breaker string // "closed", "open", "half-open"

	Hits, Misses      uint64
	Errors            map[string]uint64 // by kind: timeout, connection, redis, corrupt, breaker-open
	BytesRead         uint64
	BytesWritten      uint64
	Writes            uint64 // writes that landed
	WritesDropped     uint64 // writes dropped: queue full, too large, or failed
	WritesTooLarge    uint64 // of WritesDropped, entries over MaxObjectSize
	LeasesTaken       uint64
	LeaseWaits        uint64
	LeaseTakeovers    uint64 // leases taken after the holder's lapsed
	PurgesSent        uint64
	PurgesReceived    uint64
	NotificationsLost uint64 // purges learned by polling, their notification never came
	PurgeSeq          uint64 // the purge sequence number this process knows up to

	// Latency of operations, as a Prometheus histogram: upper bounds in
	// seconds, cumulative counts per bound, sum of seconds, count.
	LatencyBounds []float64
	LatencyCounts []uint64
	LatencySum    float64
	LatencyCount  uint64
}

// TierStats returns the tier's counters.
func (t *Tier) TierStats() Stats {
	s := Stats{
		State:             t.state(),
		Breaker:           t.cb.State().String(),
		Hits:              t.st.hits.Load(),
		Misses:            t.st.misses.Load(),
		Errors:            t.st.errors(),
		BytesRead:         t.st.bytesRead.Load(),
		BytesWritten:      t.st.bytesWritten.Load(),
		Writes:            t.st.writes.Load(),
		WritesDropped:     t.st.dropped.Load(),
		WritesTooLarge:    t.st.tooLarge.Load(),
		LeasesTaken:       t.st.leases.Load(),
		LeaseWaits:        t.st.leaseWaits.Load(),
		LeaseTakeovers:    t.st.takeovers.Load(),
		PurgesSent:        t.st.purgesSent.Load(),
		PurgesReceived:    t.st.purgesReceived.Load(),
		NotificationsLost: t.st.lost.Load(),
		PurgeSeq:          t.purges.known(),
	}
	s.LatencyBounds, s.LatencyCounts, s.LatencySum, s.LatencyCount = t.latency.snapshot()
	return s
}

func (t *Tier) state() string {
	switch {
	case t.conn() == nil && !t.attempted.Load():
		return "connecting"
	case t.conn() == nil, t.cb.State() != gobreaker.StateClosed:
		return "down"
	}
	return "up"
}

// Reconfigure applies cfg's timeouts and limits. Changing Addrs, Mode,
// MasterName, credentials, DB, TLS or KeyPrefix needs a restart: it is an
// error, and nothing changes. WriteConcurrency, WriteQueue, DialTimeout
// and BreakerCoolDown are kept for the next Open.
func (t *Tier) Reconfigure(cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	f := t.fixed
	var bad []string
	if !slices.Equal(cfg.Addrs, f.Addrs) {
		bad = append(bad, "Addrs")
	}
	if cfg.Mode != f.Mode {
		bad = append(bad, "Mode")
	}
	if cfg.MasterName != f.MasterName {
		bad = append(bad, "MasterName")
	}
	if cfg.Username != f.Username {
		bad = append(bad, "Username")
	}
	if cfg.Password != f.Password {
		bad = append(bad, "Password")
	}
	if cfg.DB != f.DB {
		bad = append(bad, "DB")
	}
	if cfg.TLS != f.TLS {
		bad = append(bad, "TLS")
	}
	if cfg.KeyPrefix != f.KeyPrefix {
		bad = append(bad, "KeyPrefix")
	}
	if len(bad) > 0 {
		return fmt.Errorf("redistier: changing %s needs a restart", strings.Join(bad, ", "))
	}
	t.cfg.Store(&cfg)
	return nil
}

// Stats implements cache.Store.
func (t *Tier) Stats() cache.StoreStats {
	var n uint64
	for _, v := range t.st.errors() {
		n += v
	}
	return cache.StoreStats{Stores: t.st.writes.Load(), Errors: n}
}

// Close stops the tier's goroutines and closes its connections. Writes
// still queued get until WriteTimeout to land; the rest are dropped.
func (t *Tier) Close() error {
	t.closeMu.Lock()
	if t.closed {
		t.closeMu.Unlock()
		return nil
	}
	t.closed = true
	t.drainBy.Store(time.Now().Add(drainGrace(t.config())).UnixNano())
	for _, q := range t.queues {
		close(q)
	}
	t.closeMu.Unlock()
	// The writers drain first, then everything else stops.
	t.writers.Wait()
	t.connMu.Lock()
	t.cancel()
	t.connMu.Unlock()
	t.wg.Wait()
	if c := t.conn(); c != nil {
		c.Close()
	}
	return nil
}

// clientName names the tier's connections in CLIENT LIST after the
// process, so that an operator (or a test) can tell the replicas apart:
// gateway@HOST:PID. Redis refuses spaces and newlines in a name.
func clientName() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, host)
	return "gateway@" + host + ":" + strconv.Itoa(os.Getpid())
}

// ClientOption is how the tier connects for cfg (after WithDefaults):
// other parts of the gateway that keep state in the same Redis (the job
// queue) connect alike, with their own client.
func ClientOption(cfg Config) rueidis.ClientOption { return clientOption(cfg.WithDefaults()) }
