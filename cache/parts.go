package cache

import (
	"bytes"
	"cmp"
	"context"
	"hash/maphash"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gateway/internal/outcome"
)

// Partial content on a route without slices (RFC 9111 3.3 and 3.4). A
// range request the cache has no whole response for goes to the origin
// as sent; a 206 it answers with one byte range of a representation with
// a strong validator is kept as a part, and later range requests that a
// part covers are answered from it. Parts of one representation (the
// same strong ETag and length) are combined into one stored entry; parts
// that come to cover the whole representation become the whole response,
// stored as a 200 would have been. A request for the whole
// representation while only parts are stored goes forward.
//
// The parts of a key live in one entry under partsKey: its body the
// parts' bytes one after the other, partsField listing their ranges and
// the representation's length. The ordinary lookup never finds it, and
// a purge of the URL removes it with the rest.

// partsField, in a parts entry's stored header, lists the byte ranges its
// body holds and the representation's length: "0-99,200-299/1000". It is
// the cache's own: an origin's field of that name is dropped, and it is
// never sent.
const partsField = "Gateway-Stored-Parts"

// maxParts bounds how many separate ranges one entry keeps; past it, a
// new part replaces them.
const maxParts = 16

// partsKey is the key the parts of the representation keyed primary are
// stored under (see sliceKey for why a last component).
func partsKey(primary string) string {
	return primary + "\x00parts"
}

// partSpan is one stored range: bytes first..last of the representation, at
// off in the entry's body.
type partSpan struct{ first, last, off int64 }

// storedParts reads a parts entry's ranges and the representation's
// length; ok is false for anything malformed, which is then not used.
func storedParts(e *Entry) (spans []partSpan, total int64, ok bool) {
	v := e.Header.Get(partsField)
	list, tot, found := strings.Cut(v, "/")
	if !found {
		return nil, 0, false
	}
	total, err := strconv.ParseInt(tot, 10, 64)
	if err != nil || total <= 0 {
		return nil, 0, false
	}
	off := int64(0)
	for item := range strings.SplitSeq(list, ",") {
		a, b, found := strings.Cut(item, "-")
		first, err1 := strconv.ParseInt(a, 10, 64)
		last, err2 := strconv.ParseInt(b, 10, 64)
		if !found || err1 != nil || err2 != nil || first < 0 || last < first || last >= total {
			return nil, 0, false
		}
		spans = append(spans, partSpan{first, last, off})
		off += last - first + 1
	}
	if off != int64(len(e.Body)) {
		return nil, 0, false
	}
	return spans, total, true
}

// parseContentRange reads a 206's "bytes first-last/total" with a known
// total; ok is false for anything else ("*" lengths, other units).
func parseContentRange(v string) (first, last, total int64, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, _ := strings.Cut(spec, "/")
	a, b, _ := strings.Cut(rng, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || last >= total {
		return 0, 0, 0, false
	}
	return first, last, total, true
}

// strongETag reports whether etag is a strong validator: only those say
// that two parts are bytes of one representation (RFC 9110 8.8.1).
func strongETag(etag string) bool {
	return len(etag) >= 2 && etag[0] == '"'
}

// combinable reports whether a 206 with header h can be kept as a part:
// one byte range of a known length, and a strong validator.
func combinable(h http.Header) bool {
	if len(h["Content-Range"]) != 1 || !strongETag(h.Get("Etag")) {
		return false
	}
	_, _, _, ok := parseContentRange(h.Get("Content-Range"))
	return ok
}

// partRequest returns the single byte range of r when the parts may
// answer it or a 206 to it may be kept: a GET on a route without slices
// whose only precondition is its Range (If-Range aside), for a key not
// remembered as uncacheable, by a client that allows storing.
func (h *handler) partRequest(r *http.Request, lk *lookup, now time.Time) (byteRange, bool) {
	if r.Method != http.MethodGet || h.rt.o.Slice > 0 || len(r.Header["Range"]) == 0 ||
		lk.entry != nil || lk.reqCC.NoStore || now.Before(lk.passUntil) {
		return byteRange{}, false
	}
	for _, k := range [...]string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if len(r.Header[k]) > 0 {
			return byteRange{}, false
		}
	}
	return parseSingleRange(r.Header["Range"])
}

// servePart answers r from a stored part that covers its range br, and
// reports whether it did. When parts are stored but cannot answer, lk
// says so for the Cache-Status of the request that goes forward.
func (h *handler) servePart(w http.ResponseWriter, r *http.Request, lk *lookup, br byteRange, now time.Time) bool {
	obj, err := h.c.store.Get(r.Context(), partsKey(lk.primary))
	if err != nil {
		h.c.storeFailed("get", err)
	}
	if obj == nil || len(obj.Variants) == 0 {
		return false
	}
	e := findVariant(obj, r)
	if e == nil {
		return false
	}
	lk.fwd = "partial"
	age := e.age(now)
	lifetime := e.lifetime()
	v, _ := Usable(lk.reqCC, h.cc(e), age, lifetime)
	if v != Fresh && v != StaleAcceptable {
		return false
	}
	spans, total, ok := storedParts(e)
	if !ok {
		return false
	}
	if ir := r.Header.Get("If-Range"); ir != "" && ir != e.ETag {
		// RFC 9110 13.1.5: the client holds another representation, or
		// dates it: the origin answers, whole or not.
		return false
	}
	from, to := br.first, br.last
	switch {
	case br.first < 0:
		from, to = max(total-br.last, 0), total-1
	case br.first >= total:
		return false // the origin answers 416 with its own fields
	case br.last < 0 || br.last >= total:
		to = total - 1
	}
	i := slices.IndexFunc(spans, func(s partSpan) bool { return s.first <= from && to <= s.last })
	if i < 0 {
		return false
	}
	s := spans[i]
	hdr := w.Header()
	for k, vals := range e.Header {
		switch k {
		case partsField, "Content-Length", "Content-Range":
			continue
		}
		hdr[k] = vals
	}
	stripTargeted(hdr, h.rt.strip)
	hdr["Content-Range"] = []string{"bytes " + strconv.FormatInt(from, 10) + "-" + strconv.FormatInt(to, 10) + "/" + strconv.FormatInt(total, 10)}
	hdr["Content-Length"] = []string{strconv.FormatInt(to-from+1, 10)}
	hdr["Age"] = []string{strconv.FormatInt(min(int64(age/time.Second), deltaSecondsMax), 10)}
	st := Status{Hit: true, TTL: lifetime - age, HasTTL: true}
	if v == StaleAcceptable {
		st.Detail = "max-stale"
		h.rt.stats.staleHits.Add(1)
	} else {
		h.rt.stats.hits.Add(1)
	}
	if lk.shared {
		st.Detail = "shared"
	}
	h.rt.noteHit(lk.primary)
	AddCacheStatus(hdr, h.c.name, st)
	outcome.Record(r.Context(), st.Outcome())
	w.WriteHeader(http.StatusPartialContent)
	n, _ := w.Write(e.Body[s.off+from-s.first : s.off+to-s.first+1])
	h.rt.stats.hitBytes.Add(uint64(n))
	return true
}

// partLocks serialise the merging of parts per key (striped), so that
// two parts of one representation arriving together are both kept. Other
// processes sharing a store may still race; a part lost so is fetched
// again.
var (
	partLocks    [64]sync.Mutex
	partLockSeed = maphash.MakeSeed()
)

// storePart combines the 206 e, fetched for primary at purge generation
// gen, with the parts stored for the same representation, and stores the
// result: as parts, or as the whole response once they cover it all.
func (h *handler) storePart(ctx context.Context, primary string, e *Entry, gen purgeMark) {
	first, last, total, ok := parseContentRange(e.Header.Get("Content-Range"))
	if !ok || last-first+1 != int64(len(e.Body)) {
		return
	}
	key := partsKey(primary)
	mu := &partLocks[maphash.String(partLockSeed, key)%uint64(len(partLocks))]
	mu.Lock()
	defer mu.Unlock()
	type piece struct {
		first, last int64
		b           []byte
	}
	pieces := []piece{{first, last, e.Body}}
	if obj, err := h.c.store.Get(ctx, key); err != nil {
		h.c.storeFailed("get", err)
	} else if obj != nil {
		for _, old := range obj.Variants {
			if !bytes.Equal(old.VaryKey, e.VaryKey) || old.ETag != e.ETag {
				continue
			}
			spans, n, ok := storedParts(old)
			if !ok || n != total {
				continue
			}
			for _, s := range spans {
				pieces = append(pieces, piece{s.first, s.last, old.Body[s.off : s.off+s.last-s.first+1]})
			}
		}
	}
	// Sorted by start, the newest part first among equals, then folded:
	// where parts overlap, they hold the same bytes (one strong
	// validator), so any of them will do.
	slices.SortStableFunc(pieces, func(a, b piece) int { return cmp.Compare(a.first, b.first) })
	var merged []piece
	for _, p := range pieces {
		if n := len(merged); n > 0 && p.first <= merged[n-1].last+1 {
			m := &merged[n-1]
			if p.last > m.last {
				m.b = append(m.b[:len(m.b):len(m.b)], p.b[m.last+1-p.first:]...)
				m.last = p.last
			}
			continue
		}
		merged = append(merged, p)
	}
	size := int64(0)
	for _, p := range merged {
		size += p.last - p.first + 1
	}
	if len(merged) > maxParts || size > h.c.maxObj {
		merged, size = []piece{{first, last, e.Body}}, last-first+1
	}
	body := make([]byte, 0, size)
	var list strings.Builder
	for i, p := range merged {
		if i > 0 {
			list.WriteByte(',')
		}
		list.WriteString(strconv.FormatInt(p.first, 10) + "-" + strconv.FormatInt(p.last, 10))
		body = append(body, p.b...)
	}
	hdr := e.Header.Clone()
	delete(hdr, "Content-Range")
	delete(hdr, partsField)
	if len(merged) == 1 && merged[0].first == 0 && merged[0].last == total-1 {
		// The parts are the whole representation: stored as the 200 it
		// is, and the parts go.
		hdr["Content-Length"] = []string{strconv.FormatInt(total, 10)}
		whole := newEntry(http.StatusOK, hdr, body, e.Vary, e.VaryKey, e.Tags, e.RequestTime, e.ResponseTime, h.rt.o.Policy, h.rt.o.Compress)
		h.store(ctx, primary, whole, gen)
		if _, err := h.c.store.Delete(ctx, key); err != nil {
			h.c.storeFailed("delete", err)
		}
		return
	}
	hdr[partsField] = []string{list.String() + "/" + strconv.FormatInt(total, 10)}
	hdr["Content-Length"] = []string{strconv.FormatInt(size, 10)}
	h.store(ctx, key, newEntry(http.StatusPartialContent, hdr, body, e.Vary, e.VaryKey, e.Tags, e.RequestTime, e.ResponseTime, h.rt.o.Policy, nil), gen)
}
