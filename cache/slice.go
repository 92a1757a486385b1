package cache

import (
	"context"
	"errors"
	"fmt"
	"gateway/internal/outcome"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// A slice route (RouteOptions.Slice) keeps a large representation as
// fixed, aligned byte ranges of it, each stored as its own entry, as
// nginx's slice module does: a client's range, or the whole
// representation, is assembled from the slices it covers and streamed
// one slice at a time, so that neither the cache nor this process ever
// holds the whole body, and a request for a part of a file costs the
// origin only the slices of that part (RFC 9111 3.3 and 3.4 allow
// storing and combining partial content).
//
// Every slice of one response must come from the same representation:
// they share one strong validator (ETag). A slice fetched with another
// validator means the representation changed; before the response has
// begun, the slices stored for it are dropped and the request starts
// again on the new representation; once its body streams, it can only
// be cut short, since its status line promised the old one.

// sliceKey is the key slice idx of the representation keyed primary is
// stored under: primary plus a last component, so that purges of the URL
// (URLPart) remove the slices too, and no request without slicing can
// ever look one up.
func sliceKey(primary string, idx int64) string {
	return primary + "\x00slice=" + strconv.FormatInt(idx, 10)
}

// maxSliceRestarts bounds how often a request starts again on a
// representation that changed under it before it answers 502.
const maxSliceRestarts = 2

// sliceHandler serves a slice route's GET and HEAD requests; the rest go
// through the route's ordinary cache (h).
type sliceHandler struct {
	h    *handler
	size int64
}

// errSliceChanged reports a slice whose validator or length is not the
// representation's the response is being assembled from.
var errSliceChanged = errors.New("cache: slice of another representation")

// errNoValidator reports a representation without a strong validator,
// whose slices cannot be combined: its requests take the ordinary path.
var errNoValidator = errors.New("cache: slice without a strong validator")

// slicePart is one slice: its body and what its Content-Range said.
type slicePart struct {
	e      *Entry
	start  int64 // first byte of the representation in e.Body
	total  int64 // the representation's length
	etag   string
	cached bool
	// stale: a stored slice past its freshness, standing in for an
	// origin that failed (the route's grace or a stale-if-error).
	stale       bool
	staleDetail string
	// shareable: the slice was stored, so another request for it may
	// be answered with it (one that varies or is private may not).
	shareable bool
}

// sliceShare is what a fetch of a slice hands the requests that waited
// on it.
type sliceShare struct {
	p      *slicePart
	passed bool
	err    error
	abort  any
}

func (s *sliceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || sliceBypass(r) {
		s.h.ServeHTTP(w, r)
		return
	}
	primary := string(s.h.appendKey(nil, r))
	reqCC := ParseCacheControl(r.Header)
	for range maxSliceRestarts + 1 {
		err := s.serve(w, r, primary, reqCC)
		if errors.Is(err, errNoValidator) {
			s.h.ServeHTTP(w, r)
			return
		}
		if !errors.Is(err, errSliceChanged) {
			return
		}
	}
	s.h.c.addStatus(r, w.Header(), Status{Fwd: "miss", Detail: "representation-changed"})
	httpError(w, http.StatusBadGateway, "representation changed while it was being assembled")
}

// sliceBypass reports whether r goes through the ordinary cache instead:
// preconditions (other than If-Range) and upgrades are judged against a
// whole stored response there, and a multipart range answer is not worth
// assembling, so a range this handler does not read is answered whole.
func sliceBypass(r *http.Request) bool {
	for _, k := range [...]string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if len(r.Header[k]) > 0 {
			return true
		}
	}
	return len(r.Header["Upgrade"]) > 0 && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

// byteRange is a single range of a Range field: first-last, first- (last
// -1) or a suffix of n bytes (first -1, last n).
type byteRange struct{ first, last int64 }

// parseSingleRange reads a Range field of one byte range; ok is false for
// none, several or one this cache does not understand, which are all
// answered with the whole representation (RFC 9110 14.2 lets a server
// ignore Range).
func parseSingleRange(v []string) (br byteRange, ok bool) {
	if len(v) != 1 {
		return br, false
	}
	spec, found := strings.CutPrefix(strings.TrimSpace(v[0]), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return br, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return br, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return br, false
		}
		return byteRange{-1, n}, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 {
		return br, false
	}
	last := int64(-1)
	if b != "" {
		if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
			return br, false
		}
	}
	return byteRange{first, last}, true
}

// serve answers r once; errSliceChanged asks for another try, nothing
// having been written.
func (s *sliceHandler) serve(w http.ResponseWriter, r *http.Request, primary string, reqCC Directives) error {
	br, ranged := parseSingleRange(r.Header["Range"])
	first := int64(0)
	if ranged && br.first >= 0 {
		first = br.first / s.size
	}
	fetched := false
	p, passed, err := s.slice(w, r, primary, reqCC, first, "", -1)
	if passed {
		return nil
	}
	if err != nil {
		return s.fail(w, r, err)
	}
	fetched = fetched || !p.cached
	stale, why := p.stale, p.staleDetail
	total := p.total
	if ranged {
		if ir := r.Header.Get("If-Range"); ir != "" && (p.etag == "" || ir != p.etag || strings.HasPrefix(ir, "W/")) {
			ranged = false // RFC 9110 13.1.5: the client's copy is not this one
		}
	}
	from, to := int64(0), total-1
	if ranged {
		switch {
		case br.first < 0:
			from = max(total-br.last, 0)
		case br.first >= total:
			h := w.Header()
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(total, 10))
			s.h.c.addStatus(r, h, s.status(fetched, stale, why))
			httpError(w, http.StatusRequestedRangeNotSatisfiable, "range not satisfiable")
			return nil
		default:
			from = br.first
			if br.last >= 0 {
				to = min(br.last, total-1)
			}
		}
	}
	// Before the status line goes out, the first slice the cache lacks
	// is fetched: a representation that changed since the stored slices
	// is then found while the request can still start again.
	parts := map[int64]*slicePart{p.start / s.size: p}
	if total > 0 {
		for idx := from / s.size; idx <= to/s.size; idx++ {
			if parts[idx] != nil {
				continue
			}
			if _, ok := s.lookup(r, primary, reqCC, idx, p.etag, total); ok {
				continue
			}
			q, _, err := s.slice(nil, r, primary, reqCC, idx, p.etag, total)
			if err != nil {
				if errors.Is(err, errSliceChanged) {
					s.drop(r, primary, total)
				}
				return s.fail(w, r, err)
			}
			parts[idx] = q
			fetched = fetched || !q.stale
			if q.stale {
				stale, why = true, q.staleDetail
			}
			break
		}
	}
	h := w.Header()
	for k, v := range p.e.Header {
		switch k {
		case "Content-Range", "Content-Length", "Age", "Cache-Status", "Date":
			continue
		}
		h[k] = v
	}
	stripTagFields(h)
	stripTargeted(h, s.h.rt.strip)
	code := http.StatusOK
	if ranged {
		code = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, total))
	}
	n := max(to-from+1, 0)
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	if !fetched {
		// Answered from the store: as old as the first slice read.
		h.Set("Age", strconv.FormatInt(min(int64(p.e.age(s.h.c.now())/time.Second), deltaSecondsMax), 10))
	}
	st := s.status(fetched, stale, why)
	s.h.c.addStatus(r, h, st)
	outcome.Record(r.Context(), st.Outcome())
	switch {
	case fetched:
		s.h.rt.stats.misses.Add(1)
		s.h.rt.noteMiss(primary)
	case stale:
		s.h.rt.stats.staleHits.Add(1)
		s.h.rt.noteHit(primary)
	default:
		s.h.rt.stats.hits.Add(1)
		s.h.rt.noteHit(primary)
	}
	w.WriteHeader(code)
	if r.Method == http.MethodHead || n == 0 {
		return nil
	}
	for idx := from / s.size; idx <= to/s.size; idx++ {
		q := parts[idx]
		delete(parts, idx) // only what is being written stays held
		if q == nil {
			var ok bool
			if q, ok = s.lookup(r, primary, reqCC, idx, p.etag, total); !ok {
				if q, _, err = s.slice(nil, r, primary, reqCC, idx, p.etag, total); err != nil {
					if errors.Is(err, errSliceChanged) {
						s.drop(r, primary, total)
					}
					// The status line is out: all that is left is
					// to end the response short of its length.
					panic(http.ErrAbortHandler)
				}
			}
		}
		lo := max(from, q.start) - q.start
		hi := min(to, q.start+int64(len(q.e.Body))-1) - q.start
		n, err := w.Write(q.e.Body[lo : hi+1])
		if !fetched {
			// Only a response served wholly from stored slices counts,
			// as only it counts as a hit.
			s.h.rt.stats.hitBytes.Add(uint64(n))
		}
		if err != nil {
			return nil // the client left
		}
	}
	return nil
}

// status is the Cache-Status of a slice route's response: a miss that
// went forward when a slice was fetched, stale when a stored slice stood
// in for a failing origin, else a hit.
func (s *sliceHandler) status(fetched, stale bool, why string) Status {
	switch {
	case fetched:
		return Status{Fwd: "miss"}
	case stale:
		return Status{Fwd: "stale", Detail: why}
	}
	return Status{Hit: true}
}

// fail answers r when a slice could not be had before the status line.
func (s *sliceHandler) fail(w http.ResponseWriter, r *http.Request, err error) error {
	if errors.Is(err, errSliceChanged) || errors.Is(err, errNoValidator) {
		return err
	}
	if r.Context().Err() != nil {
		return nil // the client left or the deadline passed; nothing to add
	}
	s.h.c.addStatus(r, w.Header(), Status{Fwd: "miss", Detail: "slice"})
	httpError(w, http.StatusBadGateway, "bad slice from upstream")
	return nil
}

// drop removes the stored slices of a representation of length total,
// after one of them turned out to be from another representation.
func (s *sliceHandler) drop(r *http.Request, primary string, total int64) {
	ctx := context.WithoutCancel(r.Context())
	for idx := int64(0); idx*s.size < total; idx++ {
		if _, err := s.h.c.store.Delete(ctx, sliceKey(primary, idx)); err != nil {
			s.h.c.storeFailed("delete", err)
		}
	}
}

// lookup returns stored slice idx when it belongs to the representation
// with etag and length total ("" and -1: any, for the first slice a
// request reads), and whether it is fresh for the request. A slice that
// is not may still stand in for a failing origin (standIn).
func (s *sliceHandler) lookup(r *http.Request, primary string, reqCC Directives, idx int64, etag string, total int64) (*slicePart, bool) {
	obj, err := s.h.c.store.Get(r.Context(), sliceKey(primary, idx))
	if err != nil {
		s.h.c.storeFailed("get", err)
	}
	if obj == nil || len(obj.Variants) == 0 {
		return nil, false
	}
	e := obj.Variants[0]
	p, err := s.part(e, idx)
	if err != nil || (etag != "" && p.etag != etag) || (total >= 0 && p.total != total) {
		return nil, false
	}
	p.cached, p.shareable = true, true
	v, _ := Usable(reqCC, s.h.cc(e), e.age(s.h.c.now()), e.lifetime())
	return p, v == Fresh || v == StaleAcceptable
}

// part checks that e is slice idx of a representation: a 206 whose
// Content-Range starts at the slice, holds its body, names the total
// length and a strong validator, and covers the whole slice unless it
// is the last one.
func (s *sliceHandler) part(e *Entry, idx int64) (*slicePart, error) {
	cr := e.Header.Get("Content-Range")
	spec, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return nil, fmt.Errorf("cache: slice Content-Range %q", cr)
	}
	rng, tot, _ := strings.Cut(spec, "/")
	a, b, _ := strings.Cut(rng, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first != idx*s.size || last-first+1 != int64(len(e.Body)) || last >= total ||
		(last != first+s.size-1 && last != total-1) {
		return nil, fmt.Errorf("cache: slice Content-Range %q for slice %d", cr, idx)
	}
	return &slicePart{e: e, start: first, total: total, etag: e.ETag}, nil
}

// slice returns slice idx from the store or, failing that, from the
// origin, storing it. etag and total are the representation's when known
// (else "" and -1): a slice of another is errSliceChanged. client, when
// set, is the request's own writer, for the first slice only: a response
// that is not a slice (an origin that ignores Range, an error) streams
// through to it unstored, and passed says so.
//
// Concurrent requests for one slice that is not stored share one fetch:
// the first leads, streaming to its own client as above; the others are
// answered with the slice it stored, or fetch on their own when it
// stored none (a response that passed, varied, failed or was private).
func (s *sliceHandler) slice(client http.ResponseWriter, r *http.Request, primary string, reqCC Directives, idx int64, etag string, total int64) (*slicePart, bool, error) {
	p, fresh := s.lookup(r, primary, reqCC, idx, etag, total)
	if fresh {
		return p, false, nil
	}
	led := false
	v, _, _ := s.h.c.flight.Do(sliceKey(primary, idx), func() (any, error) {
		led = true
		res := &sliceShare{}
		// A flight that ended between this request's look and its own
		// start may have stored the slice.
		if q, fresh := s.lookup(r, primary, reqCC, idx, etag, total); fresh {
			res.p = q
			return res, nil
		}
		func() {
			defer func() {
				if x := recover(); x != nil {
					res.abort = x
				}
			}()
			res.p, res.passed, res.err = s.fetch(client, r, primary, reqCC, idx, etag, total, p)
		}()
		return res, nil
	})
	res := v.(*sliceShare)
	if led {
		if res.abort != nil {
			panic(res.abort) // the proxy's abort, on the request it belongs to
		}
		return res.p, res.passed, res.err
	}
	if res.abort != nil || res.passed || res.err != nil || !res.p.shareable {
		return s.fetch(client, r, primary, reqCC, idx, etag, total, p)
	}
	if q := res.p; (etag != "" && q.etag != etag) || (total >= 0 && q.total != total) {
		return nil, false, errSliceChanged
	}
	s.h.rt.stats.coalesced.Add(1)
	q := *res.p
	q.shareable = false
	return &q, false, nil
}

// fetch asks the origin for slice idx (see slice). stale, when not nil,
// is the stored slice past its freshness: it answers instead when the
// origin fails within the route's grace or a stale-if-error window.
func (s *sliceHandler) fetch(client http.ResponseWriter, r *http.Request, primary string, reqCC Directives, idx int64, etag string, total int64, stale *slicePart) (p *slicePart, passed bool, err error) {
	key := sliceKey(primary, idx)
	gen := s.h.c.purgeMarkOf(key)
	out := r.Clone(r.Context())
	out.Method = http.MethodGet
	out.Body = http.NoBody
	out.ContentLength = 0
	out.GetBody = nil
	for _, k := range [...]string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
		delete(out.Header, k)
	}
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", idx*s.size, (idx+1)*s.size-1))
	sw := &sliceWriter{header: make(http.Header), client: client, r: r, h: s.h, limit: s.size, hold: s.standIn(stale, reqCC, http.StatusBadGateway) != ""}
	reqTime := s.h.c.now()
	s.h.next.ServeHTTP(sw, out)
	if sw.passing {
		return nil, true, nil
	}
	if sw.status != http.StatusPartialContent || sw.over {
		if why := s.standIn(stale, reqCC, sw.status); why != "" {
			q := *stale
			q.stale, q.staleDetail = true, why
			return &q, false, nil
		}
		return nil, false, fmt.Errorf("cache: slice %d answered %d", idx, sw.status)
	}
	respTime := s.h.c.now()
	e := newEntry(http.StatusPartialContent, sw.header, sw.body, nil, nil, tags(sw.header), reqTime, respTime, s.h.rt.o.Policy, nil)
	p, err = s.part(e, idx)
	if err != nil {
		return nil, false, err
	}
	if (etag != "" && p.etag != etag) || (total >= 0 && p.total != total) || p.etag == "" || strings.HasPrefix(p.etag, "W/") {
		if etag == "" && (p.etag == "" || strings.HasPrefix(p.etag, "W/")) {
			// Without a strong validator the slices of one response
			// cannot be told to be of one representation: they are
			// never combined, and the request is served whole.
			return nil, false, errNoValidator
		}
		return nil, false, errSliceChanged
	}
	// A slice is stored when the whole response would be: judged as the
	// 200 it is a part of. One that varies is not stored, since slices
	// are looked up without the request's Vary fields.
	whole := &http.Response{StatusCode: http.StatusOK, Header: sw.header}
	if ok, _ := Storable(out, whole, s.h.rt.o.Policy); ok && len(sw.header["Vary"]) == 0 && int64(len(sw.body)) <= s.h.c.maxObj {
		s.h.store(context.WithoutCancel(r.Context()), key, e, gen)
		p.shareable = true
	}
	return p, false, nil
}

// standIn names the window under which the stale slice may answer for
// an origin that answered code (the proxy's 502 or 504 for a refused,
// reset or timed-out connection among them), as fill.staleIfError judges
// a whole response; "" when it may not.
func (s *sliceHandler) standIn(stale *slicePart, reqCC Directives, code int) string {
	if stale == nil {
		return ""
	}
	e := stale.e
	cc := s.h.cc(e)
	staleness := e.age(s.h.c.now()) - e.lifetime()
	if within(staleness, s.h.window(cc.StaleIfError, reqCC.StaleIfError, s.h.rt.o.StaleIfError)) {
		return "stale-if-error"
	}
	switch code {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if within(staleness, s.h.grace(cc)) {
			return "grace"
		}
	}
	return ""
}

// sliceWriter receives the origin's answer to a slice request: a 206 is
// kept (at most one slice of it), anything else streams to the client
// when there is one to stream to.
type sliceWriter struct {
	header  http.Header
	client  http.ResponseWriter
	r       *http.Request
	h       *handler
	limit   int64
	status  int
	body    []byte
	over    bool
	passing bool
	wrote   bool
	// hold: a stale slice may answer for a server error, so one is not
	// streamed to the client.
	hold bool
}

func (sw *sliceWriter) Header() http.Header {
	if sw.passing {
		return sw.client.Header()
	}
	return sw.header
}

func (sw *sliceWriter) WriteHeader(code int) {
	if sw.wrote || code < 200 {
		return
	}
	sw.wrote = true
	sw.status = code
	if code == http.StatusPartialContent || sw.client == nil || sw.hold && code >= 500 {
		if n, err := strconv.ParseInt(sw.header.Get("Content-Length"), 10, 64); err == nil && n <= sw.limit {
			sw.body = bodyBuffer(int(n))
		}
		return
	}
	// Not a slice: the origin ignores Range or failed. The response goes
	// to the client as it is and nothing of it is stored, however large.
	sw.passing = true
	h := sw.client.Header()
	for k, v := range sw.header {
		h[k] = v
	}
	stripTagFields(h)
	stripTargeted(h, sw.h.rt.strip)
	sw.h.c.addStatus(sw.r, h, Status{Fwd: "miss", FwdStatus: code, Detail: "not-sliced"})
	sw.h.rt.stats.misses.Add(1)
	sw.client.WriteHeader(code)
}

func (sw *sliceWriter) Write(p []byte) (int, error) {
	if !sw.wrote {
		sw.WriteHeader(http.StatusOK)
	}
	if sw.passing {
		return sw.client.Write(p)
	}
	if sw.hold && sw.status >= 500 {
		return len(p), nil // an error a stale slice may answer for: dropped
	}
	if sw.status != http.StatusPartialContent || int64(len(sw.body)+len(p)) > sw.limit {
		// More than a slice, or not one: kept no further, and the
		// proxy is told to stop reading.
		sw.over = true
		return 0, errSliceTooLarge
	}
	sw.body = append(sw.body, p...)
	return len(p), nil
}

var errSliceTooLarge = errors.New("cache: not a slice of the requested size")

// FlushError passes flushes of a streamed-through response on.
func (sw *sliceWriter) FlushError() error {
	if sw.passing {
		return http.NewResponseController(sw.client).Flush()
	}
	return nil
}
