package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"gateway/jobs"
)

// JobsSource is what the job metrics read at scrape time: the async
// routes' queue (*jobs.Queue).
type JobsSource interface {
	Stats() jobs.Stats
}

// jobsHolder keeps the source behind one pointer, so that a scrape and
// the reload that opens the queue need no lock.
type jobsHolder struct{ src JobsSource }

// SetJobs has scrapes read q's counters. Like the cache, the queue is
// opened by the first config with an async route, which may be a
// reload's.
func (m *Metrics) SetJobs(q JobsSource) { m.jobs.Store(&jobsHolder{q}) }

func jobsDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("gateway_jobs_"+name, help, labels, nil)
}

var (
	jobsQueuedDesc   = jobsDesc("queued", "Jobs of async routes waiting to run (a retry's wait included).")
	jobsRunningDesc  = jobsDesc("running", "Jobs of async routes running an attempt now.")
	jobsFinishedDesc = jobsDesc("finished_total", "Jobs that ended, by state (succeeded, failed, cancelled).", "state")
	jobsAttemptsDesc = jobsDesc("attempts_total", "Attempts started: a job's requests sent upstream.")
	jobsRetriesDesc  = jobsDesc("retries_total", "Attempts that were retries of a failed one.")
	jobsRejectedDesc = jobsDesc("rejected_total", "Requests refused with 503 because their route's queue was full.")
	jobsCallbackDesc = jobsDesc("callback_failures_total", "Callbacks that could not be delivered.")
	jobsWaitDesc     = jobsDesc("wait_seconds", "Time from a job's acceptance to its first attempt's start.")
	jobsRunDesc      = jobsDesc("run_seconds", "Time of each attempt.")
	jobsDescs        = []*prometheus.Desc{jobsQueuedDesc, jobsRunningDesc, jobsFinishedDesc, jobsAttemptsDesc, jobsRetriesDesc, jobsRejectedDesc, jobsCallbackDesc, jobsWaitDesc, jobsRunDesc}
)

// jobsCollector reads the queue SetJobs gave, at scrape time; nothing
// before that.
type jobsCollector struct{ m *Metrics }

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range jobsDescs {
		ch <- d
	}
}

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.m.jobs.Load()
	if h == nil {
		return
	}
	s := h.src.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(jobsQueuedDesc, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(jobsRunningDesc, prometheus.GaugeValue, float64(s.Running))
	counter(jobsFinishedDesc, s.Succeeded, jobs.StateSucceeded)
	counter(jobsFinishedDesc, s.Failed, jobs.StateFailed)
	counter(jobsFinishedDesc, s.Cancelled, jobs.StateCancelled)
	counter(jobsAttemptsDesc, s.Attempts)
	counter(jobsRetriesDesc, s.Retries)
	counter(jobsRejectedDesc, s.Rejected)
	counter(jobsCallbackDesc, s.CallbackFailures)
	ch <- prometheus.MustNewConstHistogram(jobsWaitDesc, s.WaitCount, s.WaitSum, buckets(s.WaitBounds, s.WaitCounts))
	ch <- prometheus.MustNewConstHistogram(jobsRunDesc, s.RunCount, s.RunSum, buckets(s.RunBounds, s.RunCounts))
}

// buckets pairs a histogram's upper bounds with its cumulative counts.
func buckets(bounds []float64, counts []uint64) map[float64]uint64 {
	out := make(map[float64]uint64, len(bounds))
	for i, b := range bounds {
		if i < len(counts) {
			out[b] = counts[i]
		}
	}
	return out
}
