package cache

import (
	"net/http"
	"time"
)

// Record is a stored response as a store keeps it and as it travels
// between processes: everything needed to serve it, and nothing that
// belongs to the process holding it (see Entry). MarshalBinary and
// UnmarshalBinary give it a compact, versioned and checked wire form.
type Record struct {
	Status int
	Header http.Header // stored response header, without the purge tag fields
	Body   []byte
	// The times RFC 9111 freshness needs: when the request that fetched
	// the response was sent and when the response was received, the
	// freshness lifetime (under the storing route's policy; Heuristic
	// when it was not given explicitly) and the corrected initial age
	// (RFC 9111 4.2.3).
	RequestTime  time.Time
	ResponseTime time.Time
	Lifetime     time.Duration
	InitialAge   time.Duration
	Heuristic    bool
	// Vary is the canonical Vary field list (VaryFields) the response was
	// stored under, nil when it has none; VaryKey is the VariantKey of the
	// fetching request under those fields (nil when no Vary).
	Vary    []string
	VaryKey []byte
	Tags    []string // purge tags (from Surrogate-Key / Cache-Tag), unique
	// Compress is what the storing route's compressor decided, so that
	// whichever process serves the record encodes it alike.
	Compress CompressMode
}

// CompressMode is how a stored response is compressed when it is served.
type CompressMode uint8

const (
	// CompressOff: the storing route did not compress; served as stored.
	CompressOff CompressMode = iota
	// CompressAsStored: the route compresses, but not this response: it is
	// served as stored, and a body the origin encoded varies on
	// Accept-Encoding (the route's compressor decodes it for a client
	// that does not accept its coding).
	CompressAsStored
	// CompressEncode: the route may encode this response; each coding a
	// client asks for is made once and kept with the entry.
	CompressEncode
)
