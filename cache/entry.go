package cache

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Entry is one stored response in this process: its Record, which is all
// another process would need to serve it, plus what this process derives
// from it and keeps beside it (parsed directives, validators, the flags
// of soft purges and background refreshes, the encoded forms made so
// far). Build it with NewEntry. The Record is immutable once the entry is
// handed to a Store.
type Entry struct {
	Record

	// Linger is how long past its freshness lifetime the storing route
	// may still use the entry (the largest of its stale windows, RFC 5861,
	// and the route's grace): how long a store that expires entries by
	// itself keeps it.
	Linger time.Duration

	// Derived from the Record by NewEntry.
	CC           Directives // parsed response Cache-Control
	ETag         string
	LastModified string

	softPurged atomic.Bool
	refreshing atomic.Bool

	// targeted caches the directives of a targeted field (RFC 9213) for
	// the last route field asked about; see directives.
	targeted atomic.Pointer[fieldDirectives]

	// Compression (see encode.go), derived from Record.Compress and the
	// header: whether the entry may be served encoded, whether its header
	// holds digests (dropped from encoded forms), the Vary to send when
	// its responses depend on Accept-Encoding (nil: as stored), the coding
	// of a body stored encoded by the origin ("" none, on a compressing
	// route only), and the encoded forms made so far, each computed once.
	compressible bool
	digests      bool
	varyAE       []string
	coding       string
	forms        [numForms]form

	// fields is Header as a slice, which a hit copies into the response
	// faster than it could iterate the map; nil for an entry not built
	// by NewEntry, whose hits then iterate Header.
	fields []field
	// plainCC: NewEntry found no CDN-Cache-Control, so that a route
	// without a targeted field of its own obeys CC without looking.
	plainCC bool
	// hit holds the Age and Cache-Status values of the last hit, which
	// the hits of the same second share (hitValues).
	hit atomic.Pointer[hitHeader]
}

// field is one header field of a stored response.
type field struct {
	name   string
	values []string
}

// headerFields returns h as a slice of fields, without those drop names.
func headerFields(h http.Header, drop func(name string) bool) []field {
	fs := make([]field, 0, len(h))
	for k, v := range h {
		if drop == nil || !drop(k) {
			fs = append(fs, field{k, v})
		}
	}
	return fs
}

// hitHeader are the Age and Cache-Status values of a hit served at age
// seconds with Cache-Status ttl and detail, by the cache named name.
type hitHeader struct {
	age, ttl     int64
	name, detail string
	vals         []string // Age, then Cache-Status
}

// hitValues returns the Age and Cache-Status values of a hit on e at age
// seconds with status st, which must be a hit's (Hit, HasTTL, no Key).
// They change once a second at most, so the values built for one hit
// serve the others of that second: a hit then allocates none. Each value
// is handed out as a slice whose length equals its capacity, so that
// appending to it copies.
func (e *Entry) hitValues(name string, age int64, st Status) []string {
	ttl := floorSeconds(st.TTL)
	if p := e.hit.Load(); p != nil && p.age == age && p.ttl == ttl && p.detail == st.Detail && p.name == name {
		return p.vals
	}
	var buf [128]byte
	p := &hitHeader{age: age, ttl: ttl, name: name, detail: st.Detail}
	p.vals = []string{strconv.FormatInt(age, 10), string(st.Append(buf[:0], name))}
	e.hit.Store(p)
	return p.vals
}

// NewEntry wraps r, which it takes over (its header, body and slices must
// not be changed afterwards), in the state this process keeps beside it.
func NewEntry(r Record) *Entry {
	e := &Entry{
		Record:       r,
		CC:           ParseCacheControl(r.Header),
		ETag:         r.Header.Get("Etag"),
		LastModified: r.Header.Get("Last-Modified"),
		fields:       headerFields(r.Header, nil),
		plainCC:      len(r.Header[CDNCacheControl]) == 0,
	}
	prepareEncoding(e)
	return e
}

// fieldDirectives are the directives an entry is served under when a
// route names targeted field field.
type fieldDirectives struct {
	field string
	d     Directives
}

// directives are the response directives this cache obeys for the entry
// on a route whose own targeted field is field ("" none): a valid
// targeted field's, else Cache-Control's (CC). Entries are keyed by URL,
// not route, and a Record carries no route, so this is derived where the
// route is known; it is parsed once per entry and field, not per hit, and
// not at all for the usual entry without targeted fields.
func (e *Entry) directives(field string) Directives {
	if e.plainCC && field == "" {
		return e.CC
	}
	if len(e.Header[CDNCacheControl]) == 0 && (field == "" || len(e.Header[field]) == 0) {
		return e.CC
	}
	if p := e.targeted.Load(); p != nil && p.field == field {
		return p.d
	}
	d, _ := cacheDirectives(e.Header, field)
	e.targeted.Store(&fieldDirectives{field, d})
	return d
}

// SoftPurged reports whether a soft purge has marked the entry stale.
func (e *Entry) SoftPurged() bool { return e.softPurged.Load() }

// TryRefresh claims the single background refresh of this entry: true for the first caller only.
func (e *Entry) TryRefresh() bool { return e.refreshing.CompareAndSwap(false, true) }

// Per-allocation overheads, so that the cost a memory store charges
// follows the heap it really holds even for entries with tiny bodies and
// for pass markers, of which there can be many. Measured with Go 1.26 on
// amd64 (see TestChargedCostFollowsHeap): the Entry struct with its
// parsed directives, a header map's groups, an object with its slots in
// the index, the URL set and ristretto's map and policy.
const (
	headerLineOverhead = 48  // string and slice headers, map slot
	fieldOverhead      = 40  // a header field's slot in Entry.fields or a form's
	hitOverhead        = 160 // hitHeader and its values, once the entry is hit
	entryOverhead      = 640 // Entry struct, Header map, slice headers
	objectOverhead     = 560 // object struct, its index slots, ristretto's item
	setMemberOverhead  = 64  // one member of a URL or tag set
)

// Size is the heap the entry holds, encoded forms included: its
// contribution to a memory store's cost. Byte slices count by capacity,
// which is what they hold of the heap: a body is allocated rounded up to
// the runtime's size class (up to an eighth more, 8 KiB pages above
// 32 KiB), see bodyBuffer and tightBody.
func (e *Entry) Size() int64 {
	n := entryOverhead + hitOverhead + cap(e.Body) + cap(e.VaryKey)
	for name, vs := range e.Header {
		n += len(name) + fieldOverhead
		for _, v := range vs {
			n += len(v) + headerLineOverhead
		}
	}
	for _, t := range e.Tags {
		n += len(t) + headerLineOverhead
	}
	for i := range e.forms {
		if f := e.forms[i].done.Load(); f != nil {
			n += cap(f.body) + entryOverhead + len(f.fields)*fieldOverhead
		}
	}
	return int64(n)
}

// lifetime is the freshness lifetime the entry is served with: none once
// a soft purge marked it stale.
func (e *Entry) lifetime() time.Duration {
	if e.SoftPurged() {
		return 0
	}
	return e.Lifetime
}

// age is the entry's current age at now (RFC 9111 4.2.3).
func (e *Entry) age(now time.Time) time.Duration {
	return addSat(e.InitialAge, nonNegative(now.Sub(e.ResponseTime)))
}

// newEntry builds the entry of a response to be stored, with what RFC
// 9111 freshness needs computed under the route's policy and the route's
// compression decided; hdr and body become the entry's and must not be
// changed afterwards.
func newEntry(status int, hdr http.Header, body []byte, vary []string, varyKey []byte, tags []string, reqTime, respTime time.Time, o StoreOptions, enc Encoder) *Entry {
	resp := &http.Response{StatusCode: status, Header: hdr}
	r := Record{
		Status:       status,
		Header:       hdr,
		Body:         body,
		RequestTime:  reqTime,
		ResponseTime: respTime,
		InitialAge:   CurrentAge(resp, reqTime, respTime, respTime),
		Vary:         vary,
		VaryKey:      varyKey,
		Tags:         tags,
		Compress:     compressMode(status, hdr, enc),
	}
	r.Lifetime, r.Heuristic = FreshnessLifetime(resp, o)
	return NewEntry(r)
}
