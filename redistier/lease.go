package redistier

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"gateway/cache"
)

// leaseScript takes a key's fill lease, or, when another process holds
// it, marks that someone waits and returns how long the lease has left.
// A lease key without an expiry (PTTL -1: not ours, or left by a bug or
// an operator) would never lapse, and every miss of the key would wait
// on it: it is taken over.
//
//	KEYS[1] lease, KEYS[2] waiters flag; ARGV token, ttl (ms).
//	Returns leaseTaken, leaseTakenOver, else the lease's PTTL (>= 0).
//
// The verdicts are below -2 so that no PTTL reply (-1 no expiry, -2 no
// key) can be read as one.
var leaseScript = rueidis.NewLuaScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return -10
end
local p = redis.call('PTTL', KEYS[1])
if p < 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return -11
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return p`)

// Replies of leaseScript other than a PTTL.
const (
	leaseTaken     = -10
	leaseTakenOver = -11 // the key had no expiry: it could never lapse
)

// extendScript extends a lease this process still holds, and the waiters
// flag with it so that waiters are told when it ends.
var extendScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`)

// releaseScript gives up a lease this process holds, and tells the
// waiters, if any.
//
//	KEYS[1] lease, KEYS[2] waiters flag; ARGV token, channel, message.
var releaseScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('DEL', KEYS[2]) == 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return 1`)

// maxLapsed bounds the keys remembered for counting takeovers.
const maxLapsed = 4096

// Lease implements cache.Coordinator. Of the processes missing a key at
// once, the one whose script sets the lease key holds it; the others wait
// for its release notification, at most as long as the lease has left.
func (t *Tier) Lease(ctx context.Context, primary string) (cache.Lease, error) {
	h := t.k.hash(primary)
	lk, wk := t.k.lease(h), t.k.waiters(h)
	ttl := t.config().LeaseTTL
	token := instanceID()
	// Listen before asking, so that a release between the script and the
	// wait is not missed.
	w := &leaseWaiter{ch: make(chan struct{})}
	t.waitMu.Lock()
	t.waiters[h] = append(t.waiters[h], w)
	t.waitMu.Unlock()
	defer t.unwait(h, w)

	var pttl int64
	err := t.do(ctx, t.config().Timeout, func(ctx context.Context, c rueidis.Client) error {
		var err error
		pttl, err = leaseScript.Exec(ctx, c, []string{lk, wk}, []string{token, strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)}).AsInt64()
		return err
	})
	if err != nil {
		return nil, err
	}
	if pttl == leaseTaken || pttl == leaseTakenOver {
		t.st.leases.Add(1)
		t.waitMu.Lock()
		if pttl == leaseTakenOver {
			delete(t.lapsed, h)
			t.st.takeovers.Add(1)
		} else if t.lapsed[h] {
			delete(t.lapsed, h)
			t.st.takeovers.Add(1)
		}
		t.waitMu.Unlock()
		l := &lease{t: t, hash: h, key: lk, waitKey: wk, objKey: t.k.object(h), token: token, stop: make(chan struct{})}
		t.held.Store(l.objKey, l)
		t.closeMu.RLock()
		if !t.closed {
			t.wg.Go(l.extend)
		}
		t.closeMu.RUnlock()
		return l, nil
	}
	t.st.leaseWaits.Add(1)
	pttl = max(pttl, 0) // no other reply is expected
	wait := time.NewTimer(time.Duration(pttl)*time.Millisecond + 10*time.Millisecond)
	defer wait.Stop()
	select {
	case <-w.ch:
		if w.unfilled {
			// The holder stored nothing others may share (too large for
			// the tier, or not cacheable): queuing for the lease in turn
			// would only make each process wait for the previous fetch.
			return nil, errUnfilled
		}
	case <-ctx.Done():
	case <-t.ctx.Done():
	case <-wait.C:
		// The holder neither released nor extended the lease: it died or
		// stalled. The next Lease call may take it over.
		t.waitMu.Lock()
		if len(t.lapsed) >= maxLapsed {
			clear(t.lapsed) // only counting takeovers depends on it
		}
		t.lapsed[h] = true
		t.waitMu.Unlock()
	}
	return nil, nil
}

// leaseWaiter is one Lease call waiting for another process's lease.
type leaseWaiter struct {
	ch       chan struct{} // closed by wake
	unfilled bool          // set before ch is closed: the holder stored nothing
}

// errUnfilled is Lease's answer when the holder released its lease
// without storing anything: the caller fetches for itself, at once.
var errUnfilled = errors.New("redis: the lease holder stored nothing to share")

func (t *Tier) unwait(h string, w *leaseWaiter) {
	t.waitMu.Lock()
	defer t.waitMu.Unlock()
	ws := t.waiters[h]
	for i, c := range ws {
		if c == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(t.waiters, h)
	} else {
		t.waiters[h] = ws
	}
}

// wake wakes the local waiters of key hash h: its lease was released,
// with a fill (unfilled false) or without.
func (t *Tier) wake(h string, unfilled bool) {
	t.waitMu.Lock()
	defer t.waitMu.Unlock()
	for _, w := range t.waiters[h] {
		w.unfilled = unfilled
		close(w.ch)
	}
	delete(t.waiters, h)
}

// lease is a fill lease this process holds.
type lease struct {
	t             *Tier
	hash          string
	key, waitKey  string
	objKey        string      // the object's key, under which held has it
	wrote         atomic.Bool // a write of the object was queued while held
	token         string
	stop          chan struct{}
	once, abandon sync.Once
}

// extend keeps the lease while its holder is alive.
func (l *lease) extend() {
	t := l.t
	for {
		tick := time.NewTimer(max(t.config().LeaseTTL/3, time.Millisecond))
		select {
		case <-l.stop:
			tick.Stop()
			return
		case <-t.ctx.Done():
			tick.Stop()
			return
		case <-tick.C:
		}
		ttl := strconv.FormatInt(max(t.config().LeaseTTL.Milliseconds(), 1), 10)
		_ = t.do(t.ctx, t.config().Timeout, func(ctx context.Context, c rueidis.Client) error {
			return extendScript.Exec(ctx, c, []string{l.key, l.waitKey}, []string{l.token, ttl}).Error()
		})
	}
}

// stopExtending ends the lease's extensions without releasing it, as
// when its holder dies.
func (l *lease) stopExtending() { l.abandon.Do(func() { close(l.stop) }) }

// Release implements cache.Lease: the release is queued behind the key's
// writes, so that the processes it wakes find what the fill stored. When
// the holder queued nothing for the key while it held the lease (the
// response was too large for the tier, or not to be stored), the waiters
// are told so, and fetch for themselves at once instead of taking the
// lease one after another.
func (l *lease) Release() {
	l.once.Do(func() {
		l.stopExtending()
		t := l.t
		t.held.Delete(l.objKey)
		msg := "f" + l.hash
		if !l.wrote.Load() {
			msg = "n" + l.hash
		}
		op := writeOp{run: func(ctx context.Context, c rueidis.Client) error {
			return releaseScript.Exec(ctx, c, []string{l.key, l.waitKey}, []string{l.token, t.k.events(), msg}).Error()
		}}
		if t.enqueue(t.k.object(l.hash), op) {
			return
		}
		// The queue is full (or the tier closing): release on the side.
		t.closeMu.RLock()
		defer t.closeMu.RUnlock()
		if t.closed {
			return // the lease lapses by itself
		}
		t.wg.Go(func() { _ = t.do(t.ctx, t.config().WriteTimeout, op.run) })
	})
}

// Found releases the lease as after a fill: the holder found the key
// filled by the previous holder, so the waiters should read it too.
func (l *lease) Found() {
	l.wrote.Store(true)
	l.Release()
}

// filled notes that a write of the object key was queued, for the lease
// this process may hold on it (see Release).
func (t *Tier) filled(objKey string) {
	if l, ok := t.held.Load(objKey); ok {
		l.(*lease).wrote.Store(true)
	}
}
