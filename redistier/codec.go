package redistier

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"gateway/cache"
)

// Keys. Every key of one primary key carries the same Cluster hash tag
// (the hash of the primary key), so that the object, its lease and its
// waiters flag sit in one slot and one Lua script may touch them all:
//
//	<prefix>{<hash>}      HASH: field "m" the meta, one field per variant
//	<prefix>{<hash>}:l    STRING: the fill lease's token
//	<prefix>{<hash>}:w    STRING: set while a process waits on the lease
//	<prefix>{purge}:seq   INTEGER: the last purge's sequence number
//	<prefix>{purge}:log   LIST: the last purgeLogLen purges, oldest first
//	<prefix>events        pub/sub channel: purge and fill notifications
//
// The hash is the first 18 bytes of SHA-256, base64url: any key length
// fits, and collisions are told apart by the primary key kept in the meta.
type keys struct {
	prefix string
}

func (k keys) hash(primary string) string {
	sum := sha256.Sum256([]byte(primary))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

func (k keys) object(h string) string  { return k.prefix + "{" + h + "}" }
func (k keys) lease(h string) string   { return k.prefix + "{" + h + "}:l" }
func (k keys) waiters(h string) string { return k.prefix + "{" + h + "}:w" }
func (k keys) seq() string             { return k.prefix + "{purge}:seq" }
func (k keys) log() string             { return k.prefix + "{purge}:log" }
func (k keys) events() string          { return k.prefix + "events" }

// metaField is the hash field of an object's meta; variant fields start
// with "v" so that no variant can take its name.
const metaField = "m"

// variantField names the field of the variant with varyKey.
func variantField(varyKey []byte) string {
	sum := sha256.Sum256(varyKey)
	return "v" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

// Values. Each is an envelope:
//
//	"GWT" version(1) kind(1) payload CRC-32C(4, big endian, of all before)
//
// kind 'm', the meta: bytes primary, list of string Vary, varint
// PassUntil (Unix nanoseconds, 0: none).
//
// kind 'v', a variant: uvarint stamp (the purge sequence number known
// when the response's request was sent), uvarint Linger (ns), uvarint
// number of forms, each string coding, string etag, bytes body, and last
// the record (cache.Record's wire form, itself checked), up to the CRC:
// last, so that it is appended in place, its length being the rest.
//
// Integers are encoding/binary varints, bytes and strings a uvarint
// length and the bytes, a list a uvarint count and its members. A decoder
// takes nothing else: trailing bytes are an error.
const (
	valueMagic   = "GWT"
	valueVersion = 1
	kindMeta     = 'm'
	kindVariant  = 'v'
	maxForms     = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt is every decoding error: the value is treated as missing.
var errCorrupt = errors.New("redistier: corrupt value")

// meta is what an object's meta field holds.
type meta struct {
	Primary   string
	Vary      []string
	PassUntil time.Time
}

// variant is one stored variant as it travels.
type variant struct {
	Stamp  uint64
	Linger time.Duration
	Record []byte // cache.Record wire form
	Forms  []cache.Form
}

func appendHead(b []byte, kind byte) []byte {
	b = append(b, valueMagic...)
	return append(b, valueVersion, kind)
}

func seal(b []byte, start int) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func encodeMeta(m meta) []byte {
	b := appendHead(make([]byte, 0, 32+len(m.Primary)), kindMeta)
	b = appendString(b, m.Primary)
	b = binary.AppendUvarint(b, uint64(len(m.Vary)))
	for _, v := range m.Vary {
		b = appendString(b, v)
	}
	b = binary.AppendVarint(b, unixNano(m.PassUntil))
	return seal(b, 0)
}

func encodeVariant(v variant) []byte {
	b, _ := appendVariant(v.Stamp, v.Linger, v.Forms, func(b []byte) ([]byte, error) { return append(b, v.Record...), nil }, len(v.Record))
	return b
}

// appendVariant encodes a variant whose record appendRecord appends, in
// one buffer sized for it (recordSize is a guess).
func appendVariant(stamp uint64, linger time.Duration, forms []cache.Form, appendRecord func([]byte) ([]byte, error), recordSize int) ([]byte, error) {
	n := 48 + recordSize
	for _, f := range forms {
		n += 16 + len(f.Coding) + len(f.ETag) + len(f.Body)
	}
	b := appendHead(make([]byte, 0, n), kindVariant)
	b = binary.AppendUvarint(b, stamp)
	b = binary.AppendUvarint(b, uint64(max(linger, 0)))
	b = binary.AppendUvarint(b, uint64(len(forms)))
	for _, f := range forms {
		b = appendString(b, f.Coding)
		b = appendString(b, f.ETag)
		b = appendBytes(b, f.Body)
	}
	b, err := appendRecord(b)
	if err != nil {
		return nil, err
	}
	return seal(b, 0), nil
}

// decoder reads an envelope's payload; the first error sticks.
type decoder struct {
	b   []byte
	bad bool
}

// open checks an envelope of kind and returns a decoder of its payload.
func open(data []byte, kind byte) decoder {
	h := len(valueMagic) + 2
	if len(data) < h+4 || string(data[:len(valueMagic)]) != valueMagic ||
		data[len(valueMagic)] != valueVersion || data[len(valueMagic)+1] != kind {
		return decoder{bad: true}
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(data[len(data)-4:]) {
		return decoder{bad: true}
	}
	return decoder{b: body[h:]}
}

func (d *decoder) fail() { d.bad, d.b = true, nil }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n > 1 && d.b[n-1] == 0 { // only the minimal form, so one value has one encoding
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 || n > 1 && d.b[n-1] == 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// raw reads a length and that many bytes, a view of the input.
func (d *decoder) raw() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// count reads a count of members, each at least one byte long.
func (d *decoder) count(limit int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)) || n > uint64(limit) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) end() error {
	if d.bad || len(d.b) != 0 {
		return errCorrupt
	}
	return nil
}

func decodeMeta(data []byte) (meta, error) {
	d := open(data, kindMeta)
	var m meta
	m.Primary = string(d.raw())
	if n := d.count(1 << 10); n > 0 {
		m.Vary = make([]string, n)
		for i := range m.Vary {
			m.Vary[i] = string(d.raw())
		}
	}
	if ns := d.varint(); ns != 0 {
		m.PassUntil = time.Unix(0, ns)
	}
	if err := d.end(); err != nil {
		return meta{}, err
	}
	return m, nil
}

// decodeVariant decodes a variant. The forms' bodies are copies; Record
// is a view of data.
func decodeVariant(data []byte) (variant, error) {
	d := open(data, kindVariant)
	var v variant
	v.Stamp = d.uvarint()
	linger := d.uvarint()
	if n := d.count(maxForms); n > 0 {
		v.Forms = make([]cache.Form, n)
		for i := range v.Forms {
			f := &v.Forms[i]
			f.Coding = string(d.raw())
			f.ETag = string(d.raw())
			f.Body = bytes.Clone(d.raw())
			if f.Body == nil {
				f.Body = []byte{}
			}
		}
	}
	if !d.bad {
		v.Record, d.b = d.b, nil // a view: cache.Record.UnmarshalBinary copies what it keeps
	}
	if err := d.end(); err != nil || linger > 1<<62 {
		return variant{}, errCorrupt
	}
	v.Linger = time.Duration(linger)
	return v, nil
}

// entryOf builds the entry a variant holds, checking that it belongs
// under field with vary.
func entryOf(v variant, field string, vary []string) (*cache.Entry, error) {
	var r cache.Record
	if err := r.UnmarshalBinary(v.Record); err != nil {
		return nil, errCorrupt
	}
	if variantField(r.VaryKey) != field || !equalStrings(r.Vary, vary) {
		return nil, errCorrupt
	}
	e := cache.NewEntry(r)
	e.Linger = v.Linger
	for _, f := range v.Forms {
		e.AddForm(f)
	}
	return e, nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
