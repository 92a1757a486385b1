package batch

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Header rules shared by batch items, composite parts and the config
// checks of inherit_headers.

// hopByHop are the connection-level fields (RFC 9110 section 7.6.1) that
// mean nothing inside a batch: a sub-request has no connection of its own.
var hopByHop = map[string]bool{
	"Connection":        true,
	"Keep-Alive":        true,
	"Proxy-Connection":  true,
	"Transfer-Encoding": true,
	"Upgrade":           true,
	"Te":                true,
	"Trailer":           true,
}

// gatewayOwned are the fields the gateway sets itself, from the outer
// request and its connection; an item may not forge them.
var gatewayOwned = map[string]bool{
	"Forwarded":      true,
	"Via":            true,
	"X-Request-Id":   true,
	"Host":           true,
	"Content-Length": true,
}

// fromOuter are the gateway-owned fields a sub-request carries over from
// the request it is part of, so that the proxy judges them exactly as it
// would have judged them on the outer request: it keeps X-Forwarded-*
// only from trusted peers, and the sub-request has the outer request's
// peer address.
var fromOuter = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "Via", "X-Request-Id"}

// forbidden reports why a request field may not be set by an item, or ""
// when it may. name is in canonical form.
func forbidden(name string) string {
	switch {
	case hopByHop[name] || strings.HasPrefix(name, "Proxy-"):
		return "is hop-by-hop"
	case gatewayOwned[name] || strings.HasPrefix(name, "X-Forwarded-"):
		return "is set by the gateway"
	}
	return ""
}

// CheckInheritHeader reports whether name may be listed in
// inherit_headers: a valid field name that an item could otherwise set,
// and not Accept-Encoding, which sub-requests never send.
func CheckInheritHeader(name string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("invalid header name %q", name)
	}
	c := textproto.CanonicalMIMEHeaderKey(name)
	if c == "Accept-Encoding" {
		return fmt.Errorf("%s is never sent on sub-requests (their bodies are not compressed)", name)
	}
	if why := forbidden(c); why != "" {
		return fmt.Errorf("%s %s and cannot be inherited", name, why)
	}
	return nil
}

// validValue reports whether v may be a field value: no CR, LF, NUL or
// other control characters but tab (RFC 9110 section 5.5).
func validValue(v string) bool {
	for _, c := range []byte(v) {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// responseHeaders flattens a sub-response's fields into one string each,
// as a batch response carries them: several lines of one field are joined
// with ", " (RFC 9110 section 5.3), except Set-Cookie, whose values may
// hold commas and are joined with "\n" instead. Hop-by-hop fields and
// Content-Length (the body is re-encoded) are left out.
func responseHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for name, vs := range h {
		if len(vs) == 0 || hopByHop[name] || name == "Content-Length" || strings.HasPrefix(name, http.TrailerPrefix) {
			continue
		}
		sep := ", "
		if name == "Set-Cookie" {
			sep = "\n"
		}
		out[name] = strings.Join(vs, sep)
	}
	return out
}

// partHeaderSkip are the incoming request's fields a composite's part
// requests do not carry: connection-level ones, those describing a body
// (parts have none), and those that ask for a particular representation
// of the composite itself (conditionals, ranges, codings).
var partHeaderSkip = map[string]bool{
	"Accept":              true, // parts ask for JSON
	"Accept-Encoding":     true,
	"Content-Length":      true,
	"Content-Type":        true,
	"Content-Encoding":    true,
	"Expect":              true,
	"If-Match":            true,
	"If-None-Match":       true,
	"If-Modified-Since":   true,
	"If-Unmodified-Since": true,
	"If-Range":            true,
	"Range":               true,
}

// partHeader builds a part request's fields from the composite request's.
func partHeader(in http.Header) http.Header {
	out := make(http.Header, len(in)+1)
	for name, vs := range in {
		if hopByHop[name] || strings.HasPrefix(name, "Proxy-") || partHeaderSkip[name] {
			continue
		}
		out[name] = append([]string(nil), vs...)
	}
	// Fields named in Connection are hop-by-hop too.
	for _, v := range in["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				delete(out, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	out["Accept"] = []string{"application/json"}
	return out
}

// numberRequestID makes a sub-request's X-Request-Id the outer request's
// id and the sub-request's position (from 1), dot-separated: each
// upstream exchange can be told apart in the upstream's logs and still
// be traced to the client request that caused it ("id.2.1" for the
// first part of a composite that was a batch's second item).
func numberRequestID(h http.Header, n int) {
	if vs := h["X-Request-Id"]; len(vs) == 1 {
		h["X-Request-Id"] = []string{vs[0] + "." + strconv.Itoa(n)}
	}
}
