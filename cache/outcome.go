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
	if len(hdr["Cache-Status"]) == 0 && !st.HasTTL && st.Key == "" {
		hdr["Cache-Status"] = c.statusValues(st)
	} else {
		AddCacheStatus(hdr, c.name, st)
	}
	outcome.Record(r.Context(), st.Outcome())
}

// statusLine is a Cache-Status field's values for one Status.
type statusLine struct {
	st   Status
	vals []string
}

// numStatusLines is how many recent Cache-Status lines without a ttl
// statusValues remembers, at most: a power of two.
const numStatusLines = 8

// statusValues returns the values of the Cache-Status field for st, a
// response's only one. A Status without a ttl (what passes and
// responses not stored are sent with) gives the same line for every
// response of its kind, so the recent ones are kept, each in a slot
// picked by its fwd-status and detail, and shared by the responses that
// send them: the values have len == cap, so adding a line copies them.
func (c *Cache) statusValues(st Status) []string {
	slot := &c.statusLines[(st.FwdStatus+len(st.Detail)+len(st.Fwd))&(numStatusLines-1)]
	if p := slot.Load(); p != nil && p.st == st {
		return p.vals
	}
	var buf [128]byte
	p := &statusLine{st: st, vals: fieldValues(st.Append(buf[:0], c.name))}
	slot.Store(p)
	return p.vals
}
