package metrics

import (
	"strings"
	"testing"

	"gateway/redistier"
)

// sharedFamilies gathers m's gateway_cache_shared_ families: name to
// the number of its series and the first one's value (gauges only).
func sharedFamilies(t *testing.T, m *Metrics) (series map[string]int, gauge map[string]float64) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series, gauge = map[string]int{}, map[string]float64{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "gateway_cache_shared_") {
			continue
		}
		series[f.GetName()] = len(f.GetMetric())
		if g := f.GetMetric()[0].GetGauge(); g != nil {
			gauge[f.GetName()] = g.GetValue()
		}
	}
	return series, gauge
}

// TestShared: no gateway_cache_shared_* series before SetShared; after
// it, every family, read from the tier at scrape time, with each error
// kind present from the start.
func TestShared(t *testing.T) {
	m := New("")
	if s, _ := sharedFamilies(t, m); len(s) != 0 {
		t.Fatalf("before SetShared: %v; want no shared family", s)
	}
	tier, err := redistier.Open(redistier.Config{Addrs: []string{"127.0.0.1:1"}}, redistier.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	m.SetShared(tier)
	series, gauge := sharedFamilies(t, m)
	if len(series) != len(sharedDescs) {
		t.Errorf("got families %v; want %d", series, len(sharedDescs))
	}
	if n := series["gateway_cache_shared_errors_total"]; n != len(sharedErrorKinds) {
		t.Errorf("errors_total: %d series; want one per kind, %d", n, len(sharedErrorKinds))
	}
	if gauge["gateway_cache_shared_up"] != 0 {
		t.Errorf("gauges %v; want up 0 for a tier with nothing to connect to", gauge)
	}
}
