package cache

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"time"
)

// Store is where the cache keeps responses: MemoryStore in this process,
// TieredStore over two stores, and later stores shared by several
// processes. Keys are primary keys (Keyer); a key holds the variants of
// one URL (Vary) or a hit-for-pass marker.
//
// Every call that reads or changes what is stored takes a context and may
// fail; the cache treats a failed Get as a miss and a failed Set as a
// response not stored, so a store that fails costs hits, never requests.
// Purges select by URL part (URLPart), by byte prefix of it, by tag or
// everything; a soft purge marks the entries stale (they may still be
// served by stale-if-error, or revalidated) instead of removing them. The
// index that purges need is each store's own.
//
// A Store is safe for concurrent use. The Objects and Entries it returns
// are shared and must not be modified.
type Store interface {
	// Get returns what is stored under primary; nil and no error is a miss.
	// It is the hot path: a store in memory should allocate nothing.
	// primary may be a view of a buffer the caller reuses: Get must not
	// keep it (nor hand it to a call that does) without copying it.
	Get(ctx context.Context, primary string) (*Object, error)
	// Set stores e as a variant of primary, under the Vary fields e.Vary,
	// replacing the variant with the same VaryKey and, when the stored
	// Vary differs, every other variant and any pass marker. It reports
	// whether e is stored and visible to Get on return.
	Set(ctx context.Context, primary string, e *Entry) (stored bool, err error)
	// SetPass replaces whatever is stored under primary with a
	// hit-for-pass marker that lasts until until.
	SetPass(ctx context.Context, primary string, until time.Time) error
	// Delete removes whatever is stored under primary and reports whether
	// there was anything.
	Delete(ctx context.Context, primary string) (found bool, err error)
	// PurgeURL purges the keys whose URL part equals url, PurgePrefix
	// those whose URL part has the byte prefix prefix, PurgeTag the
	// entries tagged tag (exact equality) and PurgeAll everything. Each
	// returns the number of entries purged.
	PurgeURL(ctx context.Context, url string, soft bool) (int, error)
	PurgePrefix(ctx context.Context, prefix string, soft bool) (int, error)
	PurgeTag(ctx context.Context, tag string, soft bool) (int, error)
	PurgeAll(ctx context.Context, soft bool) (int, error)
	// PathURLs lists the distinct URL parts stored whose path part
	// (PathPart) equals path or, when prefix, has the byte prefix path:
	// the same path under every scheme and host. Purges by path use it
	// to find the hosts, and explanations of a purge that matched nothing.
	PathURLs(ctx context.Context, path string, prefix bool) ([]string, error)
	// Stats returns the store's counters, as this process knows them,
	// without I/O.
	Stats() StoreStats
	// Close releases the store. Calls after it do nothing.
	Close() error
}

// Recoster is implemented by a store that bounds its memory by the size of
// the entries it holds (Entry.Size). The cache calls Recost after an entry
// it served from the store grew (an encoded form was added), so that the
// bound keeps counting everything the entry holds. primary is only looked
// up, never kept, so it may be a view of a reused buffer.
type Recoster interface {
	Recost(primary string, e *Entry)
}

// bodyBuffer returns an empty buffer for a body of n bytes whose capacity
// is the whole allocation (n rounded up to its size class), so that the
// cost charged for it is the heap it takes.
func bodyBuffer(n int) []byte { return slices.Grow([]byte(nil), n) }

// tightBody returns b, or a copy of it that holds no more than its size
// class when growing it by appends left more than an eighth unused: the
// stored body of a response without Content-Length, or an encoded form.
func tightBody(b []byte) []byte {
	if cap(b)-len(b) <= len(b)/8 {
		return b
	}
	return bytes.Clone(b)
}

// Object is a read-only snapshot of what is stored under one primary key.
type Object struct {
	Primary   string
	Vary      []string  // canonical Vary field names of the stored variants (nil: no Vary)
	Variants  []*Entry  // newest first, each stored under Vary
	PassUntil time.Time // hit-for-pass marker (zero: none). While set and in the future the handler does not coalesce misses for this key.
	// Shared is set on an object read from a store shared with other
	// processes rather than from this process's memory: a hit on it says
	// so in Cache-Status (detail=shared).
	Shared bool
}

// StoreStats are a Store's counters.
type StoreStats struct {
	Entries        int64  // variants stored now
	Objects        int64  // primary keys stored now (pass markers included)
	Bytes          int64  // sum of cost of stored objects now
	Stores         uint64 // successful Set calls (stored after admission)
	AdmissionDrops uint64 // Sets dropped by ristretto's buffer or rejected by its admission policy
	Evictions      uint64 // objects evicted to make room
	Purges         uint64 // entries removed or soft-purged by Purge* and Delete calls
	Errors         uint64 // calls that failed without failing the caller (a TieredStore's second tier and its fills)
}

// PathPart returns the path and query components of a URL part (see
// URLPart), without its scheme and host: "path NUL query".
func PathPart(urlPart string) string {
	for range 2 {
		i := strings.IndexByte(urlPart, 0)
		if i < 0 {
			return ""
		}
		urlPart = urlPart[i+1:]
	}
	return urlPart
}

// URLPart returns primary up to (not including) the NUL that ends its 4th
// component (query), or the whole key when it has no 5th component.
func URLPart(primary string) string {
	end := 0
	for range 4 {
		i := strings.IndexByte(primary[end:], 0)
		if i < 0 {
			return primary
		}
		end += i + 1
	}
	return primary[:end-1]
}
