package cache

import (
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/net/http/httpguts"
)

// Status is what this cache did for one response, reported in the
// Cache-Status header (RFC 9211). The zero value emits just the cache name.
type Status struct {
	// Hit: served from the cache without going forward. When set, Fwd,
	// FwdStatus, Stored and Collapsed are ignored: RFC 9211 section 2.1
	// makes hit and fwd exclusive, and the others describe a forward.
	Hit bool
	// Fwd is why the request went forward (RFC 9211 section 2.2): "bypass",
	// "method", "uri-miss", "vary-miss", "miss", "request" or "stale". It
	// must be an sf-token; "" or any other invalid value emits no fwd, and
	// then no fwd-status, stored or collapsed either, since those describe
	// the forward.
	Fwd string
	// FwdStatus is the status received from the next hop; emitted with fwd
	// when it is a three-digit code (100-999), 0 means unknown and omits it.
	FwdStatus int
	// Stored: the forwarded response was stored (section 2.4). Emitted only
	// together with fwd.
	Stored bool
	// Collapsed: the forward was collapsed with another request's
	// (section 2.5). Emitted only together with fwd.
	Collapsed bool
	// TTL is the remaining freshness lifetime (section 2.3), negative when
	// stale. It is emitted only when HasTTL, because 0 is a real value (just
	// expired). Emitted as whole seconds rounded down, so the header never
	// claims more freshness than there is: 0.5s left is ttl=0, 0.5s stale
	// is ttl=-1.
	TTL    time.Duration
	HasTTL bool
	// Key is the cache key (section 2.6), omitted when "". It may contain
	// request header and cookie values, so set it only for debugging.
	Key string
	// Detail is free-form implementation detail (section 2.7), omitted when
	// "".
	Detail string
	// pass marks a forward that went around the coalescing (see
	// handler.passes) for Outcome, when Detail was taken by why the
	// response was not stored.
	pass bool
}

// Append appends this cache's Cache-Status list member to dst: the name,
// then the parameters in the order RFC 9211 section 2 lists them (hit, fwd,
// fwd-status, ttl, stored, collapsed, key, detail), each after "; ", e.g.
//
//	gateway; hit; ttl=42
//	gateway; fwd=uri-miss; fwd-status=200; stored; collapsed
//
// name is emitted as an sf-token when it is one and as an sf-string
// otherwise; key and detail are always sf-strings. sf-strings hold only
// printable ASCII (RFC 8941 section 3.3.3): '"' and '\' are escaped, and
// every other byte outside 0x20-0x7E (controls, DEL and each byte of a
// UTF-8 sequence) becomes '?'. Replacing rather than dropping keeps the
// length and position of odd bytes visible, e.g. the NUL separators of a
// cache key. Append allocates nothing when dst has room.
func (s Status) Append(dst []byte, name string) []byte {
	if isSFToken(name) {
		dst = append(dst, name...)
	} else {
		dst = appendSFString(dst, name)
	}
	if s.Hit {
		dst = append(dst, "; hit"...)
	}
	fwd := !s.Hit && isSFToken(s.Fwd)
	if fwd {
		dst = append(dst, "; fwd="...)
		dst = append(dst, s.Fwd...)
		if s.FwdStatus >= 100 && s.FwdStatus <= 999 {
			dst = append(dst, "; fwd-status="...)
			dst = strconv.AppendInt(dst, int64(s.FwdStatus), 10)
		}
	}
	if s.HasTTL {
		dst = append(dst, "; ttl="...)
		dst = strconv.AppendInt(dst, floorSeconds(s.TTL), 10)
	}
	if fwd && s.Stored {
		dst = append(dst, "; stored"...)
	}
	if fwd && s.Collapsed {
		dst = append(dst, "; collapsed"...)
	}
	if s.Key != "" {
		dst = append(dst, "; key="...)
		dst = appendSFString(dst, s.Key)
	}
	if s.Detail != "" {
		dst = append(dst, "; detail="...)
		dst = appendSFString(dst, s.Detail)
	}
	return dst
}

// floorSeconds is d in whole seconds rounded toward negative infinity. The
// result (at most about 9.2e9 in magnitude) fits the 15 digits of an
// sf-integer.
func floorSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second < 0 {
		s--
	}
	return s
}

// AddCacheStatus adds this cache's member (see Status.Append) to h after
// the members already there. RFC 9211 section 2 orders the list from the
// cache nearest the origin to the one nearest the client, each cache
// appending itself, so upstream members are kept as they are.
//
// The result is a single field line: the existing non-empty lines and our
// member joined with ", " (RFC 9110 section 5.3 makes that equivalent to
// separate lines). One line means Header.Get, which many clients and tools
// use, shows the whole list rather than only the first cache.
//
// Call it on the header being sent, never on one that will be stored:
// a stored copy would replay this member on every later hit.
func AddCacheStatus(h http.Header, name string, s Status) {
	var buf [128]byte
	var line []byte
	for _, l := range h["Cache-Status"] {
		l = trimOWS(l)
		if l == "" {
			continue
		}
		if line == nil {
			line = buf[:0]
		} else {
			line = append(line, ", "...)
		}
		line = append(line, l...)
	}
	if line != nil {
		line = append(line, ", "...)
	} else {
		line = buf[:0]
	}
	line = s.Append(line, name)
	h["Cache-Status"] = fieldValues(line)
}

// oneValue is a header field's value slice and the bytes of its single
// value in one allocation, the size of a common Cache-Status line: every
// forwarded response carries one.
type oneValue struct {
	vals [1]string
	buf  [112]byte
}

// fieldValues returns the values of a field whose one value is line.
// The slice has len == cap, so adding a line to the field copies it.
func fieldValues(line []byte) []string {
	if len(line) == 0 || len(line) > len(oneValue{}.buf) {
		return []string{string(line)}
	}
	v := new(oneValue)
	n := copy(v.buf[:], line)
	v.vals[0] = unsafe.String(&v.buf[0], n)
	return v.vals[:]
}

// isSFToken reports whether s is an sf-token (RFC 8941 section 3.3.4):
// ( ALPHA / "*" ) *( tchar / ":" / "/" ).
func isSFToken(s string) bool {
	if s == "" {
		return false
	}
	if c := s[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !httpguts.IsTokenRune(rune(c)) && c != ':' && c != '/' {
			return false
		}
	}
	return true
}

// appendSFString appends s as an sf-string (RFC 8941 section 3.3.3); see
// Status.Append for how bytes it cannot hold are replaced.
func appendSFString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c > 0x7e:
			dst = append(dst, '?')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
