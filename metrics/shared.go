package metrics

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"gateway/redistier"
)

// SetShared has scrapes read t's figures: the shared cache tier under
// the cache that SetCache gave. Like the cache, a reload may be the
// first to open it.
func (m *Metrics) SetShared(t *redistier.Tier) { m.shared.Store(t) }

// sharedErrorKinds are the kinds of the tier's errors, reported from the
// first scrape on (at 0) so that a rate over them has a start.
var sharedErrorKinds = []string{"timeout", "connection", "redis", "corrupt", "breaker-open"}

func sharedDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("gateway_cache_shared_"+name, help, labels, nil)
}

var (
	sharedHitsDesc      = sharedDesc("hits_total", "Lookups the shared tier answered (this process's memory had missed).")
	sharedMissesDesc    = sharedDesc("misses_total", "Lookups the shared tier had nothing for.")
	sharedErrorsDesc    = sharedDesc("errors_total", "Shared tier operations that failed, by kind (timeout, connection, redis, corrupt, breaker-open).", "kind")
	sharedLatencyDesc   = sharedDesc("operation_seconds", "Time of the shared tier's Redis operations.")
	sharedReadDesc      = sharedDesc("bytes_read_total", "Bytes of entries read from the shared tier.")
	sharedWrittenDesc   = sharedDesc("bytes_written_total", "Bytes of entries written to the shared tier.")
	sharedWritesDesc    = sharedDesc("writes_total", "Entries written to the shared tier.")
	sharedDroppedDesc   = sharedDesc("writes_dropped_total", "Writes to the shared tier dropped: queue full, entry too large, or failed.")
	sharedUpDesc        = sharedDesc("up", "1 while the shared tier is connected, else 0.")
	sharedBreakerDesc   = sharedDesc("breaker_open", "1 while the shared tier's breaker is open (nothing waits on Redis), else 0.")
	sharedLeasesDesc    = sharedDesc("leases_taken_total", "Fill leases this process took: it went to the origin for all processes.")
	sharedWaitsDesc     = sharedDesc("lease_waits_total", "Misses that waited for another process's fill lease.")
	sharedTakeoverDesc  = sharedDesc("lease_takeovers_total", "Fill leases taken after their holder's lapsed.")
	sharedPurgeSentDesc = sharedDesc("purges_sent_total", "Purges this process announced to the others.")
	sharedPurgeRecvDesc = sharedDesc("purges_received_total", "Purges of other processes applied here.")
	sharedLostDesc      = sharedDesc("notifications_lost_total", "Purges learned by polling, their notification never having come.")

	sharedDescs = []*prometheus.Desc{
		sharedHitsDesc, sharedMissesDesc, sharedErrorsDesc, sharedLatencyDesc, sharedReadDesc, sharedWrittenDesc,
		sharedWritesDesc, sharedDroppedDesc, sharedUpDesc, sharedBreakerDesc, sharedLeasesDesc, sharedWaitsDesc,
		sharedTakeoverDesc, sharedPurgeSentDesc, sharedPurgeRecvDesc, sharedLostDesc,
	}
)

// sharedCollector reads the tier SetShared gave, at scrape time; nothing
// before that.
type sharedCollector struct{ m *Metrics }

func (c sharedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range sharedDescs {
		ch <- d
	}
}

func (c sharedCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.m.shared.Load()
	if t == nil {
		return
	}
	s := t.TierStats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, on bool) {
		v := 0.0
		if on {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(sharedHitsDesc, s.Hits)
	counter(sharedMissesDesc, s.Misses)
	kinds := slices.Clone(sharedErrorKinds)
	for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	for _, k := range kinds {
		ch <- prometheus.MustNewConstMetric(sharedErrorsDesc, prometheus.CounterValue, float64(s.Errors[k]), k)
	}
	buckets := make(map[float64]uint64, len(s.LatencyBounds))
	for i, b := range s.LatencyBounds {
		if i < len(s.LatencyCounts) {
			buckets[b] = s.LatencyCounts[i]
		}
	}
	ch <- prometheus.MustNewConstHistogram(sharedLatencyDesc, s.LatencyCount, s.LatencySum, buckets)
	counter(sharedReadDesc, s.BytesRead)
	counter(sharedWrittenDesc, s.BytesWritten)
	counter(sharedWritesDesc, s.Writes)
	counter(sharedDroppedDesc, s.WritesDropped)
	gauge(sharedUpDesc, s.State == "up")
	gauge(sharedBreakerDesc, s.Breaker == "open")
	counter(sharedLeasesDesc, s.LeasesTaken)
	counter(sharedWaitsDesc, s.LeaseWaits)
	counter(sharedTakeoverDesc, s.LeaseTakeovers)
	counter(sharedPurgeSentDesc, s.PurgesSent)
	counter(sharedPurgeRecvDesc, s.PurgesReceived)
	counter(sharedLostDesc, s.NotificationsLost)
}
