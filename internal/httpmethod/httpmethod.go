// Package httpmethod holds what more than one package of the gateway
// needs to know about request methods.
package httpmethod

import "net/http"

// Safe reports the methods RFC 9110 section 9.2.1 defines as safe: GET,
// HEAD, OPTIONS and TRACE. A request in any other may change the
// resource, so the cache invalidates after it and a compressing route
// lets it match the origin's own ETag.
func Safe(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
