package proxy

import (
	"bufio"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// writeHead writes the request line and header of a request without a
// body, the common case of a proxied GET, and reports whether it did.
// It writes what Request.Write writes for such a request, byte for byte
// (TestWriteHeadMatchesRequestWrite), without its formatting and
// sorting machinery, which cost more than the rest of the exchange's
// own work. Anything unusual (a body or its headers, a trailer, a
// close, CONNECT, an opaque URL, a host or value Request.Write would
// rewrite or refuse, a client trace that watches the write) is left to
// Request.Write: writeHead returns false before writing a byte.
func writeHead(bw *bufio.Writer, r *http.Request) bool {
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 || r.Trailer != nil || r.Close ||
		r.Method == http.MethodConnect || r.URL.Opaque != "" {
		return false
	}
	// Request.Write writes any method as it is; here only a token.
	if r.Method != "" && !httpguts.ValidHeaderFieldName(r.Method) {
		return false
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return false // Request.Write adds Content-Length: 0
	}
	if trace := httptrace.ContextClientTrace(r.Context()); trace != nil &&
		(trace.WroteHeaderField != nil || trace.WroteHeaders != nil || trace.WroteRequest != nil) {
		return false
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	// Request.Write converts a non-ASCII host to Punycode, empties an
	// invalid one and drops an IPv6 zone.
	if !plainHost(host) {
		return false
	}
	ruri := r.URL.RequestURI()
	if hasCTL(ruri) {
		return false
	}
	var keys [32]string
	ks := keys[:0]
	for k, vv := range r.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		// Request.Write drops a name that is not a token and rewrites
		// a value with a line break or surrounding blanks.
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !plainValue(v) {
				return false
			}
		}
		ks = append(ks, k)
	}
	ua := "Go-http-client/1.1"
	if vv, ok := r.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = vv[0]
		}
		if !plainValue(ua) {
			return false
		}
	}
	slices.Sort(ks)

	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(ruri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	if ua != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(ua)
		bw.WriteString("\r\n")
	}
	for _, k := range ks {
		for _, v := range r.Header[k] {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	return true
}

// plainHost reports whether Request.Write would send host unchanged:
// ASCII, valid in a Host header, and without an IPv6 zone.
func plainHost(host string) bool {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 || host[i] == '%' {
			return false
		}
	}
	return httpguts.ValidHostHeader(host)
}

// plainValue reports whether Request.Write would send a header value
// as it is: no line break to replace, no blank to trim at either end.
func plainValue(v string) bool {
	if v == "" {
		return true
	}
	if c := v[0]; c == ' ' || c == '\t' {
		return false
	}
	if c := v[len(v)-1]; c == ' ' || c == '\t' {
		return false
	}
	return !strings.ContainsAny(v, "\r\n")
}

// hasCTL reports whether s has an ASCII control byte, which
// Request.Write refuses in a request target.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}
