package cache

import (
	"net/http"
	"strings"

	"gateway/internal/outcome"
)

// Outcome is what the cache did for a response, in the few classes that
// logs and metrics use. The cache classifies its own Status
// (Status.Outcome) and reports it to the outcome.Recorder in the
// request's context as it writes the Cache-Status header; observers
// never parse the header back.
type Outcome = outcome.Outcome

// Outcomes (see package outcome). NumOutcomes counts them.
const (
	OutcomeNone   = outcome.None
	OutcomeHit    = outcome.Hit
	OutcomeStale  = outcome.Stale
	OutcomeMiss   = outcome.Miss
	OutcomePass   = outcome.Pass
	OutcomeBypass = outcome.Bypass
	NumOutcomes   = outcome.Num
)

// Outcome classifies s, as this cache writes it.
func (s Status) Outcome() Outcome {
	if s.Hit {
		if strings.Contains(s.Detail, "stale") { // max-stale, stale-while-revalidate
			return OutcomeStale
		}
		return OutcomeHit
	}
	switch s.Fwd {
	case "bypass":
		return OutcomeBypass
	case "method":
		return OutcomePass
	case "":
		return OutcomeMiss // only-if-cached with nothing stored
	}
	if s.pass {
		return OutcomePass
	}
	switch s.Detail {
	case "stale-if-error":
		return OutcomeStale
	case "hit-for-pass", "request-no-store", "conditional":
		return OutcomePass
	}
	return OutcomeMiss
}

// addStatus adds st to hdr, the header of the response to r, as
// AddCacheStatus does, and reports its outcome to r's recorder.
func (c *Cache) addStatus(r *http.Request, hdr http.Header, st Status) {
	AddCacheStatus(hdr, c.name, st)
	outcome.Record(r.Context(), st.Outcome())
}
