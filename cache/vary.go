package cache

import (
	"bytes"
	"net/http"
	"slices"

	"golang.org/x/net/http/httpguts"
)

// Vary support (RFC 9111 section 4.1). A stored response whose Vary names
// request fields may only be reused for a request whose values of those
// fields match the ones of the request that fetched it. The cache stores
// one entry per variant under the primary key (Keyer) plus a secondary
// key built by VariantKey.
//
// Replacing variants when the origin changes its Vary list is the store's
// job, but the keys make it safe: the variant key names every field it
// covers, so a key built under one Vary list never equals a key built
// under another (except for lists that differ only in spelling, which
// VaryFields canonicalizes), and a store that compares the stored fields
// with slices.Equal before VaryMatches can drop the stale variants.

// VaryFields parses the Vary field lines of a response header into
// canonical header names, sorted and de-duplicated, so that "Accept-Encoding,
// accept-encoding" on two lines and "ACCEPT-ENCODING" give the same list.
// Empty list elements are ignored (RFC 9110 section 5.6.1); no Vary, or an
// empty one, gives nil fields, i.e. a single variant.
//
// star is true when "*" is a member anywhere (RFC 9111 section 4.1: such a
// response never matches), and also when a member is not a valid field name
// (a token) or names a field the gateway sets on the forwarded request
// (see setByGateway): the origin meant the response to vary on something
// this cache cannot key on, and the safe reading is "never matches", not
// "ignore the member". fields is still returned so callers can log it.
func VaryFields(h http.Header) (fields []string, star bool) {
	for _, line := range h["Vary"] {
		for len(line) > 0 {
			var f string
			f, line = cutByte(line, ',')
			f = trimOWS(f)
			switch {
			case f == "":
			case f == "*":
				star = true
			case !httpguts.ValidHeaderFieldName(f):
				star = true
			default:
				f = http.CanonicalHeaderKey(f)
				if setByGateway(f) {
					star = true
				}
				fields = append(fields, f)
			}
		}
	}
	slices.Sort(fields)
	return slices.Compact(fields), star
}

// gatewayFields are the request fields the proxy writes itself on what it
// forwards: from a peer outside trusted_proxies it replaces
// X-Forwarded-For, -Host and -Proto, drops Forwarded, appends to Via, and
// the request id may be its own. The origin's Vary then refers to the
// value it received, which is not the client's value the cache sees: keyed
// on the client's value, one client's response would go to every other
// client, and a forged X-Forwarded-For would pick the variant.
var gatewayFields = [...]string{"Forwarded", "Via", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id"}

// setByGateway reports whether the Vary member name (any case) is one of
// gatewayFields.
func setByGateway(name string) bool {
	for _, g := range gatewayFields {
		if equalFoldASCII(name, g) {
			return true
		}
	}
	return false
}

// VaryMatches reports whether a stored response may be reused for req as
// far as Vary goes: fields and star are VaryFields of the stored response
// and storedKey is the VariantKey of the request that fetched it, computed
// under the same fields. star never matches. With no fields every request
// matches. It allocates nothing unless the key of req exceeds 256 bytes.
func VaryMatches(fields []string, star bool, storedKey []byte, req *http.Request) bool {
	if star {
		return false
	}
	var buf [256]byte
	return bytes.Equal(VariantKey(buf[:0], fields, req), storedKey)
}

// VariantKey appends to dst the secondary (variant) key of req under the
// Vary fields, which must be canonical and sorted as VaryFields returns
// them. It uses the component scheme of the primary key (see Keyer): for
// each field, in order, a part
//
//	NUL "v:" Name "=" normalized-value   when req has the field
//	NUL "v:" Name                        when it does not
//	NUL "r:" Name "=" raw-lines          when a line is malformed (below)
//
// with values escaped by appendEscaped, so no part contains NUL and parts
// cannot run into each other. Absent and empty are different: an origin
// may answer "Accept-Encoding:" (identity only) differently from no
// Accept-Encoding (anything goes), so they must not share a variant.
//
// Normalization, allowed by RFC 9111 section 4.1 for semantically
// equivalent values, treats every value as a list (RFC 9110 section 5.6.1):
//   - the field lines are combined as one list, as if joined with ", ";
//   - elements are split on commas outside quoted-strings, OWS around them
//     is trimmed and empty elements are dropped (recipients must ignore
//     them), so "a,b", "a , b", "a,,b" and two lines "a" and "b" are all
//     "a, b";
//   - inside an element, runs of SP and HTAB outside quoted-strings become
//     one SP; quoted-strings are copied verbatim, as their whitespace and
//     commas are data;
//   - for Accept-Encoding only, elements are lowercased outside
//     quoted-strings (content-codings and parameter names are case
//     insensitive), whitespace around ';' is dropped, and the elements are
//     sorted, since the order of codings carries no meaning (preference is
//     expressed by q): "gzip, br" and "BR,gzip" give one key. Duplicates
//     are kept and q values are not rewritten ("q=1" vs "q=1.0"): those
//     are rare and keeping them apart only costs hit ratio.
//   - for other fields element order is kept, because it may be meaningful
//     (Accept-Language lists preferences in order when q is absent).
//
// Fields that are not lists (Cookie, User-Agent) get the same treatment.
// That is sound for them too: a cookie-string never contains a comma or
// whitespace outside its "; " separators (RFC 6265 section 4.2.1), and
// User-Agent whitespace carries no meaning.
//
// A line with an unterminated quoted-string cannot be split reliably, and
// a quote running from one line into the next would make per-line parsing
// differ from the combined value; such fields are keyed raw instead: the
// "r:" part holds the exact lines, separated by the otherwise unused
// escape 0x01 '2'. That is exact, so malformed values never share a key
// with anything but themselves.
//
// VariantKey allocates nothing when dst has room for about twice the
// Accept-Encoding value (it is sorted in dst's spare capacity) and the
// field has at most maxStackPieces elements.
func VariantKey(dst []byte, fields []string, req *http.Request) []byte {
	for _, name := range fields {
		lines := req.Header[name]
		if len(lines) == 0 {
			dst = append(dst, "\x00v:"...)
			dst = append(dst, name...)
			continue
		}
		if !quotesBalanced(lines) {
			dst = append(dst, "\x00r:"...)
			dst = append(dst, name...)
			dst = append(dst, '=')
			for i, l := range lines {
				if i > 0 {
					dst = append(dst, escByte, '2')
				}
				dst = appendEscaped(dst, l)
			}
			continue
		}
		dst = append(dst, "\x00v:"...)
		dst = append(dst, name...)
		dst = append(dst, '=')
		if name == "Accept-Encoding" {
			dst = appendSortedList(dst, lines)
		} else {
			dst = appendList(dst, lines, false)
		}
	}
	return dst
}

// quotesBalanced reports whether every quoted-string in lines is closed on
// its own line. The scan matches scanQuoted: a backslash escapes the next
// byte, so "a\" is unterminated.
func quotesBalanced(lines []string) bool {
	for _, l := range lines {
		for i := 0; i < len(l); i++ {
			if l[i] != '"' {
				continue
			}
			closed := false
			for i++; i < len(l); i++ {
				if l[i] == '\\' {
					i++
					continue
				}
				if l[i] == '"' {
					closed = true
					break
				}
			}
			if !closed {
				return false
			}
		}
	}
	return true
}

// nextElement returns the next list element of s starting at i (commas
// inside quoted-strings do not split) and the index after its comma.
func nextElement(s string, i int) (elem string, next int) {
	start := i
	for i < len(s) {
		switch s[i] {
		case ',':
			return s[start:i], i + 1
		case '"':
			i, _ = scanQuoted(s, i)
		default:
			i++
		}
	}
	return s[start:], len(s)
}

// appendList appends the normalized elements of lines joined with ", ".
func appendList(dst []byte, lines []string, ae bool) []byte {
	first := true
	for _, l := range lines {
		for i := 0; i < len(l); {
			var e string
			e, i = nextElement(l, i)
			e = trimOWS(e)
			if e == "" {
				continue
			}
			if !first {
				dst = append(dst, ", "...)
			}
			first = false
			dst = appendElement(dst, e, ae)
		}
	}
	return dst
}

// appendElement appends one trimmed, non-empty element, escaped, with
// whitespace runs outside quoted-strings collapsed to one SP. With ae
// (Accept-Encoding) it also lowercases outside quoted-strings and drops the
// whitespace around ';'.
func appendElement(dst []byte, e string, ae bool) []byte {
	for i := 0; i < len(e); {
		c := e[i]
		switch {
		case c == ' ' || c == '\t':
			j := skipOWS(e, i)
			// e is trimmed, so a run is never at either end.
			if !ae || (e[j] != ';' && e[i-1] != ';') {
				dst = append(dst, ' ')
			}
			i = j
		case c == '"':
			end, _ := scanQuoted(e, i)
			dst = appendEscaped(dst, e[i:end])
			i = end
		default:
			if ae {
				c = lowerASCII(c)
			}
			dst = appendEscapedByte(dst, c)
			i++
		}
	}
	return dst
}

func appendEscapedByte(dst []byte, c byte) []byte {
	switch c {
	case 0:
		return append(dst, escByte, '0')
	case escByte:
		return append(dst, escByte, '1')
	}
	return append(dst, c)
}

// span is one element written into scratch space of dst.
type span struct{ start, end int }

// appendSortedList is appendList for Accept-Encoding with the elements
// sorted. The normalized elements are first written after the end of dst
// (scratch), then appended again in sorted order, and the sorted copy is
// moved down over the scratch: no allocation when dst has the capacity.
// Sorting the normalized, escaped bytes is a total order, so the result
// does not depend on the input order.
func appendSortedList(dst []byte, lines []string) []byte {
	base := len(dst)
	var arr [maxStackPieces]span
	spans := arr[:0]
	for _, l := range lines {
		for i := 0; i < len(l); {
			var e string
			e, i = nextElement(l, i)
			e = trimOWS(e)
			if e == "" {
				continue
			}
			start := len(dst)
			dst = appendElement(dst, e, true)
			spans = append(spans, span{start, len(dst)})
		}
	}
	b := dst // for the comparison closures; dst is not grown while sorting
	cmp := func(x, y span) int { return bytes.Compare(b[x.start:x.end], b[y.start:y.end]) }
	if len(spans) > maxStackPieces {
		slices.SortFunc(spans, cmp)
	} else {
		// Insertion sort keeps arr on the stack (see sortPieces).
		for i := 1; i < len(spans); i++ {
			for j := i; j > 0 && cmp(spans[j-1], spans[j]) > 0; j-- {
				spans[j-1], spans[j] = spans[j], spans[j-1]
			}
		}
	}
	scratchEnd := len(dst)
	for i, s := range spans {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		// dst may be reallocated by append; the spans index it afresh.
		dst = append(dst, dst[s.start:s.end]...)
	}
	n := copy(dst[base:], dst[scratchEnd:])
	return dst[:base+n]
}
