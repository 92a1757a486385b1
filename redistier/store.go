package redistier

import (
	"cmp"
	"context"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/rueidis"
	"github.com/sony/gobreaker/v2"

	"gateway/cache"
)

// setScript stores one variant: when the stored meta differs from the
// new one (another Vary, or a pass marker) the key's other fields go
// first, and so do they when a new variant would make more than
// maxVariants (Vary may name a header each client sets as it likes, and
// every read takes all the key's variants); the key lives as long as its
// longest-lived variant.
//
//	KEYS[1] object; ARGV meta, field, value, ttl (ms), maxVariants
var setScript = rueidis.NewLuaScript(`
if redis.call('HGET', KEYS[1], 'm') ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
elseif redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 and redis.call('HLEN', KEYS[1]) > tonumber(ARGV[5]) then
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'm', ARGV[1], ARGV[2], ARGV[3])
local ttl = tonumber(ARGV[4])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1`)

// recostScript rewrites a variant with its new forms, only while the key
// still holds it under the same meta and the variant is still the value
// Recost read (its length and checksum, the last 4 bytes, match).
//
//	KEYS[1] object; ARGV meta, field, value, length, checksum
var recostScript = rueidis.NewLuaScript(`
if redis.call('HGET', KEYS[1], 'm') ~= ARGV[1] then return 0 end
local v = redis.call('HGET', KEYS[1], ARGV[2])
if v and #v == tonumber(ARGV[4]) and string.sub(v, -4) == ARGV[5] then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  return 1
end
return 0`)

// passScript replaces the key with a pass marker.
//
//	KEYS[1] object; ARGV meta, ttl (ms)
var passScript = rueidis.NewLuaScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'm', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

// maxVariants bounds the variants one key holds in Redis, as
// cache.MemoryConfig.MaxVariants's default does in memory.
const maxVariants = 32

// writeQueueBytes bounds the bytes of the entries waiting in the write
// queues, all workers together: WriteQueue bounds their number only, and
// that many entries of up to MaxObjectSize could hold gigabytes while
// Redis is slow. Past it a write is dropped and counted, as when the
// queue is full. Fixed, as Config has no field for it.
const writeQueueBytes = 64 << 20

// writeOp is a queued write.
type writeOp struct {
	write bool  // counted in Writes / WritesDropped
	size  int64 // bytes it holds, against the queue's byte budget
	run   func(ctx context.Context, c rueidis.Client) error
	done  func(err error) // when not nil, told how the op ended (ErrDown when dropped on Close)
	after func()          // when not nil, called once the op is done (tests)
}

// Get implements cache.Store.
func (t *Tier) Get(ctx context.Context, primary string) (*cache.Object, error) {
	key := t.k.object(t.k.hash(primary))
	var fields map[string]rueidis.RedisMessage
	err := t.do(ctx, t.config().Timeout, func(ctx context.Context, c rueidis.Client) error {
		var err error
		fields, err = c.Do(ctx, c.B().Hgetall().Key(key).Build()).AsMap()
		if rueidis.IsRedisNil(err) {
			err = nil
		}
		return err
	})
	if re, ok := rueidis.IsRedisErr(err); ok && strings.HasPrefix(re.Error(), "WRONGTYPE") {
		fields, err = nil, errCorrupt // not a value of ours
	}
	if err != nil && err != errCorrupt {
		return nil, err
	}
	o, n, derr := t.decodeObject(primary, fields)
	t.st.bytesRead.Add(uint64(n))
	if err == errCorrupt || derr != nil {
		t.st.err("corrupt")
		if derr != errForeign {
			// Left there, the value would keep the key a miss (and a
			// warning) on every read until it expires: no write replaces
			// a corrupt variant whose meta still matches.
			t.deleteCorrupt(key)
		}
		if t.corruptWarn.allow(time.Now()) {
			t.log.Warn("shared tier: corrupt value, taken as a miss and deleted", "key", key)
		}
	}
	if o == nil {
		t.st.misses.Add(1)
		return nil, nil
	}
	t.st.hits.Add(1)
	return o, nil
}

// decodeObject builds the object a key's fields hold, dropping the
// variants a known hard purge removed and marking those a soft one
// staled. It returns the bytes read, and errCorrupt (with no object) for
// a value this package did not write or that does not belong to primary.
func (t *Tier) decodeObject(primary string, fields map[string]rueidis.RedisMessage) (*cache.Object, int, error) {
	if len(fields) == 0 {
		return nil, 0, nil
	}
	n := 0
	raw := make(map[string]string, len(fields))
	for f, m := range fields {
		v, err := m.ToString()
		if err != nil {
			return nil, n, errCorrupt
		}
		n += len(v)
		raw[f] = v
	}
	mv, ok := raw[metaField]
	if !ok {
		return nil, n, errCorrupt
	}
	m, err := decodeMeta(unsafe.Slice(unsafe.StringData(mv), len(mv)))
	if err != nil {
		return nil, n, errCorrupt
	}
	if m.Primary != primary {
		return nil, n, errForeign
	}
	o := &cache.Object{Primary: m.Primary, Vary: m.Vary, PassUntil: m.PassUntil, Shared: true}
	gone := map[string]string{}
	urlPart := cache.URLPart(m.Primary)
	for f, v := range raw {
		if f == metaField {
			continue
		}
		// The decoder only reads, and copies what it keeps.
		vr, err := decodeVariant(unsafe.Slice(unsafe.StringData(v), len(v)))
		if err != nil {
			return nil, n, errCorrupt
		}
		e, err := entryOf(vr, f, m.Vary)
		if err != nil {
			return nil, n, errCorrupt
		}
		switch t.purges.check(vr.Stamp, urlPart, e.Tags, e.RequestTime) {
		case purgedHard:
			gone[f] = v
			continue
		case purgedSoft:
			e.SoftPurge()
		}
		o.Variants = append(o.Variants, e)
	}
	slices.SortFunc(o.Variants, func(a, b *cache.Entry) int {
		return cmp.Or(b.ResponseTime.Compare(a.ResponseTime), strings.Compare(string(a.VaryKey), string(b.VaryKey)))
	})
	if len(gone) > 0 {
		t.forget(primary, gone)
	}
	if len(o.Variants) == 0 && o.PassUntil.IsZero() {
		return nil, n, nil
	}
	return o, n, nil
}

// forgetScript deletes a variant unless it was rewritten since it was
// read: its checksum (the value's last 4 bytes) and length still match.
//
//	KEYS[1] object; ARGV field, length, checksum, ...
var forgetScript = rueidis.NewLuaScript(`
for i = 1, #ARGV, 3 do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v and #v == tonumber(ARGV[i+1]) and string.sub(v, -4) == ARGV[i+2] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1`)

// forget removes variants a hard purge removed, in the background.
func (t *Tier) forget(primary string, fields map[string]string) {
	key := t.k.object(t.k.hash(primary))
	var args []string
	for f, v := range fields {
		args = append(args, f, strconv.Itoa(len(v)), v[len(v)-4:])
	}
	t.enqueue(key, writeOp{run: func(ctx context.Context, c rueidis.Client) error {
		return forgetScript.Exec(ctx, c, []string{key}, args).Error()
	}})
}

// errForeign is a value of another primary key under the same hash: not
// damaged, and not this key's to delete.
var errForeign = fmt.Errorf("%w: another key's value", errCorrupt)

// rateLimit lets one event through per period: a corrupt key read by
// every request would otherwise log a warning per request.
type rateLimit struct {
	period time.Duration
	last   atomic.Int64 // Unix ns of the last event let through
}

func (r *rateLimit) allow(now time.Time) bool {
	last := r.last.Load()
	return now.UnixNano()-last >= int64(r.period) && r.last.CompareAndSwap(last, now.UnixNano())
}

// deleteCorrupt queues a DEL of a key holding a corrupt value, once while
// one is queued. A write landing between the read and the DEL is lost
// with it, which costs a miss.
func (t *Tier) deleteCorrupt(key string) {
	t.corruptMu.Lock()
	if t.corruptDel[key] {
		t.corruptMu.Unlock()
		return
	}
	t.corruptDel[key] = true
	t.corruptMu.Unlock()
	unqueue := func() {
		t.corruptMu.Lock()
		delete(t.corruptDel, key)
		t.corruptMu.Unlock()
	}
	ok := t.enqueue(key, writeOp{run: func(ctx context.Context, c rueidis.Client) error {
		unqueue()
		return c.Do(ctx, c.B().Del().Key(key).Build()).Error()
	}})
	if !ok {
		unqueue()
	}
}

// entryTTL is how long Redis keeps e: its remaining freshness and then
// its Linger, at least a second.
func entryTTL(e *cache.Entry, now time.Time) time.Duration {
	age := e.InitialAge + max(now.Sub(e.ResponseTime), 0)
	return max(max(e.Lifetime-age, 0)+e.Linger, time.Second)
}

func entrySize(e *cache.Entry, forms []cache.Form) int64 {
	n := int64(len(e.Body))
	for _, f := range forms {
		n += int64(len(f.Body))
	}
	return n
}

// Set implements cache.Store: the write is queued, and runs after. It
// reports stored when the write is queued; an entry over MaxObjectSize is
// not.
func (t *Tier) Set(ctx context.Context, primary string, e *cache.Entry) (bool, error) {
	if e == nil {
		return false, nil
	}
	t.storing()
	if !t.usable() {
		t.st.err("breaker-open")
		return false, ErrDown
	}
	if entrySize(e, e.Forms()) > t.config().MaxObjectSize {
		t.st.dropped.Add(1)
		t.st.tooLarge.Add(1)
		return false, nil
	}
	primary = strings.Clone(primary)
	stamp := t.purges.stampAt(e.RequestTime)
	key := t.k.object(t.k.hash(primary))
	ok := t.enqueue(key, writeOp{write: true, size: entrySize(e, e.Forms()), run: func(ctx context.Context, c rueidis.Client) error {
		mv, field, value, err := t.encodeEntry(primary, e, stamp)
		if err != nil {
			return err
		}
		ttl := entryTTL(e, t.now())
		t.st.bytesWritten.Add(uint64(len(mv) + len(value)))
		return setScript.Exec(ctx, c, []string{key}, []string{mv, field, value, strconv.FormatInt(ttl.Milliseconds(), 10), strconv.Itoa(maxVariants)}).Error()
	}})
	if ok {
		t.filled(key)
	}
	return ok, nil
}

func (t *Tier) encodeEntry(primary string, e *cache.Entry, stamp uint64) (mv, field, value string, err error) {
	vary := e.Vary
	if len(vary) == 0 {
		vary = nil
	}
	b, err := appendVariant(stamp, e.Linger, e.Forms(), e.Record.AppendBinary, len(e.Body)+512)
	if err != nil {
		return "", "", "", err
	}
	mv = string(encodeMeta(meta{Primary: primary, Vary: vary}))
	// b is never written again: the string may share it.
	return mv, variantField(e.VaryKey), unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// Recost implements cache.Recoster: e gained an encoded form, which is
// written to Redis so that other processes need not make it.
//
// The rewrite keeps the stamp the stored variant has when it is lower
// than the one this process would give e: e may have been read from
// Redis, written by a process that knew fewer purges, and restamping it
// with what this process knows would take it out of the purges it
// missed. So the variant is read first, and rewritten only while it is
// still that value and still e (same request and response times).
func (t *Tier) Recost(primary string, e *cache.Entry) {
	if e == nil || !t.usable() || entrySize(e, e.Forms()) > t.config().MaxObjectSize {
		return
	}
	primary = strings.Clone(primary)
	stamp := t.purges.stampAt(e.RequestTime)
	key := t.k.object(t.k.hash(primary))
	field := variantField(e.VaryKey)
	t.enqueue(key, writeOp{write: true, size: entrySize(e, e.Forms()), run: func(ctx context.Context, c rueidis.Client) error {
		cur, err := c.Do(ctx, c.B().Hget().Key(key).Field(field).Build()).ToString()
		if rueidis.IsRedisNil(err) {
			return nil // gone: nothing to rewrite
		}
		if err != nil {
			return err
		}
		old, err := decodeVariant([]byte(cur))
		if err != nil {
			return nil // corrupt: a read deletes it
		}
		var r cache.Record
		if r.UnmarshalBinary(old.Record) != nil || !r.RequestTime.Equal(e.RequestTime) || !r.ResponseTime.Equal(e.ResponseTime) {
			return nil // another response now: not e's to rewrite
		}
		mv, field, value, err := t.encodeEntry(primary, e, min(stamp, old.Stamp))
		if err != nil {
			return err
		}
		t.st.bytesWritten.Add(uint64(len(value)))
		return recostScript.Exec(ctx, c, []string{key}, []string{mv, field, value, strconv.Itoa(len(cur)), cur[len(cur)-4:]}).Error()
	}})
}

// SetPass implements cache.Store: the marker is queued.
func (t *Tier) SetPass(ctx context.Context, primary string, until time.Time) error {
	t.storing()
	if !t.usable() {
		t.st.err("breaker-open")
		return ErrDown
	}
	key := t.k.object(t.k.hash(primary))
	mv := string(encodeMeta(meta{Primary: primary, PassUntil: until}))
	ttl := max(until.Sub(t.now()), time.Millisecond)
	if t.enqueue(key, writeOp{write: true, run: func(ctx context.Context, c rueidis.Client) error {
		t.st.bytesWritten.Add(uint64(len(mv)))
		return passScript.Exec(ctx, c, []string{key}, []string{mv, strconv.FormatInt(ttl.Milliseconds(), 10)}).Error()
	}}) {
		t.filled(key)
	}
	return nil
}

// Delete implements cache.Store.
func (t *Tier) Delete(ctx context.Context, primary string) (bool, error) {
	key := t.k.object(t.k.hash(primary))
	var n int64
	err := t.do(ctx, t.config().Timeout, func(ctx context.Context, c rueidis.Client) error {
		var err error
		n, err = c.Do(ctx, c.B().Del().Key(key).Build()).AsInt64()
		return err
	})
	return n > 0, err
}

// PathURLs implements cache.Store: the tier keeps no index to list.
func (t *Tier) PathURLs(ctx context.Context, path string, prefix bool) ([]string, error) {
	return nil, nil
}

// storing notes a store before the first purge sync: the first tier
// then holds entries that the purges made meanwhile must reach (see
// syncPurges). The cache writes its first tier and then this one.
func (t *Tier) storing() {
	if !t.storedEarly.Load() && !t.purges.isSynced() {
		t.storedEarly.Store(true)
	}
}

// usable reports whether an operation may be tried now: connected, the
// breaker not open.
func (t *Tier) usable() bool {
	return t.conn() != nil && t.cb.State() != gobreaker.StateOpen
}

// enqueue queues op on the writer of key, so that one key's writes run in
// order; a full queue, or one holding writeQueueBytes already, drops it.
func (t *Tier) enqueue(key string, op writeOp) bool {
	t.closeMu.RLock()
	defer t.closeMu.RUnlock()
	if t.closed {
		return false
	}
	if op.size > 0 && t.queuedBytes.Add(op.size) > t.queueBudget {
		t.queuedBytes.Add(-op.size)
		if op.write {
			t.st.dropped.Add(1)
		}
		return false
	}
	q := t.queues[crc32.ChecksumIEEE([]byte(key))%uint32(len(t.queues))]
	select {
	case q <- op:
		return true
	default:
		t.queuedBytes.Add(-op.size)
		if op.write {
			t.st.dropped.Add(1)
		}
		return false
	}
}

// drainGrace is how long Close lets queued writes land.
func drainGrace(cfg *Config) time.Duration { return max(cfg.WriteTimeout, 100*time.Millisecond) }

func (t *Tier) writer(q chan writeOp) {
	for op := range q {
		if op.after != nil {
			op.after()
			continue
		}
		if d := t.drainBy.Load(); d != 0 && time.Now().UnixNano() > d {
			t.queuedBytes.Add(-op.size)
			if op.write {
				t.st.dropped.Add(1)
			}
			if op.done != nil {
				op.done(ErrDown)
			}
			continue
		}
		err := t.do(t.ctx, t.config().WriteTimeout, op.run)
		t.queuedBytes.Add(-op.size)
		if op.done != nil {
			op.done(err)
		}
		if !op.write {
			continue
		}
		if err != nil {
			t.st.dropped.Add(1)
		} else {
			t.st.writes.Add(1)
		}
	}
}
