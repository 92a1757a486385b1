package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"net/http"
	"slices"
	"time"

	"golang.org/x/net/http/httpguts"
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

// The wire form of a Record (MarshalBinary), all integers varints
// (encoding/binary, minimal length):
//
//	"GWR" version(1)
//	flags                      bit 0 Heuristic, bits 1-2 Compress
//	uvarint Status             100-999
//	varint, uvarint            RequestTime: Unix seconds, nanoseconds
//	varint, uvarint            ResponseTime
//	uvarint, uvarint           Lifetime, InitialAge (nanoseconds)
//	list of string             Vary
//	bytes                      VaryKey
//	list of string             Tags
//	uvarint n, n fields        Header, names strictly ascending, each
//	                           string name, list of string values
//	bytes                      Body
//	4 bytes                    CRC-32C (Castagnoli) of all before, big endian
//
// where bytes and string are a uvarint length and the bytes, and a list
// is a uvarint count and its members. An empty slice decodes as nil. The
// form is canonical: one record has one encoding, and a decoder accepts
// nothing else.
const (
	recordMagic   = "GWR"
	recordVersion = 1
	recordFlagsOK = 0b111
)

// Times are of the years 1 to 9999: the zero time and every HTTP-date.
const (
	minRecordSec = -62135596800 // 0001-01-01T00:00:00Z
	maxRecordSec = 253402300799 // 9999-12-31T23:59:59Z
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errRecord is wrapped by every decoding error.
var errRecord = errors.New("cache record")

func recordErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errRecord, fmt.Sprintf(format, args...))
}

// MarshalBinary encodes r in its wire form.
func (r *Record) MarshalBinary() ([]byte, error) { return r.AppendBinary(nil) }

// AppendBinary appends r's wire form to b. It fails only for a record the
// form cannot hold: a status outside 100-999, a negative duration, an
// unknown Compress, a time outside the years 1 to 9999.
func (r *Record) AppendBinary(b []byte) ([]byte, error) {
	switch {
	case !recordTime(r.RequestTime) || !recordTime(r.ResponseTime):
		return b, recordErr("time out of range")
	case r.Status < 100 || r.Status > 999:
		return b, recordErr("status %d", r.Status)
	case r.Lifetime < 0 || r.InitialAge < 0:
		return b, recordErr("negative lifetime or age")
	case r.Compress > CompressEncode:
		return b, recordErr("compress mode %d", r.Compress)
	}
	start := len(b)
	b = append(b, recordMagic...)
	b = append(b, recordVersion)
	flags := byte(r.Compress) << 1
	if r.Heuristic {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(r.Status))
	b = appendTime(b, r.RequestTime)
	b = appendTime(b, r.ResponseTime)
	b = binary.AppendUvarint(b, uint64(r.Lifetime))
	b = binary.AppendUvarint(b, uint64(r.InitialAge))
	b = appendStrings(b, r.Vary)
	b = appendBytes(b, r.VaryKey)
	b = appendStrings(b, r.Tags)
	names := slices.Sorted(maps.Keys(r.Header))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		b = appendBytes(b, []byte(name))
		b = appendStrings(b, r.Header[name])
	}
	b = appendBytes(b, r.Body)
	return seal(b, start), nil
}

// seal appends the checksum of the form that starts at b[start].
func seal(b []byte, start int) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

func recordTime(t time.Time) bool {
	s := t.Unix()
	return s >= minRecordSec && s <= maxRecordSec
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// UnmarshalBinary decodes a wire form into r, copying what it keeps. It
// trusts nothing: a form that is truncated, corrupt (checksum), of
// another version, not canonical, or that holds a record the cache would
// never store (invalid field names or values, a status outside 100-999,
// too many or too long tags) is an error wrapping errRecord, and r is
// then left unchanged.
func (r *Record) UnmarshalBinary(data []byte) error {
	if len(data) < len(recordMagic)+1+4 || string(data[:len(recordMagic)]) != recordMagic {
		return recordErr("not a record")
	}
	if v := data[len(recordMagic)]; v != recordVersion {
		return recordErr("version %d", v)
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return recordErr("checksum mismatch")
	}
	d := recordDecoder{b: body[len(recordMagic)+1:]}
	var out Record
	flags := d.byte()
	if flags&^recordFlagsOK != 0 || CompressMode(flags>>1) > CompressEncode {
		return recordErr("flags %#x", flags)
	}
	out.Heuristic = flags&1 != 0
	out.Compress = CompressMode(flags >> 1)
	status := d.uvarint()
	out.RequestTime = d.time()
	out.ResponseTime = d.time()
	lifetime, age := d.uvarint(), d.uvarint()
	out.Vary = d.strings()
	out.VaryKey = d.bytes()
	out.Tags = d.strings()
	out.Header = d.header()
	out.Body = d.bytes()
	switch {
	case d.err != nil:
		return d.err
	case len(d.b) != 0:
		return recordErr("%d bytes after the body", len(d.b))
	case status < 100 || status > 999:
		return recordErr("status %d", status)
	case lifetime > math.MaxInt64 || age > math.MaxInt64:
		return recordErr("duration out of range")
	case len(out.Tags) > maxTags:
		return recordErr("%d tags", len(out.Tags))
	}
	out.Status = int(status)
	out.Lifetime, out.InitialAge = time.Duration(lifetime), time.Duration(age)
	for _, f := range out.Vary {
		if !httpguts.ValidHeaderFieldName(f) {
			return recordErr("Vary field %q", f)
		}
	}
	for _, t := range out.Tags {
		if t == "" || len(t) > maxTagLen {
			return recordErr("tag of %d bytes", len(t))
		}
	}
	*r = out
	return nil
}

// recordDecoder reads the parts of a wire form; the first error sticks
// and every later read returns zero values.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) fail(what string) {
	if d.err == nil {
		d.err = recordErr("%s", what)
	}
	d.b = nil
}

func (d *recordDecoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *recordDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n > 1 && d.b[n-1] == 0 { // an overlong form ends in a zero byte
		d.fail("bad or non-minimal uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 || n > 1 && d.b[n-1] == 0 {
		d.fail("bad or non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) time() time.Time {
	sec, nsec := d.varint(), d.uvarint()
	if nsec >= 1e9 || sec < minRecordSec || sec > maxRecordSec {
		d.fail("time out of range")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// count reads a length or count, which can never exceed the bytes left
// (every member takes at least one), so that garbage cannot make the
// decoder allocate more than the input's size.
func (d *recordDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length past the end")
		return 0
	}
	return int(n)
}

func (d *recordDecoder) raw() []byte {
	n := d.count()
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *recordDecoder) bytes() []byte {
	if p := d.raw(); len(p) > 0 {
		return bytes.Clone(p)
	}
	return nil
}

func (d *recordDecoder) strings() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	ss := make([]string, n) // len == cap: a header's values are appended to by copying
	for i := range ss {
		ss[i] = string(d.raw())
	}
	if d.err != nil {
		return nil
	}
	return ss
}

func (d *recordDecoder) header() http.Header {
	n := d.count()
	if n == 0 {
		return nil
	}
	h := make(http.Header, n)
	prev := ""
	for i := range n {
		name := string(d.raw())
		values := d.strings()
		if d.err != nil {
			return nil
		}
		if i > 0 && name <= prev {
			d.fail("header names not strictly ascending")
			return nil
		}
		if !httpguts.ValidHeaderFieldName(name) {
			d.fail(fmt.Sprintf("header name %q", name))
			return nil
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				d.fail(fmt.Sprintf("%s value %q", name, v))
				return nil
			}
		}
		h[name] = values
		prev = name
	}
	return h
}
