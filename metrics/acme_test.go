package metrics

import (
	"strings"
	"testing"
	"time"

	"gateway/acme"
)

type fakeACME struct{ st acme.Status }

func (f fakeACME) Status() acme.Status { return f.st }

// TestACME: no ACME series before SetACME; after it, each listener's
// counters and each name's seconds to expiry, none for a name with no
// certificate yet.
func TestACME(t *testing.T) {
	m := New("")
	gather := func() map[string]float64 {
		t.Helper()
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range fams {
			if !strings.HasPrefix(f.GetName(), "gateway_acme_") && f.GetName() != "gateway_tls_certificate_expiry_seconds" {
				continue
			}
			for _, s := range f.GetMetric() {
				key := f.GetName()
				for _, l := range s.GetLabel() {
					key += " " + l.GetName() + "=" + l.GetValue()
				}
				v := s.GetCounter().GetValue()
				if s.GetGauge() != nil {
					v = s.GetGauge().GetValue()
				}
				out[key] = v
			}
		}
		return out
	}
	if got := gather(); len(got) != 0 {
		t.Fatalf("before SetACME: %v; want no series", got)
	}
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetACME(map[string]ACMESource{":443": fakeACME{acme.Status{Obtained: 2, Renewed: 1, Failures: 3, Certificates: []acme.Certificate{
		{Name: "a.example", NotAfter: now.Add(48 * time.Hour)},
		{Name: "b.example"},
	}}}})
	m.acme.Load().now = func() time.Time { return now }
	got := gather()
	for key, want := range map[string]float64{
		"gateway_acme_certificates_obtained_total listener=:443":              2,
		"gateway_acme_certificates_renewed_total listener=:443":               1,
		"gateway_acme_failures_total listener=:443":                           3,
		"gateway_tls_certificate_expiry_seconds listener=:443 name=a.example": 48 * 3600,
	} {
		if got[key] != want {
			t.Errorf("%s: got %v; want %v", key, got[key], want)
		}
	}
	if len(got) != 4 {
		t.Errorf("got %d series: %v; want 4 (none for b.example, which has no certificate)", len(got), got)
	}
}
