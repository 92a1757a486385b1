package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"gateway/internal/leakcheck"
	"gateway/internal/redistest"
)

const redisTestPrefix = "gw:jobs:"

// redisTestStore opens a store on the servers at addrs (one, or a
// cluster's), closed when t ends.
func redisTestStore(t *testing.T, addrs ...string) *RedisStore {
	t.Helper()
	s, err := OpenRedis(RedisConfig{
		Connect: func() (rueidis.Client, error) {
			return rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs})
		},
		Prefix: redisTestPrefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func redisTestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// redisTestJob is a new job of route, as the queue would enqueue it.
func redisTestJob(route string) *Job {
	now := time.Now()
	return &Job{ID: redisTestID(), Route: route, Method: "GET", Host: "api.example", URI: "/x",
		Created: now, Expires: now.Add(time.Hour)}
}

// waitUntil polls cond against redistest's generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(redistest.Timeout)
	for delay := 5 * time.Millisecond; !cond(); delay = min(2*delay, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, redistest.Timeout)
		}
		time.Sleep(delay)
	}
}

func mustEnqueue(t *testing.T, s *RedisStore, j *Job) {
	t.Helper()
	got, existing, err := s.Enqueue(context.Background(), j, 100)
	if err != nil || existing || got.ID != j.ID {
		t.Fatalf("Enqueue: %v, existing %v", err, existing)
	}
}

func mustClaim(t *testing.T, s *RedisStore, route string) *Job {
	t.Helper()
	j, err := s.Claim(context.Background(), route, time.Minute)
	if err != nil || j == nil {
		t.Fatalf("Claim %s: %v, %v", route, j, err)
	}
	return j
}

func claimNone(t *testing.T, s *RedisStore, route string) {
	t.Helper()
	j, err := s.Claim(context.Background(), route, time.Minute)
	if err != nil || j != nil {
		t.Fatalf("Claim %s: got %+v, %v; want none", route, j, err)
	}
}

func finish(t *testing.T, s *RedisStore, j *Job, state string) {
	t.Helper()
	j.State, j.Finished = state, time.Now()
	if err := s.Update(context.Background(), j); err != nil {
		t.Fatalf("Update %s: %v", state, err)
	}
}

func TestRedisEnqueueGet(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	s := redisTestStore(t, srv.Addr)
	ctx := context.Background()
	want := redisFullJob(redisTestID(), "render")
	want.NotBefore = time.Time{}
	mustEnqueue(t, s, want)
	got, err := s.Get(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	want.State = StateQueued
	redisSameJob(t, got, want)
	if _, err := s.Get(ctx, redisTestID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an unknown ID: %v; want ErrNotFound", err)
	}
	// A job waiting for NotBefore is stored alike.
	d := redisFullJob(redisTestID(), "render")
	d.IdempotencyKey = "key-2"
	mustEnqueue(t, s, d)
	if got, err := s.Get(ctx, d.ID); err != nil || !got.NotBefore.Equal(d.NotBefore) {
		t.Fatalf("Get: %v, %v", got, err)
	}
}

func TestRedisQueueFull(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	s := redisTestStore(t, srv.Addr)
	ctx := context.Background()
	for range 2 {
		if _, _, err := s.Enqueue(ctx, redisTestJob("r"), 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Enqueue(ctx, redisTestJob("r"), 2); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third job: %v; want ErrQueueFull", err)
	}
	// Another route has its own depth.
	if _, _, err := s.Enqueue(ctx, redisTestJob("other"), 2); err != nil {
		t.Fatal(err)
	}
	// A running job still counts; a finished one does not.
	j := mustClaim(t, s, "r")
	if _, _, err := s.Enqueue(ctx, redisTestJob("r"), 2); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("with one running: %v; want ErrQueueFull", err)
	}
	finish(t, s, j, StateSucceeded)
	if _, _, err := s.Enqueue(ctx, redisTestJob("r"), 2); err != nil {
		t.Fatalf("after one finished: %v", err)
	}
}

func TestRedisIdempotency(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	s := redisTestStore(t, srv.Addr)
	ctx := context.Background()
	first := redisTestJob("r")
	first.Owner, first.IdempotencyKey, first.Fingerprint = []byte("alice"), "k1", []byte("fp1")
	mustEnqueue(t, s, first)

	again := redisTestJob("r")
	again.Owner, again.IdempotencyKey, again.Fingerprint = []byte("alice"), "k1", []byte("fp1")
	got, existing, err := s.Enqueue(ctx, again, 100)
	if err != nil || !existing || got.ID != first.ID {
		t.Fatalf("same key and request: %v, existing %v, %v; want the first job", got, existing, err)
	}
	if _, err := s.Get(ctx, again.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused job's ID: %v; want ErrNotFound", err)
	}

	other := redisTestJob("r")
	other.Owner, other.IdempotencyKey, other.Fingerprint = []byte("alice"), "k1", []byte("fp2")
	if _, _, err := s.Enqueue(ctx, other, 100); !errors.Is(err, ErrConflict) {
		t.Fatalf("same key, another request: %v; want ErrConflict", err)
	}

	// Another owner's key is another key.
	bob := redisTestJob("r")
	bob.Owner, bob.IdempotencyKey, bob.Fingerprint = []byte("bob"), "k1", []byte("fp2")
	mustEnqueue(t, s, bob)

	// The existing job is returned even when the queue is full.
	if got, existing, err := s.Enqueue(ctx, again, 1); err != nil || !existing || got.ID != first.ID {
		t.Fatalf("full queue, same key: %v, %v, %v", got, existing, err)
	}
}

func TestRedisClaim(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	s := redisTestStore(t, srv.Addr)
	ctx := context.Background()
	claimNone(t, s, "never-used")
	var ids []string
	for range 3 {
		j := redisTestJob("r")
		mustEnqueue(t, s, j)
		ids = append(ids, j.ID)
	}
	before := time.Now()
	for i, id := range ids {
		j := mustClaim(t, s, "r")
		if j.ID != id {
			t.Fatalf("claim %d: %s; want %s (the order of enqueueing)", i, j.ID, id)
		}
		if j.State != StateRunning || j.Attempts != 1 || j.Started.Before(before.Truncate(time.Millisecond)) {
			t.Fatalf("claimed: state %s, attempts %d, started %v", j.State, j.Attempts, j.Started)
		}
		got, err := s.Get(ctx, id)
		if err != nil || got.State != StateRunning || got.Attempts != 1 {
			t.Fatalf("Get after Claim: %+v, %v", got, err)
		}
	}
	claimNone(t, s, "r")
	st, err := s.Stats(ctx)
	if err != nil || st[StateRunning] != 3 || st[StateQueued] != 0 {
		t.Fatalf("Stats: %v, %v", st, err)
	}
}

// Two stores on one Redis are two replicas: either takes the other's
// jobs and answers for them.
func TestRedisReplicas(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	a, b := redisTestStore(t, srv.Addr), redisTestStore(t, srv.Addr)
	ctx := context.Background()
	j := redisTestJob("r")
	mustEnqueue(t, a, j)
	claimed := mustClaim(t, b, "r")
	if claimed.ID != j.ID {
		t.Fatalf("B claimed %s; want %s", claimed.ID, j.ID)
	}
	claimNone(t, a, "r")
	claimed.Status, claimed.ResultStatus = 200, 200
	finish(t, b, claimed, StateSucceeded)
	got, err := a.Get(ctx, j.ID)
	if err != nil || got.State != StateSucceeded || got.ResultStatus != 200 {
		t.Fatalf("A's Get: %+v, %v", got, err)
	}
}

// A job claimed by a replica that dies is claimed by another once it
// has been idle for the visibility.
func TestRedisReclaim(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	a, b := redisTestStore(t, srv.Addr), redisTestStore(t, srv.Addr)
	ctx := context.Background()
	const visibility = 200 * time.Millisecond
	j := redisTestJob("r")
	mustEnqueue(t, a, j)
	if got, err := a.Claim(ctx, "r", visibility); err != nil || got == nil {
		t.Fatalf("A's Claim: %v, %v", got, err)
	}
	claimedAt := time.Now()
	// A dies here: it never finishes the job.
	var again *Job
	waitUntil(t, "B reclaims", func() bool {
		var err error
		again, err = b.Claim(ctx, "r", visibility)
		if err != nil {
			t.Fatal(err)
		}
		return again != nil
	})
	if time.Since(claimedAt) < visibility {
		t.Fatalf("reclaimed after %v; visibility %v", time.Since(claimedAt), visibility)
	}
	if again.ID != j.ID || again.Attempts != 2 || again.State != StateRunning {
		t.Fatalf("reclaimed: %+v", again)
	}
	finish(t, b, again, StateSucceeded)
	// Finished: no one claims it again, however long it waits.
	time.Sleep(2 * visibility) // lets the visibility pass: what is asserted is an absence
	if got, err := a.Claim(ctx, "r", visibility); err != nil || got != nil {
		t.Fatalf("after it finished: %+v, %v", got, err)
	}
}

func TestRedisRetry(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	s := redisTestStore(t, srv.Addr)
	ctx := context.Background()
	j := redisTestJob("r")
	mustEnqueue(t, s, j)
	j = mustClaim(t, s, "r")
	j.State, j.Status, j.Error = StateQueued, 503, "upstream: unavailable"
	j.NotBefore = time.Now().Add(time.Second)
	if err := s.Update(ctx, j); err != nil {
		t.Fatal(err)
	}
	claimNone(t, s, "r")
	// Another job, due, is not held up by the waiting one.
	k := redisTestJob("r")
	mustEnqueue(t, s, k)
	if got := mustClaim(t, s, "r"); got.ID != k.ID {
		t.Fatalf("claimed %s; want the due job %s", got.ID, k.ID)
	}
	var got *Job
	waitUntil(t, "the retry is due", func() bool {
		var err error
		got, err = s.Claim(ctx, "r", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return got != nil
	})
	if time.Now().Before(j.NotBefore) {
		t.Fatalf("claimed before NotBefore %v", j.NotBefore)
	}
	if got.ID != j.ID || got.Attempts != 2 || got.Status != 503 {
		t.Fatalf("retry: %+v", got)
	}
	// A job enqueued with a NotBefore waits as a retry does.
	later := redisTestJob("later")
	later.NotBefore = time.Now().Add(200 * time.Millisecond)
	mustEnqueue(t, s, later)
	claimNone(t, s, "later")
	waitUntil(t, "the job enqueued for later is due", func() bool {
		got, err := s.Claim(ctx, "later", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return got != nil && got.ID == later.ID
	})
	// A retry due at once goes straight back to the stream.
	got.State, got.NotBefore = StateQueued, time.Time{}
	if err := s.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again := mustClaim(t, s, "r"); again.ID != j.ID || again.Attempts != 3 {
		t.Fatalf("immediate retry: %+v", again)
	}
}

func TestRedisCancel(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	s := redisTestStore(t, srv.Addr)
	ctx := context.Background()
	j := redisTestJob("r")
	mustEnqueue(t, s, j)
	finish(t, s, j, StateCancelled)
	claimNone(t, s, "r")
	// Cancelled while waiting for a retry.
	k := redisTestJob("r")
	mustEnqueue(t, s, k)
	k = mustClaim(t, s, "r")
	k.State, k.NotBefore = StateQueued, time.Now().Add(50*time.Millisecond)
	if err := s.Update(ctx, k); err != nil {
		t.Fatal(err)
	}
	finish(t, s, k, StateCancelled)
	time.Sleep(100 * time.Millisecond) // past NotBefore: what is asserted is an absence
	claimNone(t, s, "r")
	st, err := s.Stats(ctx)
	if err != nil || st[StateCancelled] != 2 || st[StateQueued] != 0 || st[StateRunning] != 0 {
		t.Fatalf("Stats: %v, %v", st, err)
	}
	if n := srv.Do(t, "GET", redisTestPrefix+"{r}:depth"); n != "0" {
		t.Fatalf("depth %s; want 0", n)
	}
	if err := s.Update(ctx, redisTestJob("r")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update of an unknown job: %v; want ErrNotFound", err)
	}
}

func TestRedisResult(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	s := redisTestStore(t, srv.Addr)
	ctx := context.Background()
	j := redisTestJob("r")
	mustEnqueue(t, s, j)
	if _, err := s.Result(ctx, j.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Result before any: %v; want ErrNotFound", err)
	}
	body := make([]byte, 3<<20+12345)
	_, _ = rand.Read(body)
	w, err := s.ResultWriter(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	for p, n := body, 1; len(p) > 0; n = n*3 + 7 {
		k := min(n, len(p))
		if _, err := w.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	readBack := func() []byte {
		t.Helper()
		r, err := s.Result(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := readBack(); !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes; want the %d written", len(got), len(body))
	}
	// An aborted writer leaves the stored result as it was, and nothing
	// of its own.
	w, err = s.ResultWriter(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 600<<10)); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if got := readBack(); !bytes.Equal(got, body) {
		t.Fatal("an aborted writer changed the result")
	}
	if keys := srv.Do(t, "KEYS", "*:w*"); keys != "" {
		t.Fatalf("part keys left: %q", keys)
	}
	// An empty result is a result.
	w, _ = s.ResultWriter(ctx, j.ID)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readBack(); len(got) != 0 {
		t.Fatalf("empty result read as %d bytes", len(got))
	}
	if _, err := s.ResultWriter(ctx, redisTestID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ResultWriter of an unknown job: %v", err)
	}
}

// A finished job's keys (record, result, index, idempotency key) expire
// at its Expires; nothing of a pending job expires.
func TestRedisTTL(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	s := redisTestStore(t, srv.Addr)
	ctx := context.Background()
	j := redisTestJob("r")
	j.Owner, j.IdempotencyKey, j.Fingerprint = []byte("o"), "k", []byte("f")
	mustEnqueue(t, s, j)
	keys := []string{s.jobKey("r", j.ID), s.idKey(j.ID), s.idemKey("r", j.Owner, j.IdempotencyKey)}
	for _, k := range keys {
		if ttl := srv.Do(t, "PTTL", k); ttl != "-1" {
			t.Fatalf("pending: PTTL %s = %s; want -1 (none)", k, ttl)
		}
	}
	j = mustClaim(t, s, "r")
	w, _ := s.ResultWriter(ctx, j.ID)
	_, _ = w.Write([]byte("done"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, s.resKey("r", j.ID))
	if ttl := srv.Do(t, "PTTL", s.resKey("r", j.ID)); ttl != "-1" {
		t.Fatalf("result of a running job: PTTL %s", ttl)
	}
	j.Expires = time.Now().Add(time.Hour)
	finish(t, s, j, StateSucceeded)
	for _, k := range keys {
		ttl, err := strconv.ParseInt(srv.Do(t, "PTTL", k), 10, 64)
		if err != nil || ttl <= 0 || ttl > time.Hour.Milliseconds() {
			t.Fatalf("finished: PTTL %s = %d, %v", k, ttl, err)
		}
	}
	// Expire forgets it in the counters once it is past Expires.
	st, _ := s.Stats(ctx)
	if st[StateSucceeded] != 1 {
		t.Fatalf("Stats: %v", st)
	}
	if n, err := s.Expire(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("Expire before Expires: %d, %v", n, err)
	}
	if n, err := s.Expire(ctx, j.Expires.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("Expire after Expires: %d, %v", n, err)
	}
	if st, _ := s.Stats(ctx); st[StateSucceeded] != 0 {
		t.Fatalf("Stats after Expire: %v", st)
	}
	if _, err := s.Get(ctx, j.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Expire: %v", err)
	}
}

// With Redis down every call fails at once (the gateway answers 503),
// and works again when Redis is back; the store opens while it is down.
func TestRedisDown(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	ctx := context.Background()
	fast := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		if err == nil {
			t.Fatalf("%s with Redis down: no error", what)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%s with Redis down took %v", what, d)
		}
	}
	all := func(s *RedisStore, id string) {
		t.Helper()
		fast("Enqueue", func() error { _, _, err := s.Enqueue(ctx, redisTestJob("r"), 10); return err })
		fast("Claim", func() error { _, err := s.Claim(ctx, "r", time.Minute); return err })
		fast("Get", func() error { _, err := s.Get(ctx, id); return err })
		fast("Update", func() error { j := redisTestJob("r"); j.ID = id; return s.Update(ctx, j) })
		fast("ResultWriter", func() error { _, err := s.ResultWriter(ctx, id); return err })
		fast("Result", func() error { _, err := s.Result(ctx, id); return err })
		fast("Expire", func() error { _, err := s.Expire(ctx, time.Now()); return err })
		fast("Stats", func() error { _, err := s.Stats(ctx); return err })
	}

	// Connected, then Redis dies.
	s := redisTestStore(t, srv.Addr)
	j := redisTestJob("r")
	mustEnqueue(t, s, j)
	srv.Kill()
	all(s, j.ID)
	srv.Restart(t)
	waitUntil(t, "the store works again", func() bool {
		_, _, err := s.Enqueue(ctx, redisTestJob("r"), 10)
		return err == nil
	})
	mustClaim(t, s, "r")

	// Opened while Redis is down: no connection yet.
	srv.Kill()
	cold := redisTestStore(t, srv.Addr)
	all(cold, j.ID)
	srv.Restart(t)
	waitUntil(t, "the store connects", func() bool {
		_, _, err := cold.Enqueue(ctx, redisTestJob("r"), 10)
		return err == nil
	})
}

// The whole flow on a Cluster: each route's keys on its own slot, the
// route index and route set on others.
func TestRedisCluster(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	c := redistest.StartCluster(t, 3)
	a, b := redisTestStore(t, c.Addrs...), redisTestStore(t, c.Addrs...)
	ctx := context.Background()
	routes := []string{"render", "export", "{odd}route", ""}
	slots := map[int]bool{}
	for _, r := range routes {
		slots[redistest.SlotOf(a.rk(r, "q"))] = true
	}
	if len(slots) < 2 {
		t.Fatalf("routes on %d slot(s); the test wants several", len(slots))
	}
	for _, r := range routes {
		j := redisTestJob(r)
		j.Owner, j.IdempotencyKey, j.Fingerprint = []byte("o"), "k", []byte("f")
		mustEnqueue(t, a, j)
		if got, existing, err := b.Enqueue(ctx, &Job{ID: redisTestID(), Route: r, Owner: j.Owner, IdempotencyKey: "k", Fingerprint: j.Fingerprint}, 10); err != nil || !existing || got.ID != j.ID {
			t.Fatalf("route %q: idempotent Enqueue on B: %v, %v, %v", r, got, existing, err)
		}
		claimed := mustClaim(t, b, r)
		if claimed.ID != j.ID || claimed.Attempts != 1 {
			t.Fatalf("route %q: B claimed %+v", r, claimed)
		}
		w, err := b.ResultWriter(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		body := bytes.Repeat([]byte(r+"."), 200<<10)
		_, _ = w.Write(body)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		claimed.ResultSize = int64(len(body))
		finish(t, b, claimed, StateSucceeded)
		got, err := a.Get(ctx, j.ID)
		if err != nil || got.State != StateSucceeded || got.ResultSize != int64(len(body)) {
			t.Fatalf("route %q: A's Get: %+v, %v", r, got, err)
		}
		rr, err := a.Result(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(rr)
		_ = rr.Close()
		if err != nil || !bytes.Equal(back, body) {
			t.Fatalf("route %q: result read back: %d bytes, %v", r, len(back), err)
		}
	}
	// Retry with a wait, and a reclaim, on a cluster too.
	j := redisTestJob("render")
	mustEnqueue(t, a, j)
	j = mustClaim(t, a, "render")
	j.State, j.NotBefore = StateQueued, time.Now().Add(300*time.Millisecond)
	if err := a.Update(ctx, j); err != nil {
		t.Fatal(err)
	}
	claimNone(t, b, "render")
	waitUntil(t, "the retry, then its reclaim", func() bool {
		got, err := b.Claim(ctx, "render", 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		return got != nil && got.Attempts == 3
	})
	st, err := a.Stats(ctx)
	if err != nil || st[StateSucceeded] != len(routes) || st[StateRunning] != 1 {
		t.Fatalf("Stats: %v, %v", st, err)
	}
}

// A worker that reports (an Update that keeps the job running) keeps
// its job: the visibility starts again.
func TestRedisHeartbeat(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	a, b := redisTestStore(t, srv.Addr), redisTestStore(t, srv.Addr)
	ctx := context.Background()
	const visibility = 500 * time.Millisecond
	mustEnqueue(t, a, redisTestJob("r"))
	j, err := a.Claim(ctx, "r", visibility)
	if err != nil || j == nil {
		t.Fatalf("Claim: %v, %v", j, err)
	}
	time.Sleep(visibility + 100*time.Millisecond) // the entry must have been idle past the visibility
	if err := a.Update(ctx, j); err != nil {      // still running: heard of
		t.Fatal(err)
	}
	if got, err := b.Claim(ctx, "r", visibility); err != nil || got != nil {
		t.Fatalf("B claimed a job whose worker just reported: %+v, %v", got, err)
	}
	waitUntil(t, "B reclaims once A is silent", func() bool {
		got, err := b.Claim(ctx, "r", visibility)
		if err != nil {
			t.Fatal(err)
		}
		return got != nil && got.ID == j.ID && got.Attempts == 2
	})
}

// Expire drops other processes' consumers that have nothing pending,
// and only those.
func TestRedisForgetConsumers(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	a, b, c := redisTestStore(t, srv.Addr), redisTestStore(t, srv.Addr), redisTestStore(t, srv.Addr)
	ctx := context.Background()
	for range 3 {
		mustEnqueue(t, a, redisTestJob("r"))
	}
	finish(t, a, mustClaim(t, a, "r"), StateSucceeded) // a: nothing pending
	mustClaim(t, b, "r")                               // b: one pending
	finish(t, c, mustClaim(t, c, "r"), StateSucceeded) // c: nothing pending, but c is the one expiring
	consumers := func() int {
		v, err := srv.Cmd("XINFO", "CONSUMERS", c.rk("r", "q"), redisGroup)
		if err != nil {
			t.Fatal(err)
		}
		return len(v.([]any))
	}
	if n := consumers(); n != 3 {
		v, _ := srv.Cmd("XINFO", "CONSUMERS", c.rk("r", "q"), redisGroup)
		t.Fatalf("%d consumers; want 3: %v", n, v)
	}
	c.consumerIdle = -time.Millisecond // however recently seen
	if _, err := c.Expire(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	// a's goes; b's (pending) and c's own stay.
	if n := consumers(); n != 2 {
		t.Fatalf("%d consumers after Expire; want 2", n)
	}
}

// While Redis is down a cold store does not dial on every call: Connect
// is retried after a bounded backoff.
func TestRedisConnectBackoff(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	srv.Kill()
	var mu sync.Mutex
	connects := 0
	s, err := OpenRedis(RedisConfig{Prefix: redisTestPrefix, Connect: func() (rueidis.Client, error) {
		mu.Lock()
		connects++
		mu.Unlock()
		return rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}})
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	for range 20 {
		if _, err := s.Get(ctx, redisTestID()); err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("Get with Redis down: %v", err)
		}
	}
	mu.Lock()
	n := connects
	mu.Unlock()
	if n < 1 || n > 3 {
		t.Fatalf("%d Connect calls for 20 calls at once; want 1 (a few at most)", n)
	}
	srv.Restart(t)
	waitUntil(t, "connected", func() bool {
		_, err := s.Get(ctx, redisTestID())
		return errors.Is(err, ErrNotFound)
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, redisTestID()); !errors.Is(err, errRedisClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

// Replicas racing: the same Idempotency-Key enqueued at once from two
// stores makes one job; jobs claimed at once from two stores go to one
// worker each.
func TestRedisConcurrent(t *testing.T) {
	leakcheck.Check(t, "rueidis")
	srv := redistest.Start(t)
	stores := []*RedisStore{redisTestStore(t, srv.Addr), redisTestStore(t, srv.Addr)}
	ctx := context.Background()

	const n = 16
	ids := make([]string, n)
	existing := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			j := redisTestJob("r")
			j.Owner, j.IdempotencyKey, j.Fingerprint = []byte("o"), "same", []byte("f")
			got, ex, err := stores[i%2].Enqueue(ctx, j, 100)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], existing[i] = got.ID, ex
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		if ids[i] != ids[0] {
			t.Fatalf("enqueue %d got job %s; enqueue 0 got %s", i, ids[i], ids[0])
		}
		if !existing[i] {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d jobs created for one key; want 1", created)
	}

	want := map[string]bool{ids[0]: true}
	for range 40 {
		j := redisTestJob("r")
		mustEnqueue(t, stores[0], j)
		want[j.ID] = true
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	for w := range 8 {
		wg.Go(func() {
			for {
				j, err := stores[w%2].Claim(ctx, "r", time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if j == nil {
					return
				}
				mu.Lock()
				claimed[j.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != len(want) {
		t.Fatalf("%d jobs claimed; want %d", len(claimed), len(want))
	}
	for id, k := range claimed {
		if !want[id] || k != 1 {
			t.Fatalf("job %s claimed %d times (known %v)", id, k, want[id])
		}
	}
}
