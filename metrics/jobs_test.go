package metrics

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"gateway/jobs"
)

// fakeJobs is a queue's counters, changed between scrapes.
type fakeJobs struct{ succeeded atomic.Uint64 }

func (f *fakeJobs) Stats() jobs.Stats {
	return jobs.Stats{
		Queued: 3, Running: 2,
		Succeeded: f.succeeded.Load(), Failed: 1, Cancelled: 4,
		Attempts: 9, Retries: 2, CallbackFailures: 1, Rejected: 5,
		WaitBounds: []float64{0.1, 1}, WaitCounts: []uint64{1, 2}, WaitSum: 0.7, WaitCount: 2,
		RunBounds: []float64{1, 10}, RunCounts: []uint64{3, 4}, RunSum: 12, RunCount: 5,
	}
}

// TestJobs: no gateway_jobs_* series before SetJobs; after it every
// family, read from the queue at each scrape.
func TestJobs(t *testing.T) {
	m := New("")
	// gather is each series' value by name and labels: gauges and
	// counters their value, histograms their count, sum and buckets.
	gather := func() map[string]float64 {
		t.Helper()
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range fams {
			if !strings.HasPrefix(f.GetName(), "gateway_jobs_") {
				continue
			}
			for _, s := range f.GetMetric() {
				key := f.GetName()
				for _, l := range s.GetLabel() {
					key += fmt.Sprintf("{%s=%s}", l.GetName(), l.GetValue())
				}
				switch {
				case s.GetGauge() != nil:
					out[key] = s.GetGauge().GetValue()
				case s.GetCounter() != nil:
					out[key] = s.GetCounter().GetValue()
				case s.GetHistogram() != nil:
					h := s.GetHistogram()
					out[key+"_count"] = float64(h.GetSampleCount())
					out[key+"_sum"] = h.GetSampleSum()
					for _, b := range h.GetBucket() {
						out[fmt.Sprintf("%s_bucket{le=%g}", key, b.GetUpperBound())] = float64(b.GetCumulativeCount())
					}
				}
			}
		}
		return out
	}
	if got := gather(); len(got) != 0 {
		t.Fatalf("before SetJobs: %v; want no job family", got)
	}
	q := &fakeJobs{}
	q.succeeded.Store(6)
	m.SetJobs(q)
	got := gather()
	for key, want := range map[string]float64{
		"gateway_jobs_queued":                          3,
		"gateway_jobs_running":                         2,
		"gateway_jobs_finished_total{state=succeeded}": 6,
		"gateway_jobs_finished_total{state=failed}":    1,
		"gateway_jobs_finished_total{state=cancelled}": 4,
		"gateway_jobs_attempts_total":                  9,
		"gateway_jobs_retries_total":                   2,
		"gateway_jobs_rejected_total":                  5,
		"gateway_jobs_callback_failures_total":         1,
		"gateway_jobs_wait_seconds_count":              2,
		"gateway_jobs_wait_seconds_sum":                0.7,
		"gateway_jobs_wait_seconds_bucket{le=0.1}":     1,
		"gateway_jobs_run_seconds_count":               5,
		"gateway_jobs_run_seconds_sum":                 12,
		"gateway_jobs_run_seconds_bucket{le=10}":       4,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s: got %v (present %v); want %v", key, v, ok, want)
		}
	}
	q.succeeded.Store(7)
	if v := gather()["gateway_jobs_finished_total{state=succeeded}"]; v != 7 {
		t.Errorf("second scrape: got %v succeeded; want the queue's new count, 7", v)
	}
}
