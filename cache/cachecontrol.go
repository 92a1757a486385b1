package cache

import (
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// Limits on how much of a Cache-Control header is examined. Request headers
// come from untrusted clients, so a hostile header must not cost much CPU or
// memory: parsing is one linear pass, and beyond these limits the rest of
// the header is ignored. Real headers carry a handful of directives.
const (
	// maxDirectives caps the non-empty list elements examined across all
	// field lines; later directives are ignored.
	maxDirectives = 64
	// maxFieldNames caps the field names one no-cache or private list may
	// collect. A longer list makes the directive unqualified, which is the
	// stricter reading, so truncation never relaxes caching.
	maxFieldNames = 64
	// deltaSecondsMax is the value every delta-seconds over 2^31-1 becomes
	// (RFC 9111 section 1.2.2), so arithmetic on it cannot overflow int64.
	deltaSecondsMax int64 = 1 << 31
)

// Directives is a parsed Cache-Control header (RFC 9111 section 5.2),
// request or response.
//
// Rules where the RFC leaves a choice (chosen for a shared cache, where
// over-reusing a response is worse than revalidating it):
//   - max-age and s-maxage with a missing or invalid value, or present
//     more than once with different values, are 0: the response is stale
//     and must be revalidated (RFC 9111 section 4.2.1 allows "stale").
//   - The other delta-seconds directives take their first valid
//     occurrence; an invalid value counts as absent. A bare max-stale sets
//     MaxStaleAny.
//   - Quoted delta-seconds ("5") are accepted, as RFC 9111 section 5.2
//     lets recipients do.
//   - no-cache and private with an empty, malformed or over-long field-name
//     list are unqualified (nil Fields), the stricter meaning. A bare
//     occurrence beats any qualified one; qualified occurrences merge.
//   - Boolean directives are set whatever argument they carry.
//   - Unknown directives are ignored (extensions, RFC 9111 section 5.2.3).
type Directives struct {
	// Delta-seconds directives; -1 means absent. Values over 2^31-1 are
	// clamped to 2147483648 as RFC 9111 section 1.2.2 says.
	MaxAge, SMaxAge, MaxStale, MinFresh, StaleWhileRevalidate, StaleIfError int64

	MaxStaleAny bool // "max-stale" without a value: any staleness is acceptable

	NoStore, NoTransform, OnlyIfCached, Public, MustRevalidate, ProxyRevalidate, MustUnderstand, Immutable bool

	// no-cache and private may carry a field-name list (canonical header
	// keys); a bare directive sets the flag with nil Fields.
	NoCache       bool
	NoCacheFields []string
	Private       bool
	PrivateFields []string
}

// ParseCacheControl parses all Cache-Control field lines of h as one list,
// as RFC 9110 section 5.3 combines them. Each line is parsed in turn rather
// than joined, which saves the allocation and keeps an unterminated quoted
// string in one line from swallowing the next.
func ParseCacheControl(h http.Header) Directives {
	// Indexed directly: the key is canonical already, and most requests
	// have no Cache-Control at all.
	lines := h["Cache-Control"]
	if len(lines) == 0 {
		return noDirectives
	}
	p := newParser()
	for _, line := range lines {
		if !p.parse(line) {
			break
		}
	}
	return p.d
}

// ParseCacheControlValue parses one (combined) Cache-Control field value.
func ParseCacheControlValue(v string) Directives {
	p := newParser()
	p.parse(v)
	return p.d
}

// noDirectives is what an absent Cache-Control means.
var noDirectives = newParser().d

// parser carries what the rules for repeated directives need beyond the
// result itself.
type parser struct {
	d                        Directives
	n                        int  // directives examined, for maxDirectives
	maxAgeSeen, sMaxAgeSeen  bool // to detect conflicting duplicates
	noCacheBare, privateBare bool // a bare occurrence overrides any list
}

func newParser() parser {
	return parser{d: Directives{
		MaxAge: -1, SMaxAge: -1, MaxStale: -1, MinFresh: -1,
		StaleWhileRevalidate: -1, StaleIfError: -1,
	}}
}

// element is one list member: name [ "=" value ]. raw is the value as
// written (without the quotes when quoted, escapes still in place); ok is
// false when the element was malformed (junk after the value, unterminated
// quoted-string), which the directives treat as an invalid value.
type element struct {
	name   string
	raw    string
	hasVal bool
	quoted bool
	ok     bool
}

// parse reads the #cache-directive list in s (RFC 9110 section 5.6.1:
// empty elements and OWS around commas and "=" are tolerated). It reports
// false once maxDirectives is reached.
func (p *parser) parse(s string) bool {
	i := 0
	for i < len(s) {
		if c := s[i]; c == ',' || c == ' ' || c == '\t' {
			i++
			continue
		}
		if p.n >= maxDirectives {
			return false
		}
		p.n++

		start := i
		for i < len(s) && httpguts.IsTokenRune(rune(s[i])) {
			i++
		}
		e := element{name: s[start:i], ok: true}
		if e.name == "" {
			// Not a directive at all; drop up to the next comma.
			i = skipElement(s, i)
			continue
		}
		i = skipOWS(s, i)
		if i < len(s) && s[i] == '=' {
			e.hasVal = true
			i = skipOWS(s, i+1)
			if i < len(s) && s[i] == '"' {
				e.quoted = true
				var end int
				end, e.ok = scanQuoted(s, i)
				if e.ok {
					e.raw = s[i+1 : end-1]
				}
				i = end
			} else {
				vs := i
				for i < len(s) && httpguts.IsTokenRune(rune(s[i])) {
					i++
				}
				e.raw = s[vs:i]
			}
			i = skipOWS(s, i)
		}
		if i < len(s) && s[i] != ',' {
			e.ok = false
			i = skipElement(s, i)
		}
		p.apply(&e)
	}
	return true
}

func (p *parser) apply(e *element) {
	d := &p.d
	n := e.name
	switch {
	case eqFold(n, "max-age"):
		d.MaxAge = strictDelta(&p.maxAgeSeen, d.MaxAge, e)
	case eqFold(n, "s-maxage"):
		d.SMaxAge = strictDelta(&p.sMaxAgeSeen, d.SMaxAge, e)
	case eqFold(n, "max-stale"):
		if d.MaxStale != -1 || d.MaxStaleAny {
			return // first valid occurrence wins
		}
		if !e.hasVal {
			d.MaxStaleAny = e.ok
			return
		}
		d.MaxStale = lenientDelta(-1, e)
	case eqFold(n, "min-fresh"):
		d.MinFresh = lenientDelta(d.MinFresh, e)
	case eqFold(n, "stale-while-revalidate"):
		d.StaleWhileRevalidate = lenientDelta(d.StaleWhileRevalidate, e)
	case eqFold(n, "stale-if-error"):
		d.StaleIfError = lenientDelta(d.StaleIfError, e)
	case eqFold(n, "no-cache"):
		d.NoCache = true
		addFields(&p.noCacheBare, &d.NoCacheFields, e)
	case eqFold(n, "private"):
		d.Private = true
		addFields(&p.privateBare, &d.PrivateFields, e)
	case eqFold(n, "no-store"):
		d.NoStore = true
	case eqFold(n, "no-transform"):
		d.NoTransform = true
	case eqFold(n, "only-if-cached"):
		d.OnlyIfCached = true
	case eqFold(n, "public"):
		d.Public = true
	case eqFold(n, "must-revalidate"):
		d.MustRevalidate = true
	case eqFold(n, "proxy-revalidate"):
		d.ProxyRevalidate = true
	case eqFold(n, "must-understand"):
		d.MustUnderstand = true
	case eqFold(n, "immutable"):
		d.Immutable = true
	}
}

// strictDelta is the rule for max-age and s-maxage, which decide how long a
// shared cache may serve without asking the origin: anything doubtful (no
// value, invalid value, conflicting duplicates) yields 0, i.e. stale.
func strictDelta(seen *bool, cur int64, e *element) int64 {
	v, valid := int64(0), false
	if e.hasVal && e.ok {
		v, valid = parseDelta(e.raw, e.quoted)
	}
	if !valid {
		v = 0
	}
	if *seen && v != cur {
		v = 0
	}
	*seen = true
	return v
}

// lenientDelta is the rule for the other delta-seconds directives: the first
// valid occurrence counts and an invalid one is as if absent.
func lenientDelta(cur int64, e *element) int64 {
	if cur != -1 || !e.hasVal || !e.ok {
		return cur
	}
	if v, valid := parseDelta(e.raw, e.quoted); valid {
		return v
	}
	return cur
}

// parseDelta parses delta-seconds (1*DIGIT), unescaping quoted-pairs when
// the value was a quoted-string, and clamps to deltaSecondsMax.
func parseDelta(raw string, quoted bool) (int64, bool) {
	if raw == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if quoted && c == '\\' && i+1 < len(raw) {
			i++
			c = raw[i]
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		// Stop accumulating at the clamp; n stays far below int64 overflow.
		if n < deltaSecondsMax {
			n = n*10 + int64(c-'0')
			if n > deltaSecondsMax {
				n = deltaSecondsMax
			}
		}
	}
	return n, true
}

// addFields records one no-cache or private occurrence. A field-name list
// lets a cache reuse the response minus those fields; the bare directive is
// stricter, so whenever the list cannot be trusted the result is bare.
func addFields(bare *bool, fields *[]string, e *element) {
	if *bare {
		return
	}
	if !e.hasVal || !e.ok {
		*bare, *fields = true, nil
		return
	}
	list := e.raw
	if e.quoted {
		list = unquote(list)
	}
	added := false
	for len(list) > 0 {
		var f string
		f, list = cutByte(list, ',')
		f = trimOWS(f)
		if f == "" {
			continue
		}
		if !httpguts.ValidHeaderFieldName(f) || len(*fields) >= maxFieldNames {
			*bare, *fields = true, nil
			return
		}
		added = true
		f = http.CanonicalHeaderKey(f)
		if !contains(*fields, f) {
			*fields = append(*fields, f)
		}
	}
	if !added {
		// no-cache="" names nothing; read it as the bare directive.
		*bare, *fields = true, nil
	}
}

// scanQuoted returns the index just past the quoted-string starting at
// s[i] == '"', and false if it is unterminated or holds a character
// quoted-string does not allow (RFC 9110 section 5.6.4).
func scanQuoted(s string, i int) (int, bool) {
	valid := true
	for i++; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return i + 1, valid
		case c == '\\':
			i++
			if i >= len(s) {
				return len(s), false
			}
			valid = valid && isQuotedText(s[i])
		case !isQuotedText(c):
			// Keep scanning to the closing quote so the element ends where
			// a sender would expect, but the value is unusable.
			valid = false
		}
	}
	return len(s), false
}

// skipElement skips a malformed element up to the next comma outside a
// quoted-string, so junk cannot smuggle directives out of a quoted value.
func skipElement(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ',':
			return i
		case '"':
			i, _ = scanQuoted(s, i)
		default:
			i++
		}
	}
	return i
}

// unquote removes quoted-pair escapes from the inside of a quoted-string.
// It allocates only when there is an escape.
func unquote(s string) string {
	j := 0
	for j < len(s) && s[j] != '\\' {
		j++
	}
	if j == len(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

func cutByte(s string, sep byte) (before, after string) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// eqFold reports whether s equals lower, an ASCII lower-case constant,
// ignoring ASCII case. strings.EqualFold would also fold Unicode (the long
// s, U+017F, matches "s"), which directive names must not do.
func eqFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// isQuotedText reports whether c may appear in a quoted-string, directly or
// after a backslash: HTAB, SP, VCHAR and obs-text, i.e. no other controls.
func isQuotedText(c byte) bool {
	return c == '\t' || (c >= 0x20 && c != 0x7f)
}
