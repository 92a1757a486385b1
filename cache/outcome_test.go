package cache

import (
	"net/http"
	"testing"
	"time"
)

// TestOutcomeOf classifies every Cache-Status this cache writes, with
// and without other caches' members before it.
func TestOutcomeOf(t *testing.T) {
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
		{"pass after a stale entry", Status{Fwd: "stale", FwdStatus: 200, Detail: "no-store"}, OutcomePass},
		{"conditional", Status{Fwd: "uri-miss", FwdStatus: 304, Detail: "conditional"}, OutcomePass},
		{"unsafe method", Status{Fwd: "method", FwdStatus: 201}, OutcomePass},
		{"upgrade", Status{Fwd: "bypass", FwdStatus: 101}, OutcomeBypass},
	} {
		for _, prev := range []string{"", `origin-cdn; hit; detail="a, b"`} {
			h := http.Header{}
			if prev != "" {
				h.Set("Cache-Status", prev)
			}
			AddCacheStatus(h, "gateway", tc.st)
			if got := OutcomeOf(h, ""); got != tc.want {
				t.Errorf("%s (%q): got %s; want %s", tc.name, h.Get("Cache-Status"), got, tc.want)
			}
		}
	}
	// Another cache's member alone, or none, is not this cache's doing.
	for _, v := range []string{"", "origin-cdn; hit", "gatewayx; hit", `"gateway"; hit`} {
		h := http.Header{}
		if v != "" {
			h.Set("Cache-Status", v)
		}
		if got := OutcomeOf(h, ""); got != OutcomeNone {
			t.Errorf("%q: got %s; want none", v, got)
		}
	}
	if got := OutcomeOf(http.Header{"Cache-Status": {"edge; hit"}}, "edge"); got != OutcomeHit {
		t.Errorf("named cache: got %s; want hit", got)
	}
	h := http.Header{"Cache-Status": {`cdn; hit, gateway; fwd=uri-miss; fwd-status=200; detail="hit-for-pass"`}}
	if n := testing.AllocsPerRun(100, func() { OutcomeOf(h, "") }); n != 0 {
		t.Errorf("OutcomeOf allocates %v times", n)
	}
}
