package redistier

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"gateway/cache"
)

// purgeLogLen is how many purges the log in Redis keeps: a process that
// missed more than that since it last looked takes it as a purge of
// everything.
const purgeLogLen = 10000

// purgeScript records a purge and announces it: O(1) whatever it purges,
// since every process checks what it reads against the log.
//
//	KEYS[1] seq, KEYS[2] log; ARGV "<kind><soft> <origin> <value>", log
//	length, channel, floor. It returns the purge's sequence number.
//
// floor is the highest sequence number the purging process knows: the
// purge is numbered above it even when Redis lost its data (restarted
// empty, or failed over to a replica that lagged) and no process raised
// the numbering yet. Numbered below, it would rank under the stamps of
// entries written meanwhile, and the processes that know a higher number
// would ignore its notification and, once the numbering is raised, never
// read it from the log.
var purgeScript = rueidis.NewLuaScript(`
local s = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[4])
if s <= floor then
  s = floor + 1
  redis.call('SET', KEYS[1], s)
end
redis.call('RPUSH', KEYS[2], s .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PUBLISH', ARGV[3], 'p' .. s)
return s`)

// syncScript returns the purge sequence number and the log's entries
// after ARGV[1] (at most ARGV[2]), at one instant.
var syncScript = rueidis.NewLuaScriptReadOnly(`
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = {tostring(s)}
local n = s - tonumber(ARGV[1])
if n <= 0 then return out end
if n > tonumber(ARGV[2]) then n = tonumber(ARGV[2]) end
for _, e in ipairs(redis.call('LRANGE', KEYS[2], -n, -1)) do
  table.insert(out, e)
end
return out`)

type purgeRec struct {
	seq    uint64
	kind   cache.PurgeKind
	soft   bool
	value  string
	origin string
}

func encodePurgeArg(kind cache.PurgeKind, soft bool, origin, value string) string {
	s := 0
	if soft {
		s = 1
	}
	return fmt.Sprintf("%d%d %s %s", kind, s, origin, value)
}

// decodePurge reads a log entry: "<seq> <kind><soft> <origin> <value>".
func decodePurge(e string) (purgeRec, bool) {
	seqs, rest, ok1 := strings.Cut(e, " ")
	ks, rest, ok2 := strings.Cut(rest, " ")
	origin, value, ok3 := strings.Cut(rest, " ")
	seq, err := strconv.ParseUint(seqs, 10, 64)
	if !ok1 || !ok2 || !ok3 || err != nil || seq == 0 || len(ks) != 2 || ks[0] < '0' || ks[0] > '3' || ks[1] != '0' && ks[1] != '1' {
		return purgeRec{}, false
	}
	return purgeRec{seq: seq, kind: cache.PurgeKind(ks[0] - '0'), soft: ks[1] == '1', value: value, origin: origin}, true
}

// Verdicts of purgeLog.check.
const (
	purgedNot = iota
	purgedHard
	purgedSoft
)

// stampPoint is when this process learned that the purges up to seq were
// all made.
type stampPoint struct {
	t   time.Time
	seq uint64
}

// clockSkew bounds how far apart the clocks of the processes sharing the
// tier may be (the documented bound): a pending purge, which has a time
// and no sequence number, takes a variant whose request was sent up to
// that long after it as purged, since the writer's clock may lag.
const clockSkew = time.Second

// maxPending bounds the pending purges; past it one pending hard purge of
// everything replaces them.
const maxPending = 1000

// pendingPurge is a purge made in this process that Redis has not
// recorded yet: an invalidation on its way, or a purge that failed on
// Redis. This process's reads take what it selects as purged (by time,
// having no sequence number), since the memory tier was purged and
// reading the object back from Redis would undo that; it is sent to Redis
// (so that it reaches every process) once the tier is up, and dropped
// when Redis gives it a sequence number.
type pendingPurge struct {
	kind    cache.PurgeKind
	value   string
	soft    bool
	at      time.Time // when it was made, or last repeated (invalidations)
	sending bool      // a send is queued or under way
}

// selects reports whether pp selects a variant of URL part u with tags.
func (pp *pendingPurge) selects(u string, tags []string) bool {
	switch pp.kind {
	case cache.PurgeKindURL:
		return u == pp.value
	case cache.PurgeKindPrefix:
		return strings.HasPrefix(u, pp.value)
	case cache.PurgeKindTag:
		return slices.Contains(tags, pp.value)
	}
	return true
}

// purgeLog is what this process knows of the purges: everything up to
// seq, and some after (its own, ahead of the log's order), indexed by
// what they select. Index 0 of each pair is hard purges, 1 soft: the
// latest sequence number of a purge selecting that value. pending are
// this process's purges Redis has not numbered yet, oldest first.
type purgeLog struct {
	mu     sync.RWMutex
	seq    uint64
	synced bool
	recent []purgeRec
	url    [2]map[string]uint64
	tag    [2]map[string]uint64
	prefix [2]map[string]uint64
	all    [2]uint64
	ring   [128]stampPoint // newest at ring[(head-1)%len]
	head   int
	heard  map[uint64]bool // announced by pub/sub, above seq
	top    uint64          // the highest sequence number indexed

	pending []*pendingPurge
	// invalidating are the URL invalidations queued and not yet
	// started: one more of the same URL refreshes the record's time.
	invalidating map[string]*pendingPurge
}

func (p *purgeLog) init() {
	for i := range 2 {
		p.url[i], p.tag[i], p.prefix[i] = map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
	}
	p.all = [2]uint64{}
	p.recent = nil
	p.heard = map[uint64]bool{}
	p.ring = [128]stampPoint{}
	p.head = 1 // ring[0] is {zero time, seq}: before anything was learned
	p.ring[0].seq = p.seq
	if p.invalidating == nil {
		p.invalidating = map[string]*pendingPurge{}
	}
}

func (p *purgeLog) known() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.seq
}

// stampAt is the purge sequence number this process knew at t, or an
// older one: what a response whose request was sent at t may have missed
// is every purge after it.
func (p *purgeLog) stampAt(t time.Time) uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for i := 1; i <= len(p.ring); i++ {
		sp := p.ring[(p.head-i+len(p.ring))%len(p.ring)]
		if sp.seq == 0 && sp.t.IsZero() {
			break
		}
		if !sp.t.After(t) {
			return sp.seq
		}
	}
	return 0
}

// check says whether a variant stamped stamp, of URL part u with tags,
// whose request was sent at reqTime (by its writer's clock), was purged
// by a purge this process knows.
func (p *purgeLog) check(stamp uint64, u string, tags []string, reqTime time.Time) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for i, verdict := range [2]int{purgedHard, purgedSoft} {
		if p.indexedLocked(i, stamp, u, tags) || p.pendingLocked(i == 1, reqTime, u, tags) {
			return verdict
		}
	}
	return purgedNot
}

// indexedLocked reports whether a numbered purge, hard (i 0) or soft (1),
// selects the variant.
func (p *purgeLog) indexedLocked(i int, stamp uint64, u string, tags []string) bool {
	if p.all[i] > stamp || p.url[i][u] > stamp {
		return true
	}
	for _, tg := range tags {
		if p.tag[i][tg] > stamp {
			return true
		}
	}
	for pre, s := range p.prefix[i] {
		if s > stamp && strings.HasPrefix(u, pre) {
			return true
		}
	}
	return false
}

// pendingLocked reports whether a pending purge, soft or not, selects a
// variant whose request was sent before it (give or take clockSkew).
func (p *purgeLog) pendingLocked(soft bool, reqTime time.Time, u string, tags []string) bool {
	for _, pp := range p.pending {
		if pp.soft == soft && reqTime.Before(pp.at.Add(clockSkew)) && pp.selects(u, tags) {
			return true
		}
	}
	return false
}

// addPendingLocked records pp, unless maxPending wait to be sent already
// (failed, the tier being down): they are all replaced then, with pp, by
// one pending hard purge of everything (soft when they all are), and it
// reports that pp was not recorded. Those with a send queued or under way
// are not counted, the write queue bounding them: a burst of
// invalidations while Redis is up must not become a purge of everything.
func (p *purgeLog) addPendingLocked(pp *pendingPurge) bool {
	unsent := 0
	for _, q := range p.pending {
		if !q.sending {
			unsent++
		}
	}
	if unsent < maxPending {
		p.pending = append(p.pending, pp)
		return true
	}
	all := &pendingPurge{kind: cache.PurgeKindAll, soft: pp.soft, at: pp.at}
	var keep []*pendingPurge
	for _, q := range p.pending {
		if q.sending {
			keep = append(keep, q)
			continue
		}
		all.soft = all.soft && q.soft
		if q.at.After(all.at) {
			all.at = q.at
		}
	}
	p.pending = append(keep, all)
	return false
}

func (p *purgeLog) removePendingLocked(pp *pendingPurge) {
	if i := slices.Index(p.pending, pp); i >= 0 {
		p.pending = slices.Delete(p.pending, i, i+1)
	}
}

func (p *purgeLog) hasPending() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.pending) > 0
}

// addLocked indexes r.
func (p *purgeLog) addLocked(r purgeRec) {
	i := 0
	if r.soft {
		i = 1
	}
	up := func(m map[string]uint64, k string) {
		if m[k] < r.seq {
			m[k] = r.seq
		}
	}
	switch r.kind {
	case cache.PurgeKindURL:
		up(p.url[i], r.value)
	case cache.PurgeKindPrefix:
		up(p.prefix[i], r.value)
	case cache.PurgeKindTag:
		up(p.tag[i], r.value)
	case cache.PurgeKindAll:
		p.all[i] = max(p.all[i], r.seq)
	}
	p.top = max(p.top, r.seq)
	p.recent = append(p.recent, r)
	if len(p.recent) > purgeLogLen+purgeLogLen/4 {
		p.trimLocked()
	}
}

// trimLocked forgets the oldest purges, taking them as a hard purge of
// everything: a variant stamped before them can no longer be checked.
func (p *purgeLog) trimLocked() {
	slices.SortFunc(p.recent, func(a, b purgeRec) int { return cmpU(a.seq, b.seq) })
	drop := len(p.recent) - purgeLogLen
	floor := p.recent[drop-1].seq
	keep := slices.Clone(p.recent[drop:])
	all := p.all
	seq, ring, head, top := p.seq, p.ring, p.head, p.top
	p.init()
	p.seq, p.ring, p.head, p.top = seq, ring, head, top
	p.all = [2]uint64{max(all[0], floor), all[1]}
	for _, r := range keep {
		p.addLocked(r)
	}
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// advanceLocked records that every purge up to seq is known, from now.
func (p *purgeLog) advanceLocked(seq uint64, now time.Time) {
	if seq <= p.seq {
		return
	}
	p.seq = seq
	p.ring[p.head%len(p.ring)] = stampPoint{t: now, seq: seq}
	p.head = (p.head + 1) % len(p.ring)
	for s := range p.heard {
		if s <= seq {
			delete(p.heard, s)
		}
	}
}

// purge records a purge in Redis and in this process's log; when Redis
// cannot record it, it is kept pending (see pendingPurge) and the error
// returned.
func (t *Tier) purge(ctx context.Context, kind cache.PurgeKind, value string, soft bool) (int, error) {
	var seq uint64
	err := t.do(ctx, t.config().Timeout, func(ctx context.Context, c rueidis.Client) error {
		var err error
		seq, err = t.execPurge(ctx, c, kind, value, soft)
		return err
	})
	if err != nil {
		t.purges.mu.Lock()
		t.purges.addPendingLocked(&pendingPurge{kind: kind, value: strings.Clone(value), soft: soft, at: t.now()})
		t.purges.mu.Unlock()
		return 0, err
	}
	t.recorded(seq, kind, value, soft, nil)
	return 0, nil
}

// execPurge runs the purge script and returns the purge's number.
func (t *Tier) execPurge(ctx context.Context, c rueidis.Client, kind cache.PurgeKind, value string, soft bool) (uint64, error) {
	arg := encodePurgeArg(kind, soft, t.id, value)
	t.purges.mu.RLock()
	floor := strconv.FormatUint(max(t.purges.seq, t.purges.top), 10)
	t.purges.mu.RUnlock()
	seq, err := purgeScript.Exec(ctx, c, []string{t.k.seq(), t.k.log()}, []string{arg, strconv.Itoa(purgeLogLen), t.k.events(), floor}).AsInt64()
	return uint64(seq), err
}

// recorded indexes a purge of this process Redis numbered seq, in place
// of its pending record pp when not nil.
func (t *Tier) recorded(seq uint64, kind cache.PurgeKind, value string, soft bool, pp *pendingPurge) {
	t.st.purgesSent.Add(1)
	t.purges.mu.Lock()
	t.purges.addLocked(purgeRec{seq: seq, kind: kind, soft: soft, value: value, origin: t.id})
	if pp != nil {
		t.purges.removePendingLocked(pp)
	}
	if seq == t.purges.seq+1 {
		// No purge of another process can lie between the last one known
		// and this one: it is known now, so a write that starts after it
		// is stamped after it. Left to the sync, such a write would carry
		// an older stamp and be taken as purged by the purge before it.
		t.purges.advanceLocked(seq, t.now())
	}
	t.purges.mu.Unlock()
	t.requestSync()
}

// InvalidateURL is the hard purge of url (a URL part, as PurgeURL takes)
// that an unsafe request makes (RFC 9111 4.4), from the response's path:
// it returns at once. The purge is pending in this process at once (its
// reads of the URL's variants requested before now are misses) and
// queued, on the URL's writer, for Redis to record and announce; while it
// is still queued, another of the same URL joins it. A full queue drops
// it, counted as a dropped write, and it is sent again with the other
// pending purges.
func (t *Tier) InvalidateURL(url string) {
	p := &t.purges
	now := t.now()
	p.mu.Lock()
	if pp := p.invalidating[url]; pp != nil {
		// Not started: the purge Redis numbers after now covers this one.
		pp.at = now
		p.mu.Unlock()
		return
	}
	url = strings.Clone(url)
	pp := &pendingPurge{kind: cache.PurgeKindURL, value: url, at: now, sending: true}
	if !p.addPendingLocked(pp) {
		p.mu.Unlock()
		return // replaced by a pending purge of everything, sent as the others
	}
	p.invalidating[url] = pp
	p.mu.Unlock()
	unqueue := func() {
		p.mu.Lock()
		if p.invalidating[url] == pp {
			delete(p.invalidating, url)
		}
		p.mu.Unlock()
	}
	// Not a write (Writes counts stores), but its drops count as a
	// write's: WritesDropped is what says the queue is too small.
	op := writeOp{run: func(ctx context.Context, c rueidis.Client) error {
		unqueue() // started: a later invalidation needs a purge of its own
		seq, err := t.execPurge(ctx, c, cache.PurgeKindURL, url, false)
		if err == nil {
			t.recorded(seq, cache.PurgeKindURL, url, false, pp)
		}
		return err
	}, done: func(err error) {
		// run is not called when the breaker is open: pp must not take
		// in later invalidations once resendPending may send it.
		unqueue()
		if err != nil {
			t.st.dropped.Add(1)
			t.unsending(pp)
		}
	}}
	if !t.enqueue(url, op) {
		t.st.dropped.Add(1)
		unqueue()
		t.unsending(pp)
	}
}

// unsending marks pp's send failed: the next resendPending sends it.
func (t *Tier) unsending(pp *pendingPurge) {
	t.purges.mu.Lock()
	pp.sending = false
	t.purges.mu.Unlock()
}

// resendPending queues the sends of the pending purges that have none
// under way, in the order they were made, on one writer so that they
// reach Redis in that order.
func (t *Tier) resendPending() {
	p := &t.purges
	p.mu.Lock()
	var send []*pendingPurge
	for _, pp := range p.pending {
		if !pp.sending {
			pp.sending = true
			send = append(send, pp)
		}
	}
	p.mu.Unlock()
	for i, pp := range send {
		op := writeOp{run: func(ctx context.Context, c rueidis.Client) error {
			seq, err := t.execPurge(ctx, c, pp.kind, pp.value, pp.soft)
			if err == nil {
				t.recorded(seq, pp.kind, pp.value, pp.soft, pp)
			}
			return err
		}, done: func(err error) {
			if err != nil {
				t.unsending(pp)
			}
		}}
		if !t.enqueue(t.k.log(), op) {
			for _, pp := range send[i:] {
				t.unsending(pp)
			}
			return
		}
	}
}

// PurgeURL implements cache.Store. Like every purge it is recorded in
// Redis, O(1), and applied by each process to what it reads; the count
// returned is 0, the first tier's being the one that means something.
//
// A purge Redis cannot record (the tier is down, its breaker open, the
// call timed out) returns the error, so the cache reports it done in
// this process only; it is kept pending, though: this process's reads
// take what it selects as purged, so that the object Redis still holds
// is not read back into the memory tier just purged, and it is sent to
// Redis again (then reaching every process) once the tier is up. The
// other purges are alike.
func (t *Tier) PurgeURL(ctx context.Context, url string, soft bool) (int, error) {
	return t.purge(ctx, cache.PurgeKindURL, url, soft)
}

// PurgePrefix implements cache.Store.
func (t *Tier) PurgePrefix(ctx context.Context, prefix string, soft bool) (int, error) {
	return t.purge(ctx, cache.PurgeKindPrefix, prefix, soft)
}

// PurgeTag implements cache.Store.
func (t *Tier) PurgeTag(ctx context.Context, tag string, soft bool) (int, error) {
	return t.purge(ctx, cache.PurgeKindTag, tag, soft)
}

// PurgeAll implements cache.Store.
func (t *Tier) PurgeAll(ctx context.Context, soft bool) (int, error) {
	return t.purge(ctx, cache.PurgeKindAll, "", soft)
}

func (t *Tier) requestSync() {
	select {
	case t.syncNow <- struct{}{}:
	default:
	}
}

func (t *Tier) hook(ev string) {
	if h := t.testHook.Load(); h != nil {
		(*h)(ev)
	}
}

// subscribe listens to the events channel, subscribing again after an
// error (rueidis itself subscribes again on a new connection when one
// breaks); each (re)subscription syncs the purge log, since messages sent
// while unsubscribed are lost.
func (t *Tier) subscribe(c rueidis.Client) {
	for {
		ctx := rueidis.WithOnSubscriptionHook(t.ctx, func(s rueidis.PubSubSubscription) {
			if s.Kind == "subscribe" {
				t.hook("subscribed")
				t.requestSync()
			}
		})
		err := c.Receive(ctx, c.B().Subscribe().Channel(t.k.events()).Build(), t.onMessage)
		if t.ctx.Err() != nil {
			return
		}
		t.log.Debug("shared tier: subscription ended", "err", err)
		select {
		case <-t.ctx.Done():
			return
		case <-time.After(min(100*time.Millisecond, t.fixed.BreakerCoolDown)):
		}
	}
}

// onMessage handles a notification: "p<seq>" a purge, "f<hash>" a fill
// lease released.
func (t *Tier) onMessage(m rueidis.PubSubMessage) {
	if len(m.Message) < 2 {
		return
	}
	switch m.Message[0] {
	case 'p':
		if t.dropPurgeMessages.Load() {
			return
		}
		seq, err := strconv.ParseUint(m.Message[1:], 10, 64)
		if err != nil {
			return
		}
		t.purges.mu.Lock()
		ahead := seq > t.purges.seq
		if ahead {
			t.purges.heard[seq] = true
		}
		t.purges.mu.Unlock()
		if ahead {
			t.requestSync()
		}
	case 'f':
		t.wake(m.Message[1:], false)
	case 'n':
		t.wake(m.Message[1:], true)
	}
}

// poll keeps the purge log in step: on request, and every PurgeBound/4,
// when the sequence number (read through client-side caching, so that it
// costs no round trip while it does not change) moved.
func (t *Tier) poll() {
	for {
		bound := t.config().PurgeBound
		tick := time.NewTimer(max(bound/4, time.Millisecond))
		forced := false
		select {
		case <-t.ctx.Done():
			tick.Stop()
			return
		case <-t.syncNow:
			forced = true
		case <-tick.C:
		}
		tick.Stop()
		if t.usable() && t.purges.hasPending() {
			t.resendPending()
		}
		c := t.conn()
		if c == nil {
			continue
		}
		if !forced && t.purges.isSynced() {
			var remote int64
			err := t.do(t.ctx, t.config().Timeout, func(ctx context.Context, c rueidis.Client) error {
				var err error
				remote, err = c.DoCache(ctx, c.B().Get().Key(t.k.seq()).Cache(), max(bound/2, time.Millisecond)).AsInt64()
				if rueidis.IsRedisNil(err) {
					remote, err = 0, nil
				}
				return err
			})
			if err != nil || uint64(remote) == t.purges.known() {
				continue
			}
		}
		t.syncPurges()
	}
}

// raiseScript sets the purge sequence number to at least ARGV[1] and
// returns the log as it was: the purges made since Redis lost its data.
var raiseScript = rueidis.NewLuaScript(`
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local l = redis.call('LRANGE', KEYS[2], 0, -1)
if s < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return l`)

// raise raises Redis's purge numbering to local, and applies the purges
// other processes made under the lower numbers since Redis lost its data.
func (t *Tier) raise(local uint64) {
	var out []string
	err := t.do(t.ctx, max(t.config().Timeout, t.config().WriteTimeout), func(ctx context.Context, c rueidis.Client) error {
		var err error
		out, err = raiseScript.Exec(ctx, c, []string{t.k.seq(), t.k.log()}, []string{strconv.FormatUint(local, 10)}).AsStrSlice()
		return err
	})
	if err != nil {
		return
	}
	for _, e := range out {
		r, ok := decodePurge(e)
		if !ok || r.seq > local || r.origin == t.id {
			continue
		}
		t.st.purgesReceived.Add(1)
		if t.o.OnPurge != nil {
			t.o.OnPurge(r.kind, r.value, r.soft)
		}
	}
}

func (p *purgeLog) isSynced() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.synced
}

// maxEarlyPurges is how many purges the first sync applies one by one to
// what was stored before it; past it, it applies one purge of everything.
const maxEarlyPurges = 100

// syncPurges reads the purges this process does not know yet from the
// log and applies those of other processes to its first tier.
func (t *Tier) syncPurges() {
	// top is read before the script runs: own purges indexed since may
	// be above the sequence number it reads.
	t.purges.mu.RLock()
	from, top := t.purges.seq, t.purges.top
	t.purges.mu.RUnlock()
	var out []string
	err := t.do(t.ctx, max(t.config().Timeout, t.config().WriteTimeout), func(ctx context.Context, c rueidis.Client) error {
		var err error
		out, err = syncScript.Exec(ctx, c, []string{t.k.seq(), t.k.log()}, []string{strconv.FormatUint(from, 10), strconv.Itoa(purgeLogLen)}).AsStrSlice()
		return err
	})
	if err != nil || len(out) == 0 {
		return
	}
	remote, err := strconv.ParseUint(out[0], 10, 64)
	if err != nil {
		return
	}
	p := &t.purges
	p.mu.Lock()
	if remote < from || remote < top {
		// Redis lost its data (restarted empty, flushed): it answers
		// below what this process knew before asking. The numbering
		// must not go back, or purges to come would rank below the stamps
		// of entries written meanwhile: raise it to what this process
		// knows, and take every entry stamped before as purged.
		local := max(p.seq, top)
		p.all[0] = max(p.all[0], local)
		p.advanceLocked(local, t.now())
		p.mu.Unlock()
		t.log.Warn("shared tier: purge log lost, numbering raised", "had", local, "found", remote)
		t.raise(local)
		t.requestSync()
		return
	}
	if remote <= p.seq {
		// Nothing new; or another sync, or a purge of this process,
		// took the known sequence past what this one read while its
		// script ran. Neither says Redis lost anything: that is only
		// when it answers below what was known before it was asked.
		p.synced = true
		p.mu.Unlock()
		t.hook("synced")
		return
	}
	initial := !p.synced
	// The first sync applies nothing to the first tier, which holds only
	// what was read since, unless this process stored entries before it
	// (it started while Redis was away): the purges made meanwhile must
	// reach those.
	applyAll := !initial || t.storedEarly.Load()
	var recs []purgeRec
	for _, e := range out[1:] {
		r, ok := decodePurge(e)
		if !ok || r.seq <= p.seq {
			continue
		}
		recs = append(recs, r)
	}
	var apply []purgeRec
	lostAll := len(recs) == 0 || recs[0].seq > p.seq+1
	if lostAll {
		// More purges were made than the log keeps: take them as a hard
		// purge of everything before the first one it has.
		floor := remote
		if len(recs) > 0 {
			floor = recs[0].seq - 1
		}
		p.all[0] = max(p.all[0], floor)
		if applyAll {
			apply = append(apply, purgeRec{kind: cache.PurgeKindAll})
		}
	}
	var lost uint64
	for _, r := range recs {
		p.addLocked(r)
		if r.origin == t.id || !applyAll {
			continue
		}
		apply = append(apply, r)
		if !initial && !p.heard[r.seq] {
			lost++
		}
	}
	if initial && len(apply) > maxEarlyPurges {
		// The whole log, likely: one purge of everything is cheaper.
		apply = []purgeRec{{kind: cache.PurgeKindAll}}
	}
	p.advanceLocked(remote, t.now())
	p.synced = true
	p.mu.Unlock()
	t.st.lost.Add(lost)
	for _, r := range apply {
		t.st.purgesReceived.Add(1)
		if t.o.OnPurge != nil {
			t.o.OnPurge(r.kind, r.value, r.soft)
		}
	}
	t.hook("synced")
}
