package jobs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"net/http"
	"time"
)

// The Redis record of a job is binary rather than JSON: the request body
// and header are kept as sent, byte for byte, and a record is read on
// every status poll. It starts with a version byte, so that a replica
// running a newer gateway can tell an older record from a corrupt one,
// and ends with the CRC-32C of what precedes it, so that a record cut
// short or overwritten by something else is refused instead of
// forwarded upstream as a wrong request.
const redisJobVersion = 1

var (
	errRedisJobCorrupt = errors.New("jobs: corrupt job record in Redis")
	redisCastagnoli    = crc32.MakeTable(crc32.Castagnoli)
)

// encodeRedisJob encodes j as the Redis record's payload.
func encodeRedisJob(j *Job) []byte {
	e := redisEnc{b: make([]byte, 0, 256+len(j.Body))}
	e.b = append(e.b, redisJobVersion)
	e.str(j.ID)
	e.str(j.Route)
	e.str(j.Method)
	e.str(j.Host)
	e.str(j.URI)
	e.header(j.Header)
	e.bytes(j.Body)
	e.bool(j.TLS)
	e.bytes(j.Owner)
	e.str(j.IdempotencyKey)
	e.bytes(j.Fingerprint)
	e.str(j.CallbackURL)
	e.str(j.State)
	e.int(int64(j.Attempts))
	e.int(int64(j.Status))
	e.str(j.Error)
	e.time(j.Created)
	e.time(j.Started)
	e.time(j.Finished)
	e.time(j.NotBefore)
	e.time(j.Expires)
	e.int(int64(j.ResultStatus))
	e.header(j.ResultHeader)
	e.int(j.ResultSize)
	return binary.BigEndian.AppendUint32(e.b, crc32.Checksum(e.b, redisCastagnoli))
}

// decodeRedisJob decodes a record written by encodeRedisJob.
func decodeRedisJob(b []byte) (*Job, error) {
	if len(b) < 5 {
		return nil, errRedisJobCorrupt
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, redisCastagnoli) != sum {
		return nil, errRedisJobCorrupt
	}
	if body[0] != redisJobVersion {
		return nil, fmt.Errorf("jobs: job record version %d in Redis, this gateway reads %d", body[0], redisJobVersion)
	}
	d := redisDec{b: body[1:]}
	j := &Job{}
	j.ID = d.str()
	j.Route = d.str()
	j.Method = d.str()
	j.Host = d.str()
	j.URI = d.str()
	j.Header = d.header()
	j.Body = d.bytes()
	j.TLS = d.bool()
	j.Owner = d.bytes()
	j.IdempotencyKey = d.str()
	j.Fingerprint = d.bytes()
	j.CallbackURL = d.str()
	j.State = d.str()
	j.Attempts = d.smallInt()
	j.Status = d.smallInt()
	j.Error = d.str()
	j.Created = d.time()
	j.Started = d.time()
	j.Finished = d.time()
	j.NotBefore = d.time()
	j.Expires = d.time()
	j.ResultStatus = d.smallInt()
	j.ResultHeader = d.header()
	j.ResultSize = d.int()
	if d.err || len(d.b) != 0 {
		return nil, errRedisJobCorrupt
	}
	return j, nil
}

type redisEnc struct{ b []byte }

func (e *redisEnc) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *redisEnc) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *redisEnc) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *redisEnc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// bytes keeps nil apart from empty (length+1, 0 for nil), so that a
// record reads back exactly as it was written.
func (e *redisEnc) bytes(p []byte) {
	if p == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(p)) + 1)
	e.b = append(e.b, p...)
}

// header keeps nil apart from empty, and each field's values (nil
// apart from empty too) in order.
func (e *redisEnc) header(h http.Header) {
	if h == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(h)) + 1)
	for k, vs := range h {
		e.str(k)
		if vs == nil {
			e.uint(0)
			continue
		}
		e.uint(uint64(len(vs)) + 1)
		for _, v := range vs {
			e.str(v)
		}
	}
}

// time is nanoseconds since the epoch behind a presence byte: the zero
// time (never started, no retry) is not a point in time UnixNano can
// represent.
func (e *redisEnc) time(t time.Time) {
	if t.IsZero() {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.int(t.UnixNano())
}

// redisDec reads what redisEnc wrote; any inconsistency sets err, and
// every length is checked against what is left before anything is
// allocated, so that a corrupt record cannot ask for gigabytes.
type redisDec struct {
	b   []byte
	err bool
}

func (d *redisDec) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *redisDec) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *redisDec) smallInt() int {
	v := d.int()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.err = true
		return 0
	}
	return int(v)
}

func (d *redisDec) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.err, d.b = true, nil
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *redisDec) str() string { return string(d.take(d.uint())) }

func (d *redisDec) bool() bool {
	p := d.take(1)
	if len(p) == 0 || p[0] > 1 {
		d.err = true
		return false
	}
	return p[0] == 1
}

func (d *redisDec) bytes() []byte {
	n := d.uint()
	if n == 0 || d.err {
		return nil
	}
	return append([]byte{}, d.take(n-1)...)
}

func (d *redisDec) header() http.Header {
	n := d.uint()
	if n == 0 || d.err {
		return nil
	}
	n--
	// Every field takes at least two bytes: its name's length and its
	// values' count.
	if n > uint64(len(d.b))/2 {
		d.err = true
		return nil
	}
	h := make(http.Header, n)
	for range n {
		k := d.str()
		c := d.uint()
		if d.err {
			return nil
		}
		if c == 0 {
			h[k] = nil
			continue
		}
		c--
		if c > uint64(len(d.b)) {
			d.err = true
			return nil
		}
		vs := make([]string, 0, c)
		for range c {
			vs = append(vs, d.str())
		}
		h[k] = vs
	}
	return h
}

func (d *redisDec) time() time.Time {
	p := d.take(1)
	if len(p) == 0 || p[0] > 1 {
		d.err = true
		return time.Time{}
	}
	if p[0] == 0 {
		return time.Time{}
	}
	return time.Unix(0, d.int())
}
