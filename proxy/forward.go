package proxy

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
)

// forwarder is the proxy of a route to an upstream. It forwards a GET
// or HEAD without a body and without hop-by-hop fields, nearly all of a
// gateway's traffic, itself, and hands every other request to the
// route's ReverseProxy, whose work it repeats for these: the same
// outbound request (see rewrite), the same response header, status,
// body, trailers and errors. Doing it here saves what ReverseProxy
// spends on generality that a plain exchange does not need: a clone of
// the request with a copy of each header value list, a ProxyRequest, a
// parse of every response's Content-Type, a new value list for each
// response header field (here they are handed over, as moveHeader
// does), and, on an HTTP/1.1 upstream (the gateway's own transport,
// which is handed the writer for interim responses instead), a client
// trace with its context and request copy.
type forwarder struct {
	h  *Handler
	ro *route
	up *Upstream
	rp *httputil.ReverseProxy
}

// outbound is a forwarded request and its URL, made in one allocation,
// and the writer its interim responses go to.
type outbound struct {
	req http.Request
	url url.URL
	xf  [2]string // the X-Forwarded-For and -Host values (see setXForwarded)
	w   http.ResponseWriter
	// For net/http's transport, which reports interim responses to a
	// client trace from a goroutine of its own, possibly after
	// RoundTrip has returned (ReverseProxy's guard): done, under mu,
	// once it has.
	trace httptrace.ClientTrace
	mu    sync.Mutex
	done  bool
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !plainRequest(r) {
		f.rp.ServeHTTP(w, r)
		return
	}
	ob := &outbound{req: *r, url: *r.URL, w: w}
	out := &ob.req
	out.URL = &ob.url
	out.Body = nil
	out.Close = false
	// ReverseProxy's Rewrite gets the header without the client's
	// forwarding fields; plainRequest saw no hop-by-hop field. The value
	// lists are shared with the client's header, as the outbound
	// header's values are only written out (see noUserAgent).
	out.Header = make(http.Header, len(r.Header)+5)
	for k, vv := range r.Header {
		switch k {
		case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
			continue
		}
		out.Header[k] = vv
	}
	f.h.rewrite(r, out, f.ro, &ob.xf)

	var res *http.Response
	var err error
	if f.up.h1 != nil {
		res, err = f.up.send(out, ob)
	} else {
		ob.trace.Got1xxResponse = ob.got1xx
		out = out.WithContext(httptrace.WithClientTrace(out.Context(), &ob.trace))
		res, err = f.up.send(out, nil)
		ob.mu.Lock()
		ob.done = true
		ob.mu.Unlock()
	}
	if err != nil {
		f.h.upstreamError(w, out, f.ro, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// A 101 to a request that asked for no upgrade (see newRoute's
		// ModifyResponse).
		res.Body.Close()
		f.h.upstreamError(w, out, f.ro, errUnaskedSwitch)
		return
	}
	removeHopByHop(res.Header)
	res.Header["Via"] = f.h.via.appendVia(res.Header["Via"], res.ProtoMajor, res.ProtoMinor)
	flush := res.ContentLength == -1
	if ct := res.Header["Content-Type"]; !flush && len(ct) > 0 && mayBeEventStream(ct[0]) {
		// Server-sent events go out as they come, as ReverseProxy sends
		// them.
		mt, _, _ := mime.ParseMediaType(ct[0])
		flush = mt == "text/event-stream"
	}
	dst := w.Header()
	moveHeader(dst, res.Header)
	copyHeader(dst, res.Header)
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	if err := f.copyBody(w, res.Body, flush); err != nil {
		res.Body.Close()
		if r.Context().Value(http.ServerContextKey) == nil {
			// Not under net/http's server, which recovers the abort
			// (ReverseProxy's rule, see shouldPanicOnCopyError).
			return
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, so that res.Trailer is filled in

	if len(res.Trailer) > 0 {
		// A trailer forces chunking, even of a body short enough that
		// net/http would send it with a length.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		copyHeader(dst, res.Trailer)
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// copyBody copies a response body to w through a pooled buffer, as
// ReverseProxy's copyResponse does, flushing after every write when
// flush is set (a body without a length, server-sent events) and the
// header first.
func (f *forwarder) copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
		_ = rc.Flush()
	}
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	for {
		nr, rerr := body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			f.rp.ErrorLog.Printf("httputil: ReverseProxy read error during body copy: %v", rerr)
		}
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
			if rc != nil {
				_ = rc.Flush()
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}

// plainRequest reports whether the forwarder may send r itself: a GET
// or HEAD without a body, without hop-by-hop fields (which ReverseProxy
// removes, naming others, or turns into an upgrade), and with a query
// that ReverseProxy would send as it is (see cleanQuery).
func plainRequest(r *http.Request) bool {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.ContentLength != 0 ||
		r.Trailer != nil || len(r.TransferEncoding) > 0 {
		return false
	}
	for k := range r.Header {
		if isHopField(k) {
			return false
		}
	}
	return cleanQuery(r.URL.RawQuery)
}

// isHopField reports the fields ReverseProxy removes as hop-by-hop.
func isHopField(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// removeHopByHop removes a response's hop-by-hop fields, those its
// Connection field names and the fixed ones, as ReverseProxy does.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for k := range h {
		if isHopField(k) {
			delete(h, k)
		}
	}
}

// copyHeader adds every value of src to dst, as ReverseProxy does.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// queryReencoded is set when GODEBUG has urlmaxqueryparams, under which
// ReverseProxy re-encodes every query.
var queryReencoded = strings.Contains(os.Getenv("GODEBUG"), "urlmaxqueryparams")

// cleanQuery reports whether ReverseProxy sends the query q as it is:
// it re-encodes one with a semicolon, a malformed escape or more than
// 10,000 parameters (httputil's cleanQueryParams), which the forwarder
// leaves to it.
func cleanQuery(q string) bool {
	if q == "" {
		return true
	}
	if queryReencoded || strings.Count(q, "&") >= 10000 {
		return false
	}
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
			i += 3
		default:
			i++
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// got1xx is writeInterim as net/http's transport calls it, from its own
// goroutine: nothing once the round trip has returned, when the
// response is the handler's to write.
func (ob *outbound) got1xx(code int, h textproto.MIMEHeader) error {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.done {
		return nil
	}
	return ob.writeInterim(code, http.Header(h))
}

// writeInterim passes an interim response on to the client, as
// ReverseProxy's trace does: its fields go out with it, and the header
// is emptied after, as net/http does not for a 1xx.
func (ob *outbound) writeInterim(code int, h http.Header) error {
	dst := ob.w.Header()
	copyHeader(dst, h)
	ob.w.WriteHeader(code)
	clear(dst)
	return nil
}
