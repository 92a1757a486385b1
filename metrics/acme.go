package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gateway/acme"
)

// ACMESource is what the certificate metrics read at scrape time: a TLS
// listener's ACME manager (*acme.Manager).
type ACMESource interface {
	Status() acme.Status
}

// acmeHolder keeps the listeners' sources, by listener address, behind
// one pointer.
type acmeHolder struct {
	srcs map[string]ACMESource
	now  func() time.Time
}

// SetACME has scrapes read each ACME listener's certificates, by the
// listener's address.
func (m *Metrics) SetACME(srcs map[string]ACMESource) {
	m.acme.Store(&acmeHolder{srcs: srcs, now: time.Now})
}

var (
	certExpiryDesc = prometheus.NewDesc("gateway_tls_certificate_expiry_seconds",
		"Seconds until the certificate served for a name expires (negative: expired); absent while the name has none yet.",
		[]string{"listener", "name"}, nil)
	acmeObtainedDesc = prometheus.NewDesc("gateway_acme_certificates_obtained_total",
		"Certificates the ACME CA issued to this process for a name it had none for.", []string{"listener"}, nil)
	acmeRenewedDesc = prometheus.NewDesc("gateway_acme_certificates_renewed_total",
		"Certificates the ACME CA issued to this process to replace one expiring.", []string{"listener"}, nil)
	acmeFailuresDesc = prometheus.NewDesc("gateway_acme_failures_total",
		"Attempts to obtain or renew a certificate that failed (each retry counts); the current certificate is served meanwhile.", []string{"listener"}, nil)
)

// acmeCollector reads the sources SetACME gave, at scrape time.
type acmeCollector struct{ m *Metrics }

func (c acmeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{certExpiryDesc, acmeObtainedDesc, acmeRenewedDesc, acmeFailuresDesc} {
		ch <- d
	}
}

func (c acmeCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.m.acme.Load()
	if h == nil {
		return
	}
	now := h.now()
	for addr, src := range h.srcs {
		st := src.Status()
		ch <- prometheus.MustNewConstMetric(acmeObtainedDesc, prometheus.CounterValue, float64(st.Obtained), addr)
		ch <- prometheus.MustNewConstMetric(acmeRenewedDesc, prometheus.CounterValue, float64(st.Renewed), addr)
		ch <- prometheus.MustNewConstMetric(acmeFailuresDesc, prometheus.CounterValue, float64(st.Failures), addr)
		for _, cert := range st.Certificates {
			if cert.NotAfter.IsZero() {
				continue
			}
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, cert.NotAfter.Sub(now).Seconds(), addr, cert.Name)
		}
	}
}
