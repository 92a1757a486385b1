package compress

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
)

// DefaultMinSize is the Content-Length below which responses are sent as
// they are when Options.MinSize is 0: under about a kilobyte the coding's
// framing and the CPU cost outweigh the bytes saved.
const DefaultMinSize = 1024

// defaultTypes is the allowlist used when Options.Types is empty: text,
// JSON, JavaScript, XML, SVG, WebAssembly and the font formats that are
// not compressed already (WOFF and WOFF2 are).
var defaultTypes = []string{
	"text/*",
	"application/json",
	"application/*+json",
	"application/javascript",
	"application/x-javascript",
	"application/xml",
	"application/*+xml",
	"application/wasm",
	"image/svg+xml",
	"application/x-ndjson",
	"application/graphql-response+json",
	"font/ttf",
	"font/otf",
	"application/vnd.ms-fontobject",
}

// DefaultTypes returns the built-in MIME allowlist, the one used when
// Options.Types is empty.
func DefaultTypes() []string { return append([]string(nil), defaultTypes...) }

// Options configure a Compressor. The zero value of each field stands
// for its default.
type Options struct {
	// Codings are the codings offered, in server preference order: when
	// the client gives several the same weight, the earlier one wins.
	// Allowed: br, zstd, gzip (case-insensitive), each at most once.
	// Empty: br, zstd, gzip.
	Codings []string
	// StreamLevel is the level for responses compressed as they stream
	// through; 0 means Fastest.
	StreamLevel Level
	// CachedLevel is the level Encode uses, for cached objects that are
	// compressed once and kept; 0 means Default.
	CachedLevel Level
	// MinSize: a response whose Content-Length is below it is sent as it
	// is. A response of unknown length is compressed, and one with
	// Content-Length 0 never is, so 1 means "any size". 0 means
	// DefaultMinSize; negative is an error.
	MinSize int64
	// Types is the MIME allowlist, each entry an exact type
	// ("application/json"), a whole top-level type ("text/*") or a
	// structured-syntax suffix ("application/*+json"), matched
	// case-insensitively against the Content-Type without its
	// parameters. "*/*" is refused: most binary formats (images, video,
	// archives) are compressed already. Empty: see DefaultTypes.
	Types []string
}

// OptionError is one problem Validate found; Validate (and so New)
// returns all of them joined (errors.Join), so callers such as the
// config mapping can point at each field.
type OptionError struct {
	// Field is the Options field: Codings, StreamLevel, CachedLevel,
	// MinSize or Types.
	Field string
	// Index is the position in Codings or Types, -1 for other fields.
	Index int
	Msg   string
}

func (e *OptionError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("compress: %s[%d]: %s", e.Field, e.Index, e.Msg)
	}
	return fmt.Sprintf("compress: %s: %s", e.Field, e.Msg)
}

// Compressor applies one route's compression policy: the streaming
// middleware (Wrap), and the pieces a cache needs to store and serve
// encoded objects itself (Eligible, Choose, Encode, ETag). It is safe
// for concurrent use.
type Compressor struct {
	codings []string // canonical names, preference order
	stream  Level
	cached  Level
	minSize int64
	types   []typePattern
	enc     *Encoders
	stats   [numStats]counters
	// chosen remembers Choose's answer to recent Accept-Encoding values,
	// in a slot picked by the value's length and last byte: clients send
	// few distinct ones, and each is then negotiated once, not per
	// request.
	chosen [numChosen]atomic.Pointer[choice]
}

// numChosen is the number of Accept-Encoding values Choose remembers, at
// most: a power of two.
const numChosen = 16

// maxChosenLen bounds the values Choose remembers; a longer one, which
// no common client sends, is negotiated each time.
const maxChosenLen = 128

// choice is the coding Choose picked for the Accept-Encoding value ae.
type choice struct{ ae, coding string }

// Stats slots: the three codings by codingIdx, then decoding.
const (
	statDecoded = numCodings
	numStats    = numCodings + 1
	// DecodedStats is the Stats key for upstream-encoded bodies decoded
	// for clients that do not accept their coding.
	DecodedStats = "identity-decoded"
)

var statNames = [numStats]string{Gzip, Brotli, Zstd, DecodedStats}

type counters struct{ responses, in, out atomic.Uint64 }

func (c *counters) add(in, out uint64) {
	c.responses.Add(1)
	c.in.Add(in)
	c.out.Add(out)
}

// encoders is shared by every Compressor: pools are per coding and
// level, so routes with the same levels reuse each other's encoders.
var encoders = NewEncoders()

// Validate reports every problem with o, each an *OptionError, joined
// (errors.Join), so that a caller such as the config mapping can point
// at each field. New calls it.
func (o Options) Validate() error {
	var errs []error
	bad := func(field string, i int, format string, args ...any) {
		errs = append(errs, &OptionError{Field: field, Index: i, Msg: fmt.Sprintf(format, args...)})
	}
	var seen [numCodings]bool
	for i, name := range o.Codings {
		canon := canonicalCoding(name)
		switch {
		case canon == "" && strings.EqualFold(strings.TrimSpace(name), Identity):
			bad("Codings", i, "identity is always available and is not offered (want br, zstd or gzip)")
		case canon == "":
			bad("Codings", i, "unknown coding %q (want br, zstd or gzip)", name)
		case seen[codingIdx(canon)]:
			bad("Codings", i, "duplicate coding %q", name)
		default:
			seen[codingIdx(canon)] = true
		}
	}
	for _, l := range []struct {
		field string
		v     Level
	}{{"StreamLevel", o.StreamLevel}, {"CachedLevel", o.CachedLevel}} {
		if l.v != 0 && (l.v < Fastest || l.v > Best) {
			bad(l.field, -1, "invalid level %d (want Fastest, Default or Best)", int(l.v))
		}
	}
	if o.MinSize < 0 {
		bad("MinSize", -1, "%d must not be negative", o.MinSize)
	}
	var types []typePattern
	for i, s := range o.Types {
		p, err := parseTypePattern(s)
		if err != nil {
			bad("Types", i, "%v", err)
			continue
		}
		if slices.Contains(types, p) {
			bad("Types", i, "duplicate type %q", s)
			continue
		}
		types = append(types, p)
	}
	return errors.Join(errs...)
}

// New checks o (see Validate) and builds a Compressor.
func New(o Options) (*Compressor, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := &Compressor{enc: encoders, stream: o.StreamLevel, cached: o.CachedLevel, minSize: o.MinSize}
	codings := o.Codings
	if len(codings) == 0 {
		codings = DefaultPreference
	}
	for _, name := range codings {
		c.codings = append(c.codings, canonicalCoding(name))
	}
	if c.stream == 0 {
		c.stream = Fastest
	}
	if c.cached == 0 {
		c.cached = Default
	}
	if c.minSize == 0 {
		c.minSize = DefaultMinSize
	}
	types := o.Types
	if len(types) == 0 {
		types = defaultTypes
	}
	for _, s := range types {
		p, _ := parseTypePattern(s) // checked by Validate; the defaults are good
		c.types = append(c.types, p)
	}
	return c, nil
}

// canonicalCoding returns the Content-Encoding token for a coding this
// package produces, matched case-insensitively, or "".
func canonicalCoding(name string) string {
	for _, c := range [...]string{Brotli, Zstd, Gzip} {
		if strings.EqualFold(name, c) {
			return c
		}
	}
	return ""
}

// ParseLevel reads a level as the config writes it: fastest, default or
// best.
func ParseLevel(s string) (Level, error) {
	for l := Fastest; l < numLevels; l++ {
		if s == l.String() {
			return l, nil
		}
	}
	return 0, fmt.Errorf("invalid level %q (want fastest, default or best)", s)
}

// Codings returns the offered codings, canonical, in preference order.
func (c *Compressor) Codings() []string { return append([]string(nil), c.codings...) }

// Eligible reports whether a response with this status and header may be
// sent compressed to a request of method m:
//
//   - status 200, 201, 202 or 203, or any 4xx or 5xx (error pages and
//     problem documents compress like any other body). Never 1xx, 204,
//     205, 206 (a byte range of the identity representation), 3xx (304
//     has no body, redirect bodies are a few bytes) or other 2xx;
//   - any method but CONNECT. HEAD is eligible exactly when GET would
//     be, so that its headers are those of GET (RFC 9110 section 9.3.2);
//     the middleware just writes no body;
//   - no content coding yet (Content-Encoding absent or identity);
//   - no Cache-Control: no-transform (RFC 9110 section 7.7);
//   - no Content-Range;
//   - a Content-Type in the allowlist; a response without one is not
//     compressed, since its type is unknown;
//   - Content-Length absent, or at least MinSize and not 0.
//
// Eligible does not look at the request's Accept-Encoding; Choose does.
func (c *Compressor) Eligible(status int, h http.Header, method string) bool {
	if !eligibleStatus(status) || method == http.MethodConnect {
		return false
	}
	if coding, _ := contentCoding(h); coding != "" {
		return false
	}
	if len(h["Content-Range"]) > 0 || hasNoTransform(h) {
		return false
	}
	ct := h["Content-Type"]
	if len(ct) == 0 || !c.typeAllowed(ct[0]) {
		return false
	}
	if cl := h["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64); err == nil && (n == 0 || n < c.minSize) {
			return false
		}
	}
	return true
}

func eligibleStatus(code int) bool {
	return code >= 200 && code <= 203 || code >= 400 && code <= 599
}

// Choose negotiates the request's Accept-Encoding against the offered
// codings (see Negotiate) and returns the coding to use, or "" for
// identity. A client that refuses identity and every offered coding gets
// identity all the same, which RFC 9110 section 12.5.3 allows.
func (c *Compressor) Choose(r *http.Request) string {
	// Indexed directly: the key is canonical already.
	ae := r.Header["Accept-Encoding"]
	if len(ae) != 1 || len(ae[0]) == 0 || len(ae[0]) > maxChosenLen {
		return c.negotiate(ae)
	}
	v := ae[0]
	slot := &c.chosen[(len(v)^int(v[len(v)-1]))&(numChosen-1)]
	if ch := slot.Load(); ch != nil && ch.ae == v {
		return ch.coding
	}
	coding := c.negotiate(ae)
	slot.Store(&choice{strings.Clone(v), coding})
	return coding
}

// negotiate is Choose without memory.
func (c *Compressor) negotiate(ae []string) string {
	coding, _ := Negotiate(ae, c.codings)
	if coding == Identity {
		return ""
	}
	return coding
}

// Encode appends src encoded with coding at the CachedLevel to dst, with
// pooled encoders, for objects that are compressed once and stored. It
// counts one response and the bytes in and out in the coding's Stats.
// coding is br, zstd or gzip (canonical); it need not be among the
// offered ones.
func (c *Compressor) Encode(dst []byte, coding string, src []byte) ([]byte, error) {
	n := len(dst)
	out, err := c.enc.Encode(dst, coding, c.cached, src)
	if err != nil {
		return out, err
	}
	c.stats[codingIdx(coding)].add(uint64(len(src)), uint64(len(out)-n))
	return out, nil
}

// ETag returns the validator to send with a body encoded with coding,
// given the one of the unencoded representation. A strong validator
// "x" becomes "x-<coding>": a strong validator promises byte-for-byte
// identity, so each encoding needs its own. A weak one (W/"x") is kept,
// as weak comparison already holds across content codings; an empty or
// malformed one is returned as it is, and so is any validator when
// coding is "" or identity.
func ETag(etag, coding string) string {
	if coding == "" || coding == Identity || !isStrongETag(etag) {
		return etag
	}
	return etag[:len(etag)-1] + "-" + coding + `"`
}

// isStrongETag reports whether s is a well-formed strong entity-tag
// (RFC 9110 section 8.8.3): a quoted string of etagc.
func isStrongETag(s string) bool {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if b := s[i]; b == '"' || b < 0x21 || b == 0x7f {
			return false
		}
	}
	return true
}

// weakETag returns the weak form of a strong validator, for a body the
// gateway decoded: the bytes differ from the upstream's but the content
// is the same.
func weakETag(s string) string {
	if isStrongETag(s) {
		return "W/" + s
	}
	return s
}

// SetEncoding rewrites the header of an eligible response (see
// Eligible) that is sent with coding, as Wrap does, for a handler that
// encodes the body itself, such as a cache serving an object stored
// encoded: it sets Content-Encoding, gives the ETag the coding's suffix
// (see ETag), adds Accept-Encoding to Vary (merged, not when Vary is
// "*"), and removes Content-Length, Accept-Ranges and the content
// digests (Content-MD5, Content-Digest, Repr-Digest, Digest), which
// describe other bytes. A caller that holds the whole encoded body sets
// Content-Length again afterwards. With coding "" or identity only Vary
// is added: the response is eligible, so another client's would differ.
func SetEncoding(h http.Header, coding string) {
	addVary(h)
	if coding == "" || coding == Identity {
		return
	}
	h.Set("Content-Encoding", coding)
	transformed(h)
	if et := h["Etag"]; len(et) > 0 {
		h.Set("Etag", ETag(et[0], coding))
	}
}

// Skipper is implemented by the ResponseWriter that Wrap passes down.
// A handler given that writer calls SkipCompression, before it writes
// the header, to have its response passed through as written.
type Skipper interface{ SkipCompression() }

// PassThrough marks the response whose header is h to be passed through
// Wrap as written, like SkipCompression, for a handler that holds the
// route's Compressor rather than its writer: a cache serving bytes that
// are final (an object it stored, or encoded, itself), whatever writers
// other middleware put between it and Wrap. The mark travels with the
// header, which every writer passes on, and must be set before the
// header is written; Wrap removes it. It is not a valid field name, so it
// is never sent should no Wrap be in front.
func (c *Compressor) PassThrough(h http.Header) { h[passThroughKey] = nil }

// passThroughKey is PassThrough's mark in a response header.
const passThroughKey = "\x00pass-through"

// CodingStats counts the work done for one coding. Responses counts
// bodies encoded (streamed responses and Encode calls) or, for
// DecodedStats, decoded; BytesIn and BytesOut are the bytes before and
// after. Responses passed through unchanged are not counted.
type CodingStats struct {
	Responses uint64 `json:"responses"`
	BytesIn   uint64 `json:"bytes_in"`
	BytesOut  uint64 `json:"bytes_out"`
}

// Stats returns the counters keyed by coding (br, zstd, gzip) and
// DecodedStats. Each counter is read atomically, the set is not: a
// response finishing meanwhile may be counted in one field only.
func (c *Compressor) Stats() map[string]CodingStats {
	m := make(map[string]CodingStats, numStats)
	for i := range c.stats {
		s := &c.stats[i]
		m[statNames[i]] = CodingStats{Responses: s.responses.Load(), BytesIn: s.in.Load(), BytesOut: s.out.Load()}
	}
	return m
}

// typePattern is one parsed allowlist entry, lower case.
type typePattern struct {
	typ    string // top-level type
	sub    string // exact subtype, or "" for any
	suffix string // "+json" for "*+json", else ""
}

func parseTypePattern(s string) (typePattern, error) {
	want := fmt.Errorf("invalid type %q (want type/subtype, type/* or type/*+suffix, e.g. application/json, text/*, application/*+json)", s)
	typ, sub, ok := strings.Cut(strings.ToLower(s), "/")
	if typ == "*" {
		return typePattern{}, fmt.Errorf("type %q would compress any type, images and archives too; list the types instead", s)
	}
	if !ok || !isTypeToken(typ) {
		return typePattern{}, want
	}
	switch {
	case sub == "*":
		return typePattern{typ: typ}, nil
	case strings.HasPrefix(sub, "*+") && isTypeToken(sub[2:]):
		return typePattern{typ: typ, suffix: sub[1:]}, nil
	case isTypeToken(sub):
		return typePattern{typ: typ, sub: sub}, nil
	}
	return typePattern{}, want
}

// isTypeToken reports whether s is a token without "*" (RFC 9110
// section 5.6.2 allows "*" in tokens, but here it is the wildcard).
func isTypeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// typeAllowed matches a Content-Type value, parameters ignored, against
// the allowlist.
func (c *Compressor) typeAllowed(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	typ, sub, ok := strings.Cut(strings.TrimSpace(ct), "/")
	if !ok || typ == "" || sub == "" {
		return false
	}
	for i := range c.types {
		p := &c.types[i]
		if !strings.EqualFold(typ, p.typ) {
			continue
		}
		switch {
		case p.sub != "":
			if strings.EqualFold(sub, p.sub) {
				return true
			}
		case p.suffix != "":
			if n := len(sub) - len(p.suffix); n > 0 && strings.EqualFold(sub[n:], p.suffix) {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// contentCoding reads Content-Encoding. It returns "" when the content
// has no coding (absent, empty or identity), the canonical name when it
// is exactly one of gzip (or x-gzip), br or zstd, and ok=false for
// anything else: an unknown coding or several stacked, which the
// gateway neither decodes nor encodes over.
func contentCoding(h http.Header) (coding string, ok bool) {
	for _, v := range h["Content-Encoding"] {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" || strings.EqualFold(tok, Identity) {
				continue
			}
			c := canonicalCoding(tok)
			if c == "" && strings.EqualFold(tok, "x-gzip") {
				c = Gzip
			}
			if c == "" || coding != "" {
				return "?", false
			}
			coding = c
		}
	}
	return coding, true
}

// hasNoTransform reports a Cache-Control no-transform directive.
func hasNoTransform(h http.Header) bool {
	for _, v := range h["Cache-Control"] {
		for d := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(d, "=")
			if strings.EqualFold(strings.TrimSpace(name), "no-transform") {
				return true
			}
		}
	}
	return false
}

// varyAcceptEncoding is the Vary of a response that had none, shared by
// all of them (as the cache shares an entry's Vary with every hit):
// header values are replaced or appended to, never written in place, and
// as a literal it is full, so an append copies it.
var varyAcceptEncoding = []string{"Accept-Encoding"}

// addVary adds Accept-Encoding to Vary unless it is listed already or
// Vary is "*", merging it into the last field line.
func addVary(h http.Header) {
	vs := h["Vary"]
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, "Accept-Encoding") {
				return
			}
		}
	}
	if len(vs) == 0 {
		h["Vary"] = varyAcceptEncoding
		return
	}
	if strings.TrimSpace(vs[len(vs)-1]) == "" {
		vs = vs[:len(vs)-1]
		h["Vary"] = append(vs[:len(vs):len(vs)], "Accept-Encoding")
		return
	}
	// A new slice: the old one may be shared with another header map.
	out := make([]string, len(vs))
	copy(out, vs)
	out[len(out)-1] += ", Accept-Encoding"
	h["Vary"] = out
}

// transformed removes the fields that describe the bytes of the
// content, which change when the gateway encodes or decodes it: the
// length, byte ranges (a range of the new encoding cannot be served),
// and digests of the content.
func transformed(h http.Header) {
	for _, k := range [...]string{"Content-Length", "Accept-Ranges", "Content-Md5", "Content-Digest", "Repr-Digest", "Digest"} {
		delete(h, k)
	}
}
