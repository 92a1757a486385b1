package compress

import (
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Encoding names as they appear in Content-Encoding.
const (
	Identity = "identity"
	Gzip     = "gzip"
	Brotli   = "br"
	Zstd     = "zstd"
)

// DefaultPreference is the server's order for ties: brotli and zstd
// compress text better than gzip at comparable speed, so they win when the
// client has no preference between them.
var DefaultPreference = []string{Brotli, Zstd, Gzip}

// maxElements bounds the work done per request: a client can send an
// arbitrarily long Accept-Encoding, but no real client lists more than a
// handful of codings. A header with more non-empty elements than this,
// across all field lines, is treated as malformed (identity): ignoring
// the rest could ignore a q=0 that refuses the coding the first ones
// would have chosen.
const maxElements = 32

// Indexes into the weight table built by parse.
const (
	idxIdentity = iota
	idxGzip
	idxBrotli
	idxZstd
	idxStar
	numIdx
)

// unset marks a coding the client did not list. Weights are kept in
// thousandths (0..1000) because qvalues have at most three decimals, which
// makes comparison exact and avoids floating point entirely.
const unset = -1

// implicitIdentity is the weight given to identity when the client neither
// lists it nor uses "*". RFC 9110 makes identity acceptable by default but
// gives it no weight; ranking it below the smallest expressible qvalue
// (0.001) means any compression coding the client explicitly accepts is
// preferred, which is what clients listing codings want.
const implicitIdentity = 0

var names = [numIdx]string{Identity, Gzip, Brotli, Zstd, "*"}

// codingIndex maps a coding token (case-insensitive, RFC 9110 section
// 8.4.1) to its table index, or -1 for codings the gateway never produces
// (deflate, compress, ...), which therefore do not influence the choice.
func codingIndex(name string) int {
	switch {
	case strings.EqualFold(name, Gzip), strings.EqualFold(name, "x-gzip"):
		// x-gzip is the registered alias of gzip (RFC 9110 section 8.4.1.3).
		return idxGzip
	case strings.EqualFold(name, Brotli):
		return idxBrotli
	case strings.EqualFold(name, Zstd):
		return idxZstd
	case strings.EqualFold(name, Identity):
		return idxIdentity
	case name == "*":
		return idxStar
	}
	return -1
}

// Negotiate picks the content coding for a response.
//
// acceptEncoding holds every Accept-Encoding field line of the request, as
// returned by r.Header.Values("Accept-Encoding"); lines are combined as one
// comma-separated list. offer lists the codings the server is willing to
// produce, most preferred first; it should be a subset of br, zstd and gzip
// (matched case-insensitively; "identity" and unknown names are ignored
// because identity is always possible unless the client refuses it).
//
// Rules, following RFC 9110 sections 12.4.2 and 12.5.3:
//
//   - No Accept-Encoding field at all (nil or empty slice) yields identity:
//     the RFC lets the server pick anything, but a client that says
//     nothing may not decode anything.
//   - An empty field value means "no coding wanted": identity.
//   - The highest q wins; q=0 means "not acceptable". "*" gives its weight
//     to every coding not listed explicitly, including identity.
//   - Ties are broken by the order of offer, and identity loses ties to
//     any offered compression coding ("gzip, identity" yields gzip).
//     Identity that is acceptable only implicitly loses to any acceptable
//     compression coding.
//   - When a coding is listed more than once, its first occurrence wins,
//     unless a later one refuses it: a q=0 anywhere in the header stands,
//     so a coding the client refused is never chosen.
//   - Parameters other than q are ignored; a repeated q is malformed.
//   - A header of more than 32 non-empty elements is treated as
//     malformed (below): no real client sends one, and judging it by its
//     first elements only could pick a coding it refuses further on.
//   - Any malformed element or qvalue makes the whole header fall back to
//     identity with ok=true: guessing at a broken header could send a
//     coding the client cannot decode, while identity is always safe.
//
// The returned coding is always Identity or a canonical name from offer
// (x-gzip is answered with gzip). ok is false only when the client refuses
// every offer and identity too ("identity;q=0", or "*;q=0" without an
// identity entry); coding is then Identity. The caller may send identity
// anyway, which RFC 9110 section 12.1 allows (a server may disregard the
// field rather than answer 406 Not Acceptable), or send 406 if configured.
//
// Negotiate does not allocate.
func Negotiate(acceptEncoding []string, offer []string) (coding string, ok bool) {
	if len(acceptEncoding) == 0 {
		return Identity, true
	}
	var w [numIdx]int
	if !parse(acceptEncoding, &w) {
		return Identity, true
	}

	// Effective weight of identity: explicit entry, else "*", else the
	// implicit default (acceptable, but below every listed coding).
	idQ := w[idxIdentity]
	implicit := false
	if idQ == unset {
		idQ = w[idxStar]
		if idQ == unset {
			idQ, implicit = implicitIdentity, true
		}
	}

	best, bestQ := "", 0
	for _, o := range offer {
		i := codingIndex(o)
		if i != idxGzip && i != idxBrotli && i != idxZstd {
			continue
		}
		q := w[i]
		if q == unset {
			q = w[idxStar]
		}
		// Strictly greater keeps the earlier (preferred) offer on ties.
		if q > bestQ {
			best, bestQ = names[i], q
		}
	}
	switch {
	case best != "" && bestQ >= idQ:
		return best, true
	case idQ > 0 || implicit:
		return Identity, true
	}
	return Identity, false
}

// parse fills w with the weight (thousandths) of each known coding, unset
// for those not listed. It reports false if the header is malformed or
// has more than maxElements elements. It is a hand-written scanner rather
// than strings.Split so that negotiation does not allocate on the request
// path.
func parse(lines []string, w *[numIdx]int) bool {
	for i := range w {
		w[i] = unset
	}
	n := 0
	for _, line := range lines {
		i := 0
		for {
			i = skipOWS(line, i)
			if i == len(line) {
				break
			}
			if line[i] == ',' {
				// Empty list elements are legal (RFC 9110 section 5.6.1)
				// and carry no meaning.
				i++
				continue
			}
			if n == maxElements {
				return false
			}
			n++
			start := i
			i = skipToken(line, i)
			if i == start {
				return false
			}
			name := line[start:i]
			next, q, ok := parseParams(line, i)
			if !ok {
				return false
			}
			i = next
			if q == unset {
				q = 1000
			}
			// The first weight given counts, but a refusal (q=0) counts
			// wherever it is.
			if k := codingIndex(name); k >= 0 && (w[k] == unset || q == 0) {
				w[k] = q
			}
		}
	}
	return true
}

// parseParams scans the ";"-separated parameters following a coding up to
// the end of the element (a comma or end of line, not consumed). It returns
// the q weight in thousandths, or unset if there is none.
func parseParams(s string, i int) (next, q int, ok bool) {
	q = unset
	for {
		i = skipOWS(s, i)
		if i == len(s) || s[i] == ',' {
			return i, q, true
		}
		if s[i] != ';' {
			return i, q, false
		}
		i = skipOWS(s, i+1)
		ps := i
		i = skipToken(s, i)
		// No whitespace around "=": RFC 9110 section 5.6.6 has none, and
		// rejecting it keeps the grammar unambiguous.
		if i == ps || i == len(s) || s[i] != '=' {
			return i, q, false
		}
		isQ := i-ps == 1 && (s[ps] == 'q' || s[ps] == 'Q')
		i++
		if i < len(s) && s[i] == '"' {
			// A quoted value is fine for parameters we ignore, but the
			// weight grammar does not allow quoting a qvalue.
			if isQ {
				return i, q, false
			}
			if i, ok = skipQuoted(s, i); !ok {
				return i, q, false
			}
			continue
		}
		vs := i
		i = skipToken(s, i)
		if i == vs {
			return i, q, false
		}
		if isQ {
			// Two weights for one coding are contradictory: treat as
			// malformed rather than guess.
			if q != unset {
				return i, q, false
			}
			if q, ok = parseQ(s[vs:i]); !ok {
				return i, q, false
			}
		}
	}
}

// parseQ parses a qvalue (RFC 9110 section 12.4.2):
//
//	qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
//
// into thousandths.
func parseQ(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	if len(s) > 1 && s[1] != '.' {
		return 0, false
	}
	v := int(s[0]-'0') * 1000
	scale := 100
	for j := 2; j < len(s); j++ {
		c := s[j]
		if c < '0' || c > '9' || (s[0] == '1' && c != '0') {
			return 0, false
		}
		v += int(c-'0') * scale
		scale /= 10
	}
	return v, true
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func skipToken(s string, i int) int {
	for i < len(s) && httpguts.IsTokenRune(rune(s[i])) {
		i++
	}
	return i
}

// skipQuoted skips a quoted-string starting at s[i] == '"' (RFC 9110
// section 5.6.4) and returns the index just past the closing quote.
func skipQuoted(s string, i int) (int, bool) {
	for i++; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
			if i == len(s) || !(s[i] == '\t' || s[i] >= 0x20 && s[i] != 0x7f) {
				return i, false
			}
		case c == '\t' || c >= 0x20 && c != 0x7f:
			// qdtext, including obs-text.
		default:
			return i, false
		}
	}
	return i, false
}
