package jobs

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"gateway/internal/jobid"
)

// accept is the async middleware of rt.
func (q *Queue) accept(rt *route, next http.Handler, w http.ResponseWriter, r *http.Request) {
	if id, ok := r.Context().Value(attemptKey{}).(string); ok {
		jobid.Record(r.Context(), id) // the access log names the job
		next.ServeHTTP(w, r)          // a job's own attempt
		return
	}
	o := rt.opts.Load()
	asked := prefersAsync(r.Header)
	if o.Mode == ModePrefer && !asked {
		next.ServeHTTP(w, r)
		return
	}
	cb := r.Header.Get("Callback-Url")
	if cb != "" {
		if err := checkCallback(o, cb); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
	}
	body, err := readBody(r, o.MaxBodySize)
	if err != nil {
		var tl *http.MaxBytesError
		if errors.As(err, &tl) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("request body over %d bytes", o.MaxBodySize)})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "reading the request body: " + err.Error()})
		return
	}
	j := &Job{
		ID:             newID(),
		Route:          o.Name,
		Method:         r.Method,
		Host:           r.Host,
		URI:            r.URL.RequestURI(),
		Header:         requestHeader(r.Header),
		Body:           body,
		TLS:            r.TLS != nil,
		Owner:          owner(o, r),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		CallbackURL:    cb,
		State:          StateQueued,
		Created:        q.now(),
	}
	if j.IdempotencyKey != "" {
		j.Fingerprint = fingerprint(j.Method, j.URI, body)
	}
	got, existing, err := q.store.Enqueue(r.Context(), j, o.QueueDepth)
	switch {
	case errors.Is(err, ErrQueueFull):
		q.st.rejected.Add(1)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "queue full"})
		return
	case errors.Is(err, ErrConflict):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "idempotency key already used for another request"})
		return
	case err != nil:
		q.log.Error("jobs: enqueue", "route", o.Name, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "job store unavailable"})
		return
	}
	if !existing {
		rt.signal()
	}
	jobid.Record(r.Context(), got.ID)
	loc := q.prefix + got.ID
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Retry-After", retryAfter(q, got))
	if asked {
		h.Set("Preference-Applied", "respond-async")
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": got.ID, "status": got.State, "location": loc})
}

// prefersAsync reports whether h's Prefer fields ask for respond-async
// (RFC 7240: comma-separated preferences, each with optional parameters).
func prefersAsync(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for p := range strings.SplitSeq(v, ",") {
			tok, _, _ := strings.Cut(p, ";")
			tok, _, _ = strings.Cut(tok, "=")
			if strings.EqualFold(strings.TrimSpace(tok), "respond-async") {
				return true
			}
		}
	}
	return false
}

// readBody reads r's body up to limit bytes (a *http.MaxBytesError past
// it).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return buf.Bytes(), nil
}

// requestHeader copies h without its hop-by-hop fields, which belong to
// the client's connection and not to the request that is replayed.
func requestHeader(h http.Header) http.Header {
	out := h.Clone()
	dropHopByHop(out)
	return out
}

func dropHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for k := range h {
		switch k {
		case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
			delete(h, k)
		default:
			if strings.HasPrefix(k, "Proxy-") {
				delete(h, k)
			}
		}
	}
}

// credential returns the value that identifies who sent r ("" for none).
func credential(o *RouteOptions, r *http.Request) string {
	switch {
	case o != nil && o.CredentialCookie != "":
		if c, err := r.Cookie(o.CredentialCookie); err == nil {
			return c.Value
		}
		return ""
	case o != nil && o.CredentialHeader != "":
		return r.Header.Get(o.CredentialHeader)
	}
	return r.Header.Get("Authorization")
}

// owner is the SHA-256 of r's credentials; nil when it has none.
func owner(o *RouteOptions, r *http.Request) []byte {
	c := credential(o, r)
	if c == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(c))
	return sum[:]
}

// fingerprint identifies a request for its Idempotency-Key.
func fingerprint(method, uri string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(uri))
	h.Write([]byte{0})
	h.Write(body)
	return h.Sum(nil)
}

// checkCallback says why u may not be a callback of a route with o.
func checkCallback(o *RouteOptions, u string) error {
	if len(o.CallbackHosts) == 0 {
		return errors.New("callbacks are not enabled on this route")
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
		return errors.New("the Callback-Url is not an absolute http or https URL")
	}
	host, hostport := strings.ToLower(p.Hostname()), strings.ToLower(p.Host)
	for _, h := range o.CallbackHosts {
		if h == host || h == hostport {
			return nil
		}
	}
	return fmt.Errorf("the Callback-Url host %q is not allowed", p.Hostname())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
