package cache

import (
	"net/http"
	"strings"
)

// Outcome is what the cache did for a response, in the few classes that
// logs and metrics use; OutcomeOf derives it from the response's
// Cache-Status, so observers need no hook into the cache.
type Outcome uint8

// Outcomes. NumOutcomes counts them.
const (
	// OutcomeNone: no Cache-Status of this cache; the route does not
	// cache.
	OutcomeNone Outcome = iota
	// OutcomeHit: served fresh from the cache.
	OutcomeHit
	// OutcomeStale: served stale (stale-while-revalidate, max-stale,
	// stale-if-error).
	OutcomeStale
	// OutcomeMiss: fetched from the origin for the cache, a
	// revalidation included.
	OutcomeMiss
	// OutcomePass: forwarded without the cache's involvement: an
	// unsafe method, a key remembered as uncacheable (hit-for-pass), a
	// request that forbids storing or carries preconditions.
	OutcomePass
	// OutcomeBypass: a protocol upgrade, which the cache never handles.
	OutcomeBypass
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"none", "hit", "stale", "miss", "pass", "bypass"}

func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return "none"
}

// OutcomeOf classifies the Cache-Status member of the cache called name
// ("" is the default, "gateway") in a response header. The cache
// appends its member last, so only the last one is looked at. It does
// not allocate.
func OutcomeOf(h http.Header, name string) Outcome {
	if name == "" {
		name = "gateway"
	}
	vs := h["Cache-Status"]
	if len(vs) == 0 {
		return OutcomeNone
	}
	v := vs[len(vs)-1]
	// The last member starts after the last ", " outside an sf-string
	// (the only place a comma may appear inside a member).
	start, quoted := 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			start = i + 1
		}
	}
	m := strings.TrimLeft(v[start:], " \t")
	if !strings.HasPrefix(m, name) || (len(m) > len(name) && m[len(name)] != ';' && m[len(name)] != ' ') {
		return OutcomeNone
	}
	m = m[len(name):]
	if hasParam(m, "hit") {
		if strings.Contains(m, "stale") { // detail="max-stale" or "stale-while-revalidate"
			return OutcomeStale
		}
		return OutcomeHit
	}
	switch fwd := paramValue(m, "fwd"); fwd {
	case "bypass":
		return OutcomeBypass
	case "method":
		return OutcomePass
	case "":
		return OutcomeMiss // only-if-cached with nothing stored
	}
	switch detail := paramValue(m, "detail"); detail {
	case `"stale-if-error"`:
		return OutcomeStale
	case `"hit-for-pass"`, `"no-store"`, `"conditional"`:
		return OutcomePass
	}
	return OutcomeMiss
}

// hasParam reports whether the parameter list m (";"-separated, after
// the member's name) holds the bare parameter p.
func hasParam(m, p string) bool {
	for m != "" {
		var part string
		part, m, _ = strings.Cut(m, ";")
		if strings.TrimSpace(part) == p {
			return true
		}
	}
	return false
}

// paramValue is the value of parameter p in m, as written (sf-strings
// keep their quotes), or "".
func paramValue(m, p string) string {
	for m != "" {
		var part string
		part, m, _ = strings.Cut(m, ";")
		part = strings.TrimSpace(part)
		if len(part) > len(p) && part[len(p)] == '=' && part[:len(p)] == p {
			return part[len(p)+1:]
		}
	}
	return ""
}
