package cache

import (
	"context"
	"errors"
	"strconv"
)

// What a store shared by several processes (a shared tier under a
// TieredStore) needs from the cache, and what it gives back. The cache
// knows it only through these types: the Redis client lives in a package
// of its own.

// Coordinator coalesces misses across the processes that share a store,
// as the in-process flight does within one: of the processes missing
// the same key at once, one holds the key's fill lease and goes to the
// origin; the others wait until its fill lands in the shared store and
// read it from there.
type Coordinator interface {
	// Lease takes primary's fill lease, or waits for the process that
	// holds it. It returns
	//   - a Lease: this process fetches, stores what it may and then
	//     calls Release;
	//   - nil and no error: the holder released the lease (its fill may
	//     have landed), or the lease lapsed (the holder died or stalled),
	//     or ctx ended: the caller looks in the store again and, when
	//     nothing there answers it, asks again or fetches itself;
	//   - an error: the coordinator cannot help now (the shared tier is
	//     down): the caller fetches without it, at once.
	// primary is only read during the call.
	Lease(ctx context.Context, primary string) (Lease, error)
}

// Lease is a fill lease held by this process.
type Lease interface {
	// Release gives the lease up and wakes the processes waiting for it.
	// It takes effect after the store's write of what the fill stored
	// under the key, if that write is still under way, so that those it
	// wakes find the fill; it never blocks the caller.
	Release()
}

// A Lease may also have a Found method, which the cache calls instead of
// Release when, having taken the lease, it found the key filled after
// all: the waiters then look in the store, as after a fill.

// Form is one encoded form of an entry's body, as it travels with the
// entry to another process so that no process encodes what another
// already did.
type Form struct {
	Coding string // br, zstd or gzip
	Body   []byte
	ETag   string // the entry's ETag for this coding, "" when it has none
}

// Forms returns the encoded forms made of e so far.
func (e *Entry) Forms() []Form {
	var fs []Form
	for i := range e.forms {
		f := e.forms[i].done.Load()
		if f == nil {
			continue
		}
		fs = append(fs, Form{Coding: formCodings[i], Body: f.body, ETag: f.etag()})
	}
	return fs
}

// AddForm gives e an encoded form another process made, unless e has one
// for that coding already or cannot be served encoded; it reports whether
// the form was taken. Call it before the entry is handed to a Store.
func (e *Entry) AddForm(f Form) bool {
	i := formIndex(f.Coding)
	if i < 0 || !e.compressible || (e.ETag == "") != (f.ETag == "") {
		return false
	}
	var etag []string
	if f.ETag != "" {
		etag = []string{f.ETag}
	}
	enc := &encoded{body: f.Body}
	enc.fields, enc.over = formFields(e, f.Coding, len(f.Body), etag)
	return e.forms[i].done.CompareAndSwap(nil, enc)
}

// SoftPurge marks e stale, as a soft purge does: it may still be served
// stale or revalidated, never as fresh.
func (e *Entry) SoftPurge() { e.softPurged.Store(true) }

// PurgeKind names what a purge selects, for a purge that another process
// made and this one applies to its own tier.
type PurgeKind uint8

// The kinds of purges, as the Store methods that make them.
const (
	PurgeKindURL    PurgeKind = iota // PurgeURL
	PurgeKindPrefix                  // PurgePrefix
	PurgeKindTag                     // PurgeTag
	PurgeKindAll                     // PurgeAll
)

func (k PurgeKind) String() string {
	switch k {
	case PurgeKindURL:
		return "url"
	case PurgeKindPrefix:
		return "prefix"
	case PurgeKindTag:
		return "tag"
	case PurgeKindAll:
		return "all"
	}
	return "kind " + strconv.Itoa(int(k))
}

// PurgeStore applies a purge of kind to s.
func PurgeStore(ctx context.Context, s Store, kind PurgeKind, value string, soft bool) (int, error) {
	switch kind {
	case PurgeKindURL:
		return s.PurgeURL(ctx, value, soft)
	case PurgeKindPrefix:
		return s.PurgePrefix(ctx, value, soft)
	case PurgeKindTag:
		return s.PurgeTag(ctx, value, soft)
	case PurgeKindAll:
		return s.PurgeAll(ctx, soft)
	}
	return 0, errors.New("cache: unknown purge kind " + kind.String())
}

// URLInvalidator is a Store that removes a URL's entries for an unsafe
// request (RFC 9111 4.4) without making the response wait for what it
// shares with other processes: TieredStore, over a second tier that
// invalidates in the background.
type URLInvalidator interface {
	InvalidateURL(ctx context.Context, url string) error
}

// SecondTierError is a TieredStore purge that reached its first tier but
// not its second: done in this process, not in the shared tier (and so
// not announced to the other processes).
type SecondTierError struct{ Err error }

func (e *SecondTierError) Error() string { return "shared tier: " + e.Err.Error() }
func (e *SecondTierError) Unwrap() error { return e.Err }
