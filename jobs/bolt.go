package jobs

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The layout of a BoltStore's file:
//
//	jobs            id → the job's record (EncodeJob)
//	idem            route \0 hex(owner) \0 key → id
//	q:<route>       created (8 bytes, big-endian Unix nanoseconds) id → NotBefore (8 bytes, or none):
//	                the route's queued jobs in enqueue order, with when a retry is due
//	r:<route>       id → nothing: the route's running jobs
//
// Result bodies are files in the directory beside the file (path +
// ".results"), one per job named by its id, written to a temporary file,
// synced and renamed when complete, so that a reader streams them from
// the disk and a torn one is never seen.
var (
	bucketJobs = []byte("jobs")
	bucketIdem = []byte("idem")
)

// BoltStore is the embedded Store: one bbolt file, no other process.
// Every write is synced before it returns (bbolt's NoSync is off), so a
// job is on disk before its 202 is sent.
type BoltStore struct {
	db  *bolt.DB
	dir string // result bodies

	mu  sync.RWMutex
	now func() time.Time

	writers atomic.Int64 // write transactions wanted or under way
}

// OpenBolt opens (creating it if needed) the job store at path, a file
// that only this process may hold open. Jobs that a previous process left
// running are queued again (their attempts stay counted): the file being
// exclusive, no one runs them any more.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("jobs: open %s: %w", path, err)
	}
	// Writes that arrive together share one transaction and one fsync
	// (DB.Batch, see write): a burst of requests accepted at once waits
	// for one sync, not one each. A batch waits at most this long for
	// company.
	db.MaxBatchDelay = time.Millisecond
	s := &BoltStore{db: db, dir: path + ".results", now: time.Now}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		db.Close()
		return nil, fmt.Errorf("jobs: %w", err)
	}
	// Half-written results of a previous process are of no use: their
	// attempts run again.
	if tmp, _ := filepath.Glob(filepath.Join(s.dir, "*.tmp")); len(tmp) > 0 {
		for _, f := range tmp {
			os.Remove(f)
		}
	}
	if err := db.Update(s.requeueRunning); err != nil {
		db.Close()
		return nil, fmt.Errorf("jobs: open %s: %w", path, err)
	}
	return s, nil
}

// write runs fn in a write transaction: batched with the others (one
// transaction, one fsync) when other writes are under way, on its own
// at once when it is alone, so that a lone request is not made to wait
// for company that never comes. fn may run more than once when batched.
func (s *BoltStore) write(fn func(*bolt.Tx) error) error {
	if s.writers.Add(1) > 1 {
		defer s.writers.Add(-1)
		return s.db.Batch(fn)
	}
	defer s.writers.Add(-1)
	return s.db.Update(fn)
}

// setClock makes the store read the queue's clock (a retry's NotBefore
// is set by it).
func (s *BoltStore) setClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

func (s *BoltStore) clock() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.now()
}

func (s *BoltStore) requeueRunning(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketJobs); err != nil {
		return err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketIdem); err != nil {
		return err
	}
	var running [][]byte
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if bytes.HasPrefix(name, []byte("r:")) {
			running = append(running, append([]byte(nil), name...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	jobs := tx.Bucket(bucketJobs)
	for _, name := range running {
		var ids []string
		_ = tx.Bucket(name).ForEach(func(k, _ []byte) error { ids = append(ids, string(k)); return nil })
		for _, id := range ids {
			j, err := getJob(jobs, id)
			if err != nil {
				// A corrupt record cannot run; drop its index entry.
				_ = tx.Bucket(name).Delete([]byte(id))
				continue
			}
			if j.State != StateRunning {
				_ = tx.Bucket(name).Delete([]byte(id))
				continue
			}
			old := *j
			j.State = StateQueued
			j.NotBefore = time.Time{}
			if err := putJob(tx, &old, j); err != nil {
				return err
			}
		}
	}
	return nil
}

func queueKey(j *Job) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(j.ID)), uint64(j.Created.UnixNano()))
	return append(k, j.ID...)
}

// notBeforeValue is the value of a job's queue entry: its NotBefore
// (8 bytes, big-endian Unix nanoseconds), or nothing when it is due at
// once.
func notBeforeValue(j *Job) []byte {
	if j.NotBefore.IsZero() {
		return nil
	}
	return binary.BigEndian.AppendUint64(nil, uint64(j.NotBefore.UnixNano()))
}

func idemKey(j *Job) []byte {
	return []byte(j.Route + "\x00" + hex.EncodeToString(j.Owner) + "\x00" + j.IdempotencyKey)
}

func getJob(b *bolt.Bucket, id string) (*Job, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	return DecodeJob(v)
}

// putJob stores j, moving its index entries from old's state (nil: a
// new job) to j's.
func putJob(tx *bolt.Tx, old, j *Job) error {
	rec, err := EncodeJob(j)
	if err != nil {
		return err
	}
	if old != nil {
		switch old.State {
		case StateQueued:
			if b := tx.Bucket([]byte("q:" + old.Route)); b != nil {
				if err := b.Delete(queueKey(old)); err != nil {
					return err
				}
			}
		case StateRunning:
			if b := tx.Bucket([]byte("r:" + old.Route)); b != nil {
				if err := b.Delete([]byte(old.ID)); err != nil {
					return err
				}
			}
		}
	}
	switch j.State {
	case StateQueued:
		b, err := tx.CreateBucketIfNotExists([]byte("q:" + j.Route))
		if err != nil {
			return err
		}
		if err := b.Put(queueKey(j), notBeforeValue(j)); err != nil {
			return err
		}
	case StateRunning:
		b, err := tx.CreateBucketIfNotExists([]byte("r:" + j.Route))
		if err != nil {
			return err
		}
		if err := b.Put([]byte(j.ID), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketJobs).Put([]byte(j.ID), rec)
}

func countKeys(b *bolt.Bucket) int {
	if b == nil {
		return 0
	}
	return b.Stats().KeyN
}

// Enqueue implements Store.
func (s *BoltStore) Enqueue(ctx context.Context, j *Job, depth int) (got *Job, existing bool, err error) {
	if !validID(j.ID) {
		return nil, false, fmt.Errorf("jobs: invalid job id %q", j.ID)
	}
	// Batch may run the function more than once (when another in the
	// batch fails): it sets got and existing anew each time.
	err = s.write(func(tx *bolt.Tx) error {
		got, existing = nil, false
		if j.IdempotencyKey != "" {
			if id := tx.Bucket(bucketIdem).Get(idemKey(j)); id != nil {
				prev, err := getJob(tx.Bucket(bucketJobs), string(id))
				if err == nil {
					if !bytes.Equal(prev.Fingerprint, j.Fingerprint) {
						return ErrConflict
					}
					got, existing = prev, true
					return nil
				}
				// The key outlived its job: it is free again.
			}
		}
		if depth > 0 && countKeys(tx.Bucket([]byte("q:"+j.Route)))+countKeys(tx.Bucket([]byte("r:"+j.Route))) >= depth {
			return ErrQueueFull
		}
		j.State = StateQueued
		if err := putJob(tx, nil, j); err != nil {
			return err
		}
		if j.IdempotencyKey != "" {
			if err := tx.Bucket(bucketIdem).Put(idemKey(j), []byte(j.ID)); err != nil {
				return err
			}
		}
		got = j
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return got, existing, nil
}

// Claim implements Store. The file is this process's alone, so a running
// job is run by one of its workers (or was requeued on open): visibility
// does not apply. An idle queue costs a read transaction, not a synced
// write: the write is taken only when a due job was seen.
func (s *BoltStore) Claim(ctx context.Context, route string, visibility time.Duration) (*Job, error) {
	now := s.clock()
	var due, stale bool
	err := s.db.View(func(tx *bolt.Tx) error {
		due, stale = scanQueue(tx, route, now, nil)
		return nil
	})
	if err != nil || (!due && !stale) {
		return nil, err
	}
	var got *Job
	// Batched with the other workers' claims and updates (see OpenBolt);
	// run again when another in the batch fails, it starts afresh.
	err = s.write(func(tx *bolt.Tx) error {
		got = nil
		scanQueue(tx, route, now, &got)
		if got == nil {
			return nil
		}
		old := *got
		got.State = StateRunning
		got.Attempts++
		got.Started = now
		got.NotBefore = time.Time{}
		return putJob(tx, &old, got)
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}

// scanQueue looks for the first due job of route's queue; with got (in
// a write transaction) it returns it there and drops the index entries
// of jobs that are gone, corrupt or no longer queued.
func scanQueue(tx *bolt.Tx, route string, now time.Time, got **Job) (due, stale bool) {
	b := tx.Bucket([]byte("q:" + route))
	if b == nil {
		return false, false
	}
	jobs := tx.Bucket(bucketJobs)
	var drop [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) < 8 {
			drop = append(drop, append([]byte(nil), k...))
			continue
		}
		if len(v) == 8 && time.Unix(0, int64(binary.BigEndian.Uint64(v))).After(now) {
			continue // a retry not yet due: its record (and body) is not decoded
		}
		j, err := getJob(jobs, string(k[8:]))
		if err != nil || j.State != StateQueued {
			drop = append(drop, append([]byte(nil), k...))
			continue
		}
		if j.NotBefore.After(now) {
			continue
		}
		due = true
		if got != nil {
			*got = j
		}
		break
	}
	if got != nil {
		for _, k := range drop {
			_ = b.Delete(k)
		}
	}
	return due, len(drop) > 0
}

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, id string) (*Job, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	var j *Job
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		j, err = getJob(tx.Bucket(bucketJobs), id)
		return err
	})
	return j, err
}

// Update implements Store.
func (s *BoltStore) Update(ctx context.Context, j *Job) error {
	return s.write(func(tx *bolt.Tx) error {
		old, err := getJob(tx.Bucket(bucketJobs), j.ID)
		if errors.Is(err, ErrNotFound) {
			return err // expired meanwhile: nothing to update
		}
		if err != nil {
			old = nil // corrupt: overwrite it
		}
		return putJob(tx, old, j)
	})
}

// ResultWriter implements Store: a temporary file renamed into place by
// Close.
func (s *BoltStore) ResultWriter(ctx context.Context, id string) (ResultWriter, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	f, err := os.CreateTemp(s.dir, id+".*.tmp")
	if err != nil {
		return nil, err
	}
	return &fileResult{f: f, path: filepath.Join(s.dir, id)}, nil
}

type fileResult struct {
	f    *os.File
	path string
	done bool
}

func (r *fileResult) Write(p []byte) (int, error) { return r.f.Write(p) }

func (r *fileResult) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	err := r.f.Sync()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(r.f.Name(), r.path)
	}
	if err != nil {
		os.Remove(r.f.Name())
	}
	return err
}

func (r *fileResult) Abort() {
	if r.done {
		return
	}
	r.done = true
	r.f.Close()
	os.Remove(r.f.Name())
}

// Result implements Store.
func (s *BoltStore) Result(ctx context.Context, id string) (ResultReader, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	f, err := os.Open(filepath.Join(s.dir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Expire implements Store: finished jobs whose Expires passed go, with
// their results and idempotency keys. Queued and running jobs never
// expire.
func (s *BoltStore) Expire(ctx context.Context, now time.Time) (int, error) {
	var gone []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		idem := tx.Bucket(bucketIdem)
		var del []*Job
		var corrupt [][]byte
		err := jobs.ForEach(func(k, v []byte) error {
			state, err := recordState(v)
			if err != nil {
				corrupt = append(corrupt, append([]byte(nil), k...))
				return nil
			}
			if state == StateQueued || state == StateRunning {
				return nil
			}
			j, err := DecodeJob(v)
			if err != nil {
				corrupt = append(corrupt, append([]byte(nil), k...))
				return nil
			}
			if !j.Expires.IsZero() && !j.Expires.After(now) {
				del = append(del, j)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range corrupt {
			if err := jobs.Delete(k); err != nil {
				return err
			}
			gone = append(gone, string(k))
		}
		for _, j := range del {
			if err := jobs.Delete([]byte(j.ID)); err != nil {
				return err
			}
			if j.IdempotencyKey != "" {
				k := idemKey(j)
				if string(idem.Get(k)) == j.ID {
					if err := idem.Delete(k); err != nil {
						return err
					}
				}
			}
			gone = append(gone, j.ID)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range gone {
		if validID(id) {
			os.Remove(filepath.Join(s.dir, id))
		}
	}
	return len(gone), nil
}

// Stats implements Store.
func (s *BoltStore) Stats(ctx context.Context) (map[string]int, error) {
	m := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		// The state byte alone, unchecked: counting reads no bodies.
		return tx.Bucket(bucketJobs).ForEach(func(_, v []byte) error {
			if len(v) >= recordMin && string(v[:len(recordMagic)]) == recordMagic {
				if c := int(v[len(recordMagic)+1]); c > 0 && c < len(stateNames) {
					m[stateNames[c]]++
				}
			}
			return nil
		})
	})
	return m, err
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }
