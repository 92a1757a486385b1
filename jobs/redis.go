package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// RedisConfig is what RedisStore needs: the shared tier's connection.
type RedisConfig struct {
	// Connect returns a client of the shared tier's Redis; it is called
	// again after a failure, so Redis may be down when the store opens.
	Connect func() (rueidis.Client, error)
	Prefix  string // key prefix, e.g. the shared tier's plus "jobs:"
	Logger  *slog.Logger
	// Timeout bounds each call's round trips to Redis, so that a Redis
	// that hangs fails the call (503) instead of holding the request;
	// 0 means DefaultRedisTimeout. A result is written and read in
	// chunks, each with its own Timeout.
	Timeout time.Duration
	// Now is the clock that NotBefore is compared with; nil means
	// time.Now. It must be the Queue's clock.
	Now func() time.Time
}

// DefaultRedisTimeout is RedisConfig.Timeout's default.
const DefaultRedisTimeout = 2 * time.Second

// Bounds of the wait between two Connect attempts after failures: short
// enough that the store is back soon after Redis is, long enough that a
// replica does not dial Redis on every request while it is down.
const (
	redisMinBackoff = 100 * time.Millisecond
	redisMaxBackoff = 5 * time.Second
)

// redisChunk is how much of a result body one APPEND or GETRANGE moves:
// large enough that a few MiB take few round trips, small enough that
// one command does not hold Redis (single-threaded) for long.
const redisChunk = 256 << 10

// redisGroup is the consumer group of every route's stream: all the
// replicas' workers share it, so that each entry goes to one of them.
const redisGroup = "workers"

// redisPartTTL bounds how long a result being written survives its
// writer: a replica that dies mid-write leaves a key that Redis drops.
const redisPartTTL = time.Hour

// RedisStore keeps jobs in Redis Streams (one stream and consumer group
// per route), so that every replica may accept, run and answer for them.
//
// Keys, with P the prefix and {R} the route's hash tag (so that a
// route's keys share a Cluster slot and its scripts run atomically):
//
//	P{R}:job:ID     hash: d (the encoded Job), s (state), x (its stream entry), v (version)
//	P{R}:q          stream of entries "id ID", consumer group "workers"
//	P{R}:delayed    zset: queued jobs waiting for NotBefore (ms)
//	P{R}:depth      jobs queued or running
//	P{R}:stats      hash: jobs by state
//	P{R}:done       zset: "STATE:ID" of finished jobs by Expires (ms)
//	P{R}:idem:H     ID of the job of an Idempotency-Key, H = SHA-256(owner|key)
//	P{R}:res:ID     the result body; P{R}:res:ID:w... while it is written
//	Pid:ID          the route of job ID (Get knows only the ID)
//	Proutes         set of routes (Stats, Expire)
//
// A finished job's keys expire at its Expires; nothing expires while it
// is queued or running.
//
// Delivery is at-least-once: an entry that stays in the group's pending
// list (claimed, not finished) longer than the visibility is claimed
// again by any replica (XAUTOCLAIM); an Update that keeps a job running
// starts its visibility again. The queue is as durable as the Redis
// behind it (AOF or replicas): a Redis that restarts empty has lost its
// jobs. It needs Redis 7.0 or later (XAUTOCLAIM dropping deleted
// entries from the pending list).
type RedisStore struct {
	cfg      RedisConfig
	prefix   string
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger
	consumer string
	// consumerIdle is how long another process's consumer with nothing
	// pending stays in a group unseen (Expire).
	consumerIdle time.Duration

	mu         sync.Mutex
	c          rueidis.Client
	closed     bool
	connecting chan struct{} // closed when the Connect under way returns
	retryAt    time.Time
	backoff    time.Duration
	lastErr    error
	cursors    map[string]string // route: where XAUTOCLAIM goes on
}

var errRedisClosed = errors.New("jobs: Redis store closed")

// OpenRedis returns a store on Redis. It does not connect: the first
// call does, so that a gateway starts (and answers 503 for async
// routes) while Redis is down.
func OpenRedis(c RedisConfig) (*RedisStore, error) {
	if c.Connect == nil {
		return nil, errors.New("jobs: RedisConfig.Connect is nil")
	}
	s := &RedisStore{cfg: c, prefix: c.Prefix, timeout: c.Timeout, now: c.Now, log: c.Logger, cursors: map[string]string{}}
	if s.timeout <= 0 {
		s.timeout = DefaultRedisTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.consumer = redisConsumerName()
	s.consumerIdle = time.Hour
	return s, nil
}

// redisConsumerName names this process in the consumer groups, unique across
// replicas and restarts (a restarted process must not inherit the
// entries its predecessor had claimed: those are reclaimed by idle time).
func redisConsumerName() string {
	host, _ := os.Hostname()
	var r [6]byte
	_, _ = rand.Read(r[:])
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(r[:])
}

// client returns the client, connecting if there is none and the
// backoff after the last failure has passed. Within the backoff it
// fails at once; while another call connects it waits for that attempt
// (until ctx ends) rather than failing a burst of requests that arrive
// at startup.
func (s *RedisStore) client(ctx context.Context) (rueidis.Client, error) {
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return nil, errRedisClosed
		case s.c != nil:
			c := s.c
			s.mu.Unlock()
			return c, nil
		case s.connecting != nil:
			ch := s.connecting
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("jobs: connecting to Redis: %w", ctx.Err())
			}
		case s.lastErr != nil && time.Now().Before(s.retryAt):
			err := s.lastErr
			s.mu.Unlock()
			return nil, err
		}
		ch := make(chan struct{})
		s.connecting = ch
		s.mu.Unlock()

		c, err := s.cfg.Connect()

		s.mu.Lock()
		s.connecting = nil
		close(ch)
		if err != nil {
			s.backoff = min(max(2*s.backoff, redisMinBackoff), redisMaxBackoff)
			s.retryAt = time.Now().Add(s.backoff)
			if s.lastErr == nil {
				s.log.Warn("jobs: Redis unreachable; async routes answer 503 until it is back", "err", err)
			}
			s.lastErr = fmt.Errorf("jobs: connecting to Redis: %w", err)
			err = s.lastErr
			s.mu.Unlock()
			return nil, err
		}
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil, errRedisClosed
		}
		if s.lastErr != nil {
			s.log.Info("jobs: Redis reachable again")
		}
		s.c, s.lastErr, s.backoff = c, nil, 0
		s.mu.Unlock()
		return c, nil
	}
}

// Close closes the client the store opened.
func (s *RedisStore) Close() error {
	s.mu.Lock()
	c := s.c
	s.c, s.closed = nil, true
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
	return nil
}

// op returns the client and ctx bounded by the store's Timeout.
func (s *RedisStore) op(ctx context.Context) (rueidis.Client, context.Context, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	c, err := s.client(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return c, ctx, cancel, nil
}

// tag is the route's Cluster hash tag. A route name is used as is when
// it can be one; otherwise (empty, or with a brace that would end the
// tag early) it is hex-encoded behind "=", which no name used as is
// starts with, so that two routes never share keys.
func redisTag(route string) string {
	if route == "" || strings.ContainsAny(route, "{}") || strings.HasPrefix(route, "=") {
		return "{=" + hex.EncodeToString([]byte(route)) + "}"
	}
	return "{" + route + "}"
}

func (s *RedisStore) rk(route, name string) string   { return s.prefix + redisTag(route) + ":" + name }
func (s *RedisStore) jobKey(route, id string) string { return s.rk(route, "job:"+id) }
func (s *RedisStore) resKey(route, id string) string { return s.rk(route, "res:"+id) }
func (s *RedisStore) idKey(id string) string         { return s.prefix + "id:" + id }
func (s *RedisStore) routesKey() string              { return s.prefix + "routes" }

func (s *RedisStore) idemKey(route string, owner []byte, key string) string {
	h := sha256.New()
	h.Write(owner)
	h.Write([]byte{'|'})
	h.Write([]byte(key))
	return s.rk(route, "idem:"+hex.EncodeToString(h.Sum(nil)))
}

func redisMs(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// The scripts below keep a route's record, stream, delayed set and
// counters consistent with one another: each runs atomically, on the
// route's slot. Where a script names a key it is not given (another
// job's record), the key has the route's hash tag, so it is on the same
// slot.

// enqueueScript: an existing job of the Idempotency-Key ({1, record}),
// a full queue ({2}), or the job stored and queued ({0}).
//
// KEYS: job, q, delayed, depth, stats, idem; ARGV: id, record, depth
// limit, NotBefore ms, now ms, "1" when there is an Idempotency-Key,
// the route's job key prefix.
var enqueueScript = rueidis.NewLuaScript(`
if ARGV[6] == '1' then
  local ex = redis.call('GET', KEYS[6])
  if ex then
    local d = redis.call('HGET', ARGV[7] .. ex, 'd')
    if d then return {1, d} end
  end
end
local limit = tonumber(ARGV[3])
if limit > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= limit then return {2} end
local x = ''
if tonumber(ARGV[4]) > tonumber(ARGV[5]) then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
else
  redis.pcall('XGROUP', 'CREATE', KEYS[2], 'workers', '0', 'MKSTREAM')
  x = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 's', 'queued', 'v', '1', 'x', x)
redis.call('INCR', KEYS[4])
redis.call('HINCRBY', KEYS[5], 'queued', 1)
if ARGV[6] == '1' then redis.call('SET', KEYS[6], ARGV[1]) end
return {0}
`)

// promoteScript moves the delayed jobs that are due into the stream.
//
// KEYS: delayed, q; ARGV: now ms, the route's job key prefix, at most.
var promoteScript = rueidis.NewLuaScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
if #due == 0 then return 0 end
redis.pcall('XGROUP', 'CREATE', KEYS[2], 'workers', '0', 'MKSTREAM')
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local k = ARGV[2] .. id
  if redis.call('HGET', k, 's') == 'queued' then
    redis.call('HSET', k, 'x', redis.call('XADD', KEYS[2], '*', 'id', id))
  end
end
return #due
`)

// startScript marks a claimed job running unless its record changed
// since it was read (-1: read again), or the entry is no longer the
// job's, or the job is finished (0: the entry is acknowledged and
// dropped).
//
// KEYS: job, q, stats; ARGV: entry, version read, new record.
var startScript = rueidis.NewLuaScript(`
local s, x, v = unpack(redis.call('HMGET', KEYS[1], 's', 'x', 'v'))
if not s or x ~= ARGV[1] or (s ~= 'queued' and s ~= 'running') then
  redis.call('XACK', KEYS[2], 'workers', ARGV[1])
  redis.call('XDEL', KEYS[2], ARGV[1])
  return 0
end
if v ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'd', ARGV[3], 's', 'running', 'v', tostring(tonumber(v) + 1))
if s == 'queued' then
  redis.call('HINCRBY', KEYS[3], 'queued', -1)
  redis.call('HINCRBY', KEYS[3], 'running', 1)
end
return 1
`)

// updateScript stores a job's new state: an attempt that ends leaves
// the stream (acknowledged), a retry goes back to it or, when it must
// wait, to the delayed set; a finished job's keys expire at its Expires.
// 0: no such job.
//
// An update of a running job that stays running is its worker being
// heard of: the entry's idle time starts again (XCLAIM by this
// consumer), so that it is not reclaimed while its worker reports.
//
// KEYS: job, q, delayed, depth, stats, done, res, idem; ARGV: id,
// record, state, NotBefore ms, now ms, Expires ms (0: none), "1" when
// there is an Idempotency-Key, consumer.
var updateScript = rueidis.NewLuaScript(`
local old, x, v = unpack(redis.call('HMGET', KEYS[1], 's', 'x', 'v'))
if not old then return 0 end
local new = ARGV[3]
local function active(s) return s == 'queued' or s == 'running' end
local function final(s) return s == 'succeeded' or s == 'failed' or s == 'cancelled' end
if old ~= new then
  redis.call('HINCRBY', KEYS[5], old, -1)
  redis.call('HINCRBY', KEYS[5], new, 1)
  if active(old) and not active(new) then redis.call('DECR', KEYS[4])
  elseif active(new) and not active(old) then redis.call('INCR', KEYS[4]) end
end
if final(old) then redis.call('ZREM', KEYS[6], old .. ':' .. ARGV[1]) end
x = x or ''
local due = tonumber(ARGV[4]) <= tonumber(ARGV[5])
if new == 'running' and old == 'running' and x ~= '' then
  redis.call('XCLAIM', KEYS[2], 'workers', ARGV[8], 0, x, 'JUSTID')
elseif new ~= 'running' and not (new == 'queued' and old == 'queued' and x ~= '' and due) then
  if x ~= '' then
    redis.call('XACK', KEYS[2], 'workers', x)
    redis.call('XDEL', KEYS[2], x)
    x = ''
  end
  redis.call('ZREM', KEYS[3], ARGV[1])
  if new == 'queued' then
    if due then
      redis.pcall('XGROUP', 'CREATE', KEYS[2], 'workers', '0', 'MKSTREAM')
      x = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
    else
      redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
    end
  end
end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 's', new, 'v', tostring(tonumber(v or '0') + 1), 'x', x)
local keys = {KEYS[1], KEYS[7]}
if ARGV[7] == '1' and redis.call('GET', KEYS[8]) == ARGV[1] then table.insert(keys, KEYS[8]) end
local exp = tonumber(ARGV[6])
if final(new) then
  if exp > 0 then
    for _, k in ipairs(keys) do redis.call('PEXPIREAT', k, ARGV[6]) end
    redis.call('ZADD', KEYS[6], ARGV[6], new .. ':' .. ARGV[1])
  else
    redis.call('ZADD', KEYS[6], '+inf', new .. ':' .. ARGV[1])
  end
else
  for _, k in ipairs(keys) do redis.call('PERSIST', k) end
end
return 1
`)

// expireScript forgets the finished jobs expired at now: their keys
// have expired already (or go now), the counters are corrected. It
// returns their IDs, whose route index keys are on other slots.
//
// KEYS: done, stats; ARGV: now ms, the route's job and result key
// prefixes, at most.
var expireScript = rueidis.NewLuaScript(`
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local ids = {}
for _, m in ipairs(gone) do
  local i = string.find(m, ':', 1, true)
  local st, id = string.sub(m, 1, i - 1), string.sub(m, i + 1)
  redis.call('HINCRBY', KEYS[2], st, -1)
  redis.call('ZREM', KEYS[1], m)
  redis.call('DEL', ARGV[2] .. id, ARGV[3] .. id)
  table.insert(ids, id)
end
return ids
`)

// forgetConsumersScript deletes the consumers of other processes that
// have nothing pending and have not been seen for a while: every
// process joins the group under a new name, so restarts would
// otherwise pile them up. Only a consumer with no pending entry goes,
// atomically, so that no claimed entry loses its owner (and with it its
// chance to be reclaimed); one deleted by mistake is created again by
// its next read.
//
// KEYS: q; ARGV: idle ms, this process's consumer.
var forgetConsumersScript = rueidis.NewLuaScript(`
local cs = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], 'workers')
if type(cs) ~= 'table' or cs.err then return 0 end
local n = 0
for _, c in ipairs(cs) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f.pending == 0 and f.idle > tonumber(ARGV[1]) and f.name ~= ARGV[2] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'workers', f.name)
    n = n + 1
  end
end
return n
`)

// commitScript makes a result written under a part key the job's
// result, with the job's expiry (none while it runs; gone with it when
// it is gone).
//
// KEYS: part, res, job.
var commitScript = rueidis.NewLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
else
  redis.call('SET', KEYS[2], '')
end
local t = redis.call('PTTL', KEYS[3])
if t == -2 then redis.call('DEL', KEYS[2])
elseif t > 0 then redis.call('PEXPIRE', KEYS[2], t)
else redis.call('PERSIST', KEYS[2]) end
return 1
`)

// Enqueue stores j queued (see Store). The route index and the route
// set are written first, on their own slots: a crash between them and
// the script leaves an index naming no job, which Get answers as
// ErrNotFound.
func (s *RedisStore) Enqueue(ctx context.Context, j *Job, depth int) (*Job, bool, error) {
	c, ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, false, err
	}
	defer cancel()
	j.State = StateQueued
	for _, r := range c.DoMulti(ctx,
		c.B().Set().Key(s.idKey(j.ID)).Value(j.Route).Build(),
		c.B().Sadd().Key(s.routesKey()).Member(j.Route).Build()) {
		if err := r.Error(); err != nil {
			return nil, false, err
		}
	}
	idem, idemKey := "0", s.jobKey(j.Route, j.ID)
	if j.IdempotencyKey != "" {
		idem, idemKey = "1", s.idemKey(j.Route, j.Owner, j.IdempotencyKey)
	}
	out, err := enqueueScript.Exec(ctx, c,
		[]string{s.jobKey(j.Route, j.ID), s.rk(j.Route, "q"), s.rk(j.Route, "delayed"), s.rk(j.Route, "depth"), s.rk(j.Route, "stats"), idemKey},
		[]string{j.ID, string(encodeRedisJob(j)), strconv.Itoa(depth), redisMs(j.NotBefore), redisMs(s.now()), idem, s.rk(j.Route, "job:")}).ToArray()
	if err != nil {
		return nil, false, err
	}
	code, err := out[0].AsInt64()
	if err != nil {
		return nil, false, err
	}
	if code == 0 {
		return j, false, nil
	}
	// Not stored: the index of this ID goes.
	_ = c.Do(ctx, c.B().Del().Key(s.idKey(j.ID)).Build()).Error()
	if code == 2 {
		return nil, false, ErrQueueFull
	}
	d, err := out[1].ToString()
	if err != nil {
		return nil, false, err
	}
	ex, err := decodeRedisJob([]byte(d))
	if err != nil {
		return nil, false, err
	}
	if string(ex.Fingerprint) != string(j.Fingerprint) {
		return nil, false, ErrConflict
	}
	return ex, true, nil
}

// route returns the route of job id from the index.
func (s *RedisStore) route(ctx context.Context, c rueidis.Client, id string) (string, error) {
	r, err := c.Do(ctx, redisRead(c, "GET", s.idKey(id))).ToString()
	if rueidis.IsRedisNil(err) {
		return "", ErrNotFound
	}
	return r, err
}

// Get returns the job with id.
func (s *RedisStore) Get(ctx context.Context, id string) (*Job, error) {
	c, ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	route, err := s.route(ctx, c, id)
	if err != nil {
		return nil, err
	}
	d, err := c.Do(ctx, redisRead(c, "HGET", s.jobKey(route, id), "d")).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeRedisJob(d)
}

// Update stores j's new state (see Store and updateScript).
func (s *RedisStore) Update(ctx context.Context, j *Job) error {
	c, ctx, cancel, err := s.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	idem, idemKey := "0", s.jobKey(j.Route, j.ID)
	if j.IdempotencyKey != "" {
		idem, idemKey = "1", s.idemKey(j.Route, j.Owner, j.IdempotencyKey)
	}
	n, err := updateScript.Exec(ctx, c,
		[]string{s.jobKey(j.Route, j.ID), s.rk(j.Route, "q"), s.rk(j.Route, "delayed"), s.rk(j.Route, "depth"),
			s.rk(j.Route, "stats"), s.rk(j.Route, "done"), s.resKey(j.Route, j.ID), idemKey},
		[]string{j.ID, string(encodeRedisJob(j)), j.State, redisMs(j.NotBefore), redisMs(s.now()), redisMs(j.Expires), idem, s.consumer}).AsInt64()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	// The index is on another slot: it follows the record's expiry.
	cmd := c.B().Persist().Key(s.idKey(j.ID)).Build()
	if redisFinal(j.State) && !j.Expires.IsZero() {
		cmd = c.B().Pexpireat().Key(s.idKey(j.ID)).MillisecondsTimestamp(j.Expires.UnixMilli()).Build()
	}
	return c.Do(ctx, cmd).Error()
}

// redisRead builds a read of key. The client retries read-only commands
// on a network error until the context ends; built this way a read is
// not marked read-only, so that with Redis down it fails at once, as
// writes do, and the caller answers 503 instead of waiting.
func redisRead(c rueidis.Client, cmd, key string, args ...string) rueidis.Completed {
	return c.B().Arbitrary(cmd).Keys(key).Args(args...).Build()
}

func redisFinal(state string) bool {
	return state == StateSucceeded || state == StateFailed || state == StateCancelled
}

// redisNoGroup reports a stream or group that does not exist (yet, or
// any more after Redis restarted empty): nothing to claim.
func redisNoGroup(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(re.Error(), "NOGROUP")
}

// Claim takes the next due job of route (see Store): first an entry
// idle longer than visibility (its worker is gone), then a new one.
func (s *RedisStore) Claim(ctx context.Context, route string, visibility time.Duration) (*Job, error) {
	c, ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	q := s.rk(route, "q")
	if err := promoteScript.Exec(ctx, c, []string{s.rk(route, "delayed"), q},
		[]string{redisMs(s.now()), s.rk(route, "job:"), "100"}).Error(); err != nil {
		return nil, err
	}
	// An entry that turns out stale (its job cancelled, finished or
	// queued again) is dropped and the next one tried, a bounded number
	// of times so that a call stays short.
	for range 16 {
		entry, id, err := s.next(ctx, c, route, q, visibility)
		if err != nil || entry == "" {
			return nil, err
		}
		j, err := s.start(ctx, c, route, q, entry, id)
		if err != nil || j != nil {
			return j, err
		}
	}
	return nil, nil
}

// next returns the next entry for this consumer: one reclaimed, or else
// a new one; "" when there is none.
func (s *RedisStore) next(ctx context.Context, c rueidis.Client, route, q string, visibility time.Duration) (entry, id string, err error) {
	s.mu.Lock()
	cursor := s.cursors[route]
	s.mu.Unlock()
	if cursor == "" {
		cursor = "0-0"
	}
	// XAUTOCLAIM looks at a bounded part of the pending entries per
	// call; the cursor remembers where to go on, a few calls per Claim.
	for range 4 {
		out, err := c.Do(ctx, c.B().Xautoclaim().Key(q).Group(redisGroup).Consumer(s.consumer).
			MinIdleTime(strconv.FormatInt(max(visibility.Milliseconds(), 1), 10)).Start(cursor).Count(1).Build()).ToArray()
		if redisNoGroup(err) {
			return "", "", nil
		}
		if err != nil {
			return "", "", err
		}
		if len(out) < 2 {
			return "", "", errors.New("jobs: unexpected XAUTOCLAIM reply")
		}
		if cursor, err = out[0].ToString(); err != nil {
			return "", "", err
		}
		s.mu.Lock()
		s.cursors[route] = cursor
		s.mu.Unlock()
		es, err := out[1].AsXRange()
		if err != nil {
			return "", "", err
		}
		for _, e := range es {
			return e.ID, e.FieldValues["id"], nil
		}
		if cursor == "0-0" {
			break
		}
	}
	rs, err := c.Do(ctx, c.B().Xreadgroup().Group(redisGroup, s.consumer).Count(1).Streams().Key(q).Id(">").Build()).AsXRead()
	if redisNoGroup(err) || rueidis.IsRedisNil(err) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	for _, e := range rs[q] {
		return e.ID, e.FieldValues["id"], nil
	}
	return "", "", nil
}

// start marks the job of entry running: nil when the entry is stale.
func (s *RedisStore) start(ctx context.Context, c rueidis.Client, route, q, entry, id string) (*Job, error) {
	key := s.jobKey(route, id)
	for range 8 {
		vals, err := c.Do(ctx, redisRead(c, "HMGET", key, "d", "v")).ToArray()
		if err != nil {
			return nil, err
		}
		d, derr := vals[0].AsBytes()
		v, _ := vals[1].ToString()
		var j *Job
		data := ""
		if derr == nil {
			if j, err = decodeRedisJob(d); err != nil {
				return nil, err
			}
			j.State = StateRunning
			j.Attempts++
			j.Started = s.now()
			data = string(encodeRedisJob(j))
		}
		// The script drops the entry when the record is gone.
		n, err := startScript.Exec(ctx, c, []string{key, q, s.rk(route, "stats")}, []string{entry, v, data}).AsInt64()
		if err != nil {
			return nil, err
		}
		switch n {
		case 1:
			return j, nil
		case 0:
			return nil, nil
		}
	}
	return nil, fmt.Errorf("jobs: job %s changed too often to claim", id)
}

// ResultWriter returns where the result body of id goes: a part key,
// made the result by Close (so that a reader sees a whole body, the
// earlier attempt's or this one's, never half of one).
func (s *RedisStore) ResultWriter(ctx context.Context, id string) (ResultWriter, error) {
	c, octx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	route, err := s.route(octx, c, id)
	if err != nil {
		return nil, err
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	return &redisResultWriter{s: s, c: c, ctx: ctx, part: s.resKey(route, id) + ":w" + hex.EncodeToString(r[:]),
		res: s.resKey(route, id), job: s.jobKey(route, id)}, nil
}

type redisResultWriter struct {
	s              *RedisStore
	c              rueidis.Client
	ctx            context.Context
	part, res, job string
	buf            []byte
	err            error
	done           bool
}

func (w *redisResultWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errors.New("jobs: result writer closed")
	}
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), redisChunk-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == redisChunk {
			if err := w.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// flush appends the buffer to the part key and renews its expiry.
func (w *redisResultWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.s.timeout)
	defer cancel()
	c := w.c
	for _, r := range c.DoMulti(ctx,
		c.B().Append().Key(w.part).Value(rueidis.BinaryString(w.buf)).Build(),
		c.B().Pexpire().Key(w.part).Milliseconds(redisPartTTL.Milliseconds()).Build()) {
		if err := r.Error(); err != nil {
			w.err = err
			return err
		}
	}
	w.buf = w.buf[:0]
	return nil
}

func (w *redisResultWriter) Close() error {
	if w.done {
		return w.err
	}
	if err := w.flush(); err != nil {
		w.Abort()
		return err
	}
	w.done = true
	ctx, cancel := context.WithTimeout(w.ctx, w.s.timeout)
	defer cancel()
	if err := commitScript.Exec(ctx, w.c, []string{w.part, w.res, w.job}, nil).Error(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Abort drops what was written; the part key expires anyway if Redis
// cannot be reached now.
func (w *redisResultWriter) Abort() {
	if w.done && w.err == nil {
		return
	}
	w.done, w.buf = true, nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), w.s.timeout)
	defer cancel()
	_ = w.c.Do(ctx, w.c.B().Del().Key(w.part).Build()).Error()
}

// Result opens the stored result body of id; it is read in chunks.
func (s *RedisStore) Result(ctx context.Context, id string) (ResultReader, error) {
	c, octx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	route, err := s.route(octx, c, id)
	if err != nil {
		return nil, err
	}
	key := s.resKey(route, id)
	rs := c.DoMulti(octx, redisRead(c, "EXISTS", key), redisRead(c, "STRLEN", key))
	n, err := rs[0].AsInt64()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrNotFound
	}
	size, err := rs[1].AsInt64()
	if err != nil {
		return nil, err
	}
	return &redisResultReader{s: s, c: c, ctx: ctx, key: key, size: size}, nil
}

type redisResultReader struct {
	s         *RedisStore
	c         rueidis.Client
	ctx       context.Context
	key       string
	off, size int64
	buf       []byte
}

func (r *redisResultReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.s.timeout)
		end := min(r.off+redisChunk, r.size) - 1
		b, err := r.c.Do(ctx, redisRead(r.c, "GETRANGE", r.key, strconv.FormatInt(r.off, 10), strconv.FormatInt(end, 10))).AsBytes()
		cancel()
		if err != nil {
			return 0, err
		}
		if len(b) == 0 {
			// The result expired (or was replaced by a shorter one)
			// while it was read.
			return 0, io.ErrUnexpectedEOF
		}
		r.buf = b
		r.off += int64(len(b))
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *redisResultReader) Close() error { r.buf = nil; return nil }

// Expire forgets the finished jobs expired at now. Their keys expire in
// Redis anyway (Expires is their TTL); this corrects the counters Stats
// reads, drops the route index keys of jobs whose index expiry was not
// set (a replica that died between the two writes of Update), and
// drops the consumers of processes long gone.
func (s *RedisStore) Expire(ctx context.Context, now time.Time) (int, error) {
	c, ctx, cancel, err := s.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	routes, err := c.Do(ctx, redisRead(c, "SMEMBERS", s.routesKey())).AsStrSlice()
	if err != nil {
		return 0, err
	}
	total := 0
	for _, route := range routes {
		ids, err := expireScript.Exec(ctx, c, []string{s.rk(route, "done"), s.rk(route, "stats")},
			[]string{redisMs(now), s.rk(route, "job:"), s.rk(route, "res:"), "1000"}).AsStrSlice()
		if err != nil {
			return total, err
		}
		total += len(ids)
		if err := forgetConsumersScript.Exec(ctx, c, []string{s.rk(route, "q")},
			[]string{strconv.FormatInt(s.consumerIdle.Milliseconds(), 10), s.consumer}).Error(); err != nil {
			return total, err
		}
		var cmds rueidis.Commands
		for _, id := range ids {
			cmds = append(cmds, c.B().Del().Key(s.idKey(id)).Build())
		}
		for _, r := range c.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// Stats counts the jobs by state, from counters the scripts keep: exact
// for queued and running; finished jobs are counted until Expire
// forgets them (their records may have expired a little earlier). A
// Redis that restarted empty starts them again from zero.
func (s *RedisStore) Stats(ctx context.Context) (map[string]int, error) {
	c, ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	routes, err := c.Do(ctx, redisRead(c, "SMEMBERS", s.routesKey())).AsStrSlice()
	if err != nil {
		return nil, err
	}
	m := map[string]int{StateQueued: 0, StateRunning: 0, StateSucceeded: 0, StateFailed: 0, StateCancelled: 0}
	var cmds rueidis.Commands
	for _, route := range routes {
		cmds = append(cmds, redisRead(c, "HGETALL", s.rk(route, "stats")))
	}
	for _, r := range c.DoMulti(ctx, cmds...) {
		h, err := r.AsIntMap()
		if err != nil {
			return nil, err
		}
		for k, v := range h {
			m[k] += int(v)
		}
	}
	for k, v := range m {
		m[k] = max(v, 0)
	}
	return m, nil
}
