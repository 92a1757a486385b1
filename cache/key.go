package cache

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"gateway/internal/fielderr"

	"golang.org/x/net/http/httpguts"
)

// KeyOptions is a route's cache-key configuration; see Validate.
type KeyOptions struct {
	IgnoreParams []string // exact names, or prefixes ending in "*" such as "utm_*"
	Headers      []string // request headers whose values join the key (canonicalized names)
	Cookies      []string // cookie names whose values join the key
}

// Keyer computes primary cache keys for one route. It is immutable after
// NewKeyer and safe for concurrent use.
//
// The key is the sequence of components
//
//	scheme NUL host NUL path NUL query {NUL part}
//
// where every component is escaped so that it contains no NUL (see
// appendEscaped). The components are therefore recovered by splitting on
// NUL, and two requests that differ in any keyed input get different keys:
// bytes cannot shift from one component into its neighbour.
//
// Choices, all made so that a cache shared between clients never serves
// one request's response for another the origin may answer differently
// (keys that differ needlessly only cost hit ratio, never correctness):
//
//   - scheme is "https" when r.TLS is set and "http" otherwise. It never
//     comes from X-Forwarded-Proto or Forwarded, which clients can send.
//   - host is r.Host with ASCII letters lowercased (DNS names are case
//     insensitive) and the scheme's default port (":80" for http, ":443"
//     for https) removed, as those spellings name the same origin. Nothing
//     else is normalized: an empty port, a trailing dot or a leading zero
//     in the port make a different key. X-Forwarded-Host, Forwarded and
//     r.URL.Host are never read.
//   - path is r.URL.EscapedPath() byte for byte. It is not decoded or
//     cleaned: "/a%2Fb", "/a/b" and "/a/./b" may route differently at the
//     origin, so each is its own entry.
//   - query is r.URL.RawQuery split on '&'. Empty pieces are dropped, so
//     "?", "?&" and no query at all are the same key: every common query
//     parser (net/url, PHP, Rails, Express) skips empty pieces. Pieces
//     whose name, percent-decoded, matches IgnoreParams are dropped; the
//     rest are sorted by raw name, then raw value, keeping duplicates, and
//     joined with '&'. Pieces are kept encoded exactly as received, so
//     "a=%20", "a=+" and "a=%41" vs "a=A" stay distinct: decoding would
//     equate spellings some origins tell apart. ';' is not a separator
//     (net/url rejects it; other parsers disagree), so it stays inside a
//     piece, which can only make keys more distinct.
//   - one part per configured header (in sorted name order, so reordering
//     the configuration keeps keys): "h:Name=value" for every value in
//     order, or "h:Name" when the header is absent. Absent and empty are
//     different keys because origins may treat them differently (an empty
//     Accept-Encoding means identity; a missing one means anything).
//   - one part per configured cookie (sorted): "c:name=value" for every
//     cookie of that name in order, "n:name" for a bare "name" without
//     '=', or "c:name" when no cookie matches. See appendCookies for how
//     the Cookie header is scanned.
//
// The request method is not part of the key: the caller decides which
// methods are cached, and HEAD may be answered from a stored GET (RFC 9111
// section 4). Vary is applied on top of this primary key by the caller.
type Keyer struct {
	ignoreExact  map[string]struct{}
	ignorePrefix []string
	headers      []string // canonical, sorted, unique
	cookies      []string // sorted, unique (case-insensitively)
}

// Validate reports the problems with o: empty names, header and cookie
// names that are not valid tokens, a '*' in an ignored parameter anywhere
// but at the end, a bare "*" (which would drop the whole query and is
// almost certainly a mistake), and duplicates, which are likely typos.
// Each list is checked on its own and its first problem reported, as a
// *fielderr.Error naming the field (IgnoreParams, Headers or Cookies)
// and the entry; the problems of several lists are joined.
func (o KeyOptions) Validate() error {
	return errors.Join(
		firstError("IgnoreParams", o.IgnoreParams, checkIgnoreParams),
		firstError("Headers", o.Headers, checkHeaders),
		firstError("Cookies", o.Cookies, checkCookies),
	)
}

// firstError runs check over names and reports its first problem at
// field.
func firstError(field string, names []string, check func([]string) (int, string)) error {
	if i, msg := check(names); msg != "" {
		return fielderr.At("cache key", field, i, msg)
	}
	return nil
}

func checkIgnoreParams(params []string) (int, string) {
	var exact, prefixes []string
	for i, p := range params {
		star := strings.IndexByte(p, '*')
		switch {
		case p == "":
			return i, "empty ignored parameter name"
		case p == "*":
			return i, `ignored parameter "*" would ignore the whole query`
		case star >= 0 && star < len(p)-1:
			return i, fmt.Sprintf("ignored parameter %q: '*' is only allowed at the end", p)
		case star >= 0:
			if slices.Contains(prefixes, p[:len(p)-1]) {
				return i, fmt.Sprintf("duplicate ignored parameter %q", p)
			}
			prefixes = append(prefixes, p[:len(p)-1])
		default:
			if slices.Contains(exact, p) {
				return i, fmt.Sprintf("duplicate ignored parameter %q", p)
			}
			exact = append(exact, p)
		}
	}
	return 0, ""
}

func checkHeaders(headers []string) (int, string) {
	var seen []string
	for i, h := range headers {
		if !httpguts.ValidHeaderFieldName(h) {
			return i, fmt.Sprintf("invalid header name %q", h)
		}
		c := http.CanonicalHeaderKey(h)
		if slices.Contains(seen, c) {
			return i, fmt.Sprintf("duplicate header %q", h)
		}
		seen = append(seen, c)
	}
	return 0, ""
}

func checkCookies(cookies []string) (int, string) {
	for i, c := range cookies {
		// Cookie names are tokens (RFC 6265 section 4.1.1); net/http skips
		// cookies with other names.
		if !httpguts.ValidHeaderFieldName(c) {
			return i, fmt.Sprintf("invalid cookie name %q", c)
		}
		for _, prev := range cookies[:i] {
			if equalFoldASCII(prev, c) {
				return i, fmt.Sprintf("duplicate cookie %q (names match case-insensitively)", c)
			}
		}
	}
	return 0, ""
}

// NewKeyer checks o (see Validate) and returns its Keyer.
func NewKeyer(o KeyOptions) (*Keyer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	k := &Keyer{ignoreExact: make(map[string]struct{})}
	for _, p := range o.IgnoreParams {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			k.ignorePrefix = append(k.ignorePrefix, prefix)
		} else {
			k.ignoreExact[p] = struct{}{}
		}
	}
	for _, h := range o.Headers {
		k.headers = append(k.headers, http.CanonicalHeaderKey(h))
	}
	k.cookies = append(k.cookies, o.Cookies...)
	slices.Sort(k.headers)
	slices.Sort(k.cookies)
	return k, nil
}

// Key returns the primary cache key for r. The key is built in a stack
// buffer, so the only allocation is the returned string, unless the key
// exceeds 256 bytes, the query has more than maxStackPieces pieces or a
// parameter name checked against IgnoreParams exceeds maxStackName bytes.
func (k *Keyer) Key(r *http.Request) string {
	var buf [256]byte
	return string(k.AppendKey(buf[:0], r))
}

// AppendKey appends the key of r to dst and returns the extended slice.
// It allocates nothing when dst has room, so the hot path can reuse a
// pooled buffer.
func (k *Keyer) AppendKey(dst []byte, r *http.Request) []byte {
	https := r.TLS != nil
	if https {
		dst = append(dst, "https"...)
	} else {
		dst = append(dst, "http"...)
	}
	dst = append(dst, 0)

	host := r.Host
	if https {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	dst = appendLowerEscaped(dst, host)
	dst = append(dst, 0)

	dst = appendEscaped(dst, r.URL.EscapedPath())
	dst = append(dst, 0)

	dst = k.appendQuery(dst, r.URL.RawQuery)

	for _, name := range k.headers {
		vs := r.Header[name]
		if len(vs) == 0 {
			dst = append(dst, "\x00h:"...)
			dst = append(dst, name...)
			continue
		}
		for _, v := range vs {
			dst = append(dst, "\x00h:"...)
			dst = append(dst, name...)
			dst = append(dst, '=')
			dst = appendEscaped(dst, v)
		}
	}
	if len(k.cookies) > 0 {
		cookieLines := r.Header["Cookie"]
		for _, name := range k.cookies {
			dst = appendCookies(dst, name, cookieLines)
		}
	}
	return dst
}

const (
	// maxStackPieces query pieces are sorted in a stack array; more
	// spill to the heap, which only very long queries pay for.
	maxStackPieces = 32
	// maxStackName is the longest parameter name decoded on the stack
	// to be compared against IgnoreParams.
	maxStackName = 64
)

// appendQuery appends the kept query pieces of raw, sorted and joined with
// '&'. Pieces are substrings of raw, so only the slice holding them may
// need the heap.
func (k *Keyer) appendQuery(dst []byte, raw string) []byte {
	if strings.IndexByte(raw, '&') < 0 {
		// None or one piece, as most queries: nothing to sort, and no
		// array of pieces to clear.
		if raw != "" && !k.ignored(raw) {
			dst = appendEscaped(dst, raw)
		}
		return dst
	}
	var arr [maxStackPieces]string
	pieces := arr[:0]
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" || k.ignored(piece) {
			continue
		}
		pieces = append(pieces, piece)
	}
	sortPieces(pieces)
	for i, p := range pieces {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = appendEscaped(dst, p)
	}
	return dst
}

// ignored reports whether the query piece's name, percent-decoded the way
// query parsers decode it ('+' is a space), is one the route ignores. The
// name is decoded because origins see "utm%5Fsource" as utm_source. A name
// with a malformed escape is kept: keeping a parameter is always safe.
func (k *Keyer) ignored(piece string) bool {
	if len(k.ignoreExact) == 0 && len(k.ignorePrefix) == 0 {
		return false
	}
	name, _, _ := strings.Cut(piece, "=")
	var arr [maxStackName]byte
	dec, ok := unescapeQuery(arr[:0], name)
	if !ok {
		return false
	}
	// string(dec) in a map index or comparison does not allocate.
	if _, ok := k.ignoreExact[string(dec)]; ok {
		return true
	}
	for _, p := range k.ignorePrefix {
		if len(dec) >= len(p) && string(dec[:len(p)]) == p {
			return true
		}
	}
	return false
}

// unescapeQuery appends s with %XX escapes decoded and '+' as space, as
// url.QueryUnescape does, reporting false for a malformed escape.
func unescapeQuery(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			dst = append(dst, ' ')
		case '%':
			if i+2 >= len(s) {
				return dst, false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return dst, false
			}
			dst = append(dst, hi<<4|lo)
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// comparePieces orders query pieces by name alone, decoded as the origin
// decodes it; the sort is stable, so the values of a repeated name keep
// their order. Origins read the first value of a repeated parameter (Go,
// Express) or the last (PHP): "a=1&a=2" and "a=2&a=1" are different
// requests and must not share an entry, while "b=2&a=1" and "a=1&b=2"
// are one. Comparing decoded names keeps "a" and "%61", one parameter to
// the origin, in their order too.
func comparePieces(a, b string) int {
	an, _, _ := strings.Cut(a, "=")
	bn, _, _ := strings.Cut(b, "=")
	i, j := 0, 0
	for i < len(an) && j < len(bn) {
		ca, ni := queryByte(an, i)
		cb, nj := queryByte(bn, j)
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
		i, j = ni, nj
	}
	switch {
	case i < len(an):
		return 1
	case j < len(bn):
		return -1
	}
	return 0
}

// queryByte decodes the byte of query text s at i as url.QueryUnescape
// does ('+' is a space, %XX the byte; a malformed escape is taken as it
// is) and returns it with the index after it.
func queryByte(s string, i int) (byte, int) {
	switch s[i] {
	case '+':
		return ' ', i + 1
	case '%':
		if i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				return hi<<4 | lo, i + 3
			}
		}
	}
	return s[i], i + 1
}

// sortPieces sorts in place, stably. Small slices use insertion sort,
// which keeps the stack array from escaping to the heap; large ones sort
// with each piece's position as the last criterion, so that a hostile
// query with many pieces costs O(n log n), not O(n^2) (nor the
// O(n log² n) moves of slices.SortStableFunc).
func sortPieces(p []string) {
	if len(p) > maxStackPieces {
		type piece struct {
			s string
			i int
		}
		ps := make([]piece, len(p))
		for i, s := range p {
			ps[i] = piece{s, i}
		}
		slices.SortFunc(ps, func(a, b piece) int {
			if c := comparePieces(a.s, b.s); c != 0 {
				return c
			}
			return a.i - b.i
		})
		for i := range ps {
			p[i] = ps[i].s
		}
		return
	}
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && comparePieces(p[j-1], p[j]) > 0; j-- {
			p[j-1], p[j] = p[j], p[j-1]
		}
	}
}

// appendCookies appends the parts for cookie name from the Cookie field
// lines. It scans the lines as http.Request.Cookies does (split on ';',
// trim, split at the first '='), without allocating, but it is more
// inclusive wherever origins' parsers disagree, since a cookie the origin
// reads but the key misses would let one client poison the entry for
// others:
//   - names match ASCII case-insensitively (some frameworks, e.g.
//     ASP.NET, look cookies up that way) and the received spelling joins
//     the key, so "SID=1" and "sid=1" remain distinct keys;
//   - the value is kept raw: quotes are not stripped and values net/http
//     would reject are still keyed;
//   - there is no cap on the number of cookies;
//   - a bare "name" without '=' is keyed as "n:name", distinct both from
//     "name=" (net/http's reading) and from absence (browsers' reading of
//     it as a nameless cookie).
func appendCookies(dst []byte, name string, lines []string) []byte {
	found := false
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = trimCookieSpace(part)
			n, v, hasEq := strings.Cut(part, "=")
			n = trimCookieSpace(n)
			if !equalFoldASCII(n, name) {
				continue
			}
			found = true
			if !hasEq {
				dst = append(dst, "\x00n:"...)
				dst = append(dst, n...) // a token: equal to name but for case
				continue
			}
			dst = append(dst, "\x00c:"...)
			dst = append(dst, n...)
			dst = append(dst, '=')
			dst = appendEscaped(dst, v)
		}
	}
	if !found {
		dst = append(dst, "\x00c:"...)
		dst = append(dst, name...)
	}
	return dst
}

// trimOWS trims ASCII whitespace as textproto.TrimString does.
func trimCookieSpace(s string) string {
	for s != "" && isASCIISpace(s[0]) {
		s = s[1:]
	}
	for s != "" && isASCIISpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isASCIISpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r'
}

// equalFoldASCII compares ASCII case-insensitively. strings.EqualFold
// would also fold Unicode (the Kelvin sign matches 'k'), which cookie
// parsers do not do.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// Component escaping. NUL separates components, so inside one it is
// written as 0x01 '0', and the escape byte 0x01 itself as 0x01 '1'. The
// mapping is reversible, so distinct components stay distinct and none
// contains NUL. net/http already rejects control bytes in request lines
// and header values, so this costs nothing in practice; it guards requests
// built in code.
const escByte = 0x01

func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > escByte {
			continue
		}
		dst = append(dst, s[:i]...)
		return appendEscapedSlow(dst, s[i:])
	}
	return append(dst, s...)
}

func appendEscapedSlow(dst []byte, s string) []byte { return appendEscapedCase(dst, s, false) }

// appendLowerEscaped is appendEscaped with ASCII letters lowercased.
func appendLowerEscaped(dst []byte, s string) []byte { return appendEscapedCase(dst, s, true) }

func appendEscapedCase(dst []byte, s string, lower bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			dst = append(dst, escByte, '0')
		case escByte:
			dst = append(dst, escByte, '1')
		default:
			if lower {
				c = lowerASCII(c)
			}
			dst = append(dst, c)
		}
	}
	return dst
}
