package cache

import (
	"testing"
	"time"
)

// TestStatusOutcome classifies every Status this cache writes.
func TestStatusOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   Status
		want Outcome
	}{
		{"fresh hit", Status{Hit: true, TTL: 30 * time.Second, HasTTL: true}, OutcomeHit},
		{"max-stale", Status{Hit: true, TTL: -time.Second, HasTTL: true, Detail: "max-stale"}, OutcomeStale},
		{"stale-while-revalidate", Status{Hit: true, TTL: -time.Second, HasTTL: true, Detail: "stale-while-revalidate"}, OutcomeStale},
		{"uri-miss stored", Status{Fwd: "uri-miss", FwdStatus: 200, Stored: true}, OutcomeMiss},
		{"vary-miss", Status{Fwd: "vary-miss", FwdStatus: 200}, OutcomeMiss},
		{"collapsed", Status{Fwd: "uri-miss", FwdStatus: 200, Collapsed: true, TTL: time.Minute, HasTTL: true}, OutcomeMiss},
		{"revalidated", Status{Fwd: "stale", FwdStatus: 304, Stored: true, TTL: time.Minute, HasTTL: true}, OutcomeMiss},
		{"client no-cache", Status{Fwd: "request", FwdStatus: 200, Stored: true}, OutcomeMiss},
		{"lock timeout", Status{Fwd: "uri-miss", FwdStatus: 200, Detail: "lock-timeout"}, OutcomeMiss},
		{"only-if-cached", Status{Detail: "only-if-cached"}, OutcomeMiss},
		{"stale-if-error", Status{Fwd: "stale", FwdStatus: 503, TTL: -time.Second, HasTTL: true, Detail: "stale-if-error"}, OutcomeStale},
		{"hit-for-pass", Status{Fwd: "uri-miss", FwdStatus: 200, Detail: "hit-for-pass"}, OutcomePass},
		{"pass after a stale entry", Status{Fwd: "stale", FwdStatus: 200, Detail: "request-no-store"}, OutcomePass},
		{"conditional", Status{Fwd: "uri-miss", FwdStatus: 304, Detail: "conditional"}, OutcomePass},
		// Why a response was not stored does not make its forward a pass.
		{"miss not stored", Status{Fwd: "uri-miss", FwdStatus: 200, Detail: "no-store"}, OutcomeMiss},
		{"conditional not stored", Status{Fwd: "uri-miss", FwdStatus: 304, Detail: "status", pass: true}, OutcomePass},
		{"unsafe method", Status{Fwd: "method", FwdStatus: 201}, OutcomePass},
		{"upgrade", Status{Fwd: "bypass", FwdStatus: 101}, OutcomeBypass},
		// The key is the client's to shape: it never changes the class.
		{"hit with a key", Status{Hit: true, Key: "/stale", TTL: time.Minute, HasTTL: true}, OutcomeHit},
	} {
		if got := tc.st.Outcome(); got != tc.want {
			t.Errorf("%s (%s): got %s; want %s", tc.name, tc.st.Append(nil, "gateway"), got, tc.want)
		}
	}
}
