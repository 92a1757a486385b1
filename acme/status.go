package acme

import (
	"slices"
	"sync"
	"time"
)

// Status is what a Manager has done, for metrics and the admin
// listener.
type Status struct {
	// Obtained and Renewed count certificates the CA issued to this
	// process; Failures counts attempts that failed (obtain or renewal,
	// each retry once).
	Obtained, Renewed, Failures uint64
	// Certificates are the configured names, then the on-demand ones
	// this process has served, by name.
	Certificates []Certificate
}

// Certificate is the state of one name.
type Certificate struct {
	Name string `json:"name"`
	// OnDemand: the name came by SNI, not from the config.
	OnDemand bool `json:"on_demand"`
	// NotAfter is when the certificate served for the name expires;
	// zero while there is none yet.
	NotAfter time.Time `json:"not_after"`
	Serial   string    `json:"serial,omitempty"`
	Issuer   string    `json:"issuer,omitempty"`
	// OCSPStapled: handshakes carry an OCSP response for it.
	OCSPStapled bool `json:"ocsp_stapled"`
	// Failures counts the failed attempts for the name; LastError is the
	// latest one's, kept until an attempt succeeds.
	Failures    uint64    `json:"failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// stats are a Manager's counters and each name's last failure.
type stats struct {
	mu                          sync.Mutex // guards every field
	obtainedN, renewedN, failsN uint64
	configured                  []string
	names                       map[string]*nameStat
}

type nameStat struct {
	onDemand  bool
	failures  uint64
	lastErr   string
	lastErrAt time.Time
}

func (s *stats) entryLocked(name string) *nameStat {
	if s.names == nil {
		s.names = map[string]*nameStat{}
	}
	n := s.names[name]
	if n == nil {
		n = &nameStat{onDemand: !slices.Contains(s.configured, name)}
		s.names[name] = n
	}
	return n
}

// init makes names the configured ones.
func (s *stats) init(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.configured = slices.Clone(names)
	for _, d := range names {
		s.entryLocked(d).onDemand = false
	}
}

// forget drops a name no longer configured.
func (s *stats) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.names, name)
}

// seen records names whose certificate was put in the cache.
func (s *stats) seen(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range names {
		s.entryLocked(d)
	}
}

func (s *stats) obtained(name string, renewal bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if renewal {
		s.renewedN++
	} else {
		s.obtainedN++
	}
	if name != "" {
		n := s.entryLocked(name)
		n.lastErr, n.lastErrAt = "", time.Time{}
	}
}

// failed counts an attempt the CA (or the way to it) failed.
func (s *stats) failed(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failsN++
	if name != "" {
		n := s.entryLocked(name)
		n.failures++
		n.lastErr, n.lastErrAt = err.Error(), time.Now()
	}
}

// lastError records a failure to bring a name under management that
// certmagic did not report as an event (storage, say); the attempt was
// counted by failed if it reached the CA.
func (s *stats) lastError(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.entryLocked(name)
	n.lastErr, n.lastErrAt = err.Error(), time.Now()
}

// Status reports the counters and every name's certificate.
func (m *Manager) Status() Status {
	s := &m.stats
	s.mu.Lock()
	st := Status{Obtained: s.obtainedN, Renewed: s.renewedN, Failures: s.failsN}
	names := slices.Clone(s.configured)
	var extra []string
	for name, n := range s.names {
		if n.onDemand {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	names = append(names, extra...)
	for _, name := range names {
		n := s.entryLocked(name)
		st.Certificates = append(st.Certificates, Certificate{
			Name: name, OnDemand: n.onDemand, Failures: n.failures,
			LastError: n.lastErr, LastErrorAt: n.lastErrAt,
		})
	}
	s.mu.Unlock()
	for i := range st.Certificates {
		c := &st.Certificates[i]
		for _, cert := range m.cache.AllMatchingCertificates(c.Name) {
			leaf := cert.Leaf
			if leaf == nil || !leaf.NotAfter.After(c.NotAfter) {
				continue
			}
			c.NotAfter = leaf.NotAfter
			c.Serial = leaf.SerialNumber.Text(16)
			c.Issuer = leaf.Issuer.CommonName
			c.OCSPStapled = len(cert.OCSPStaple) > 0
		}
	}
	return st
}
