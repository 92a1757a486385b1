package jobs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestBoltStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "jobs.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := OpenBolt(path); err == nil {
		t.Fatal("a second open of the file succeeded; it is one process's alone")
	}
	base := time.Now()
	mk := func(i int, key string, fp string) *Job {
		return &Job{ID: newID(), Route: "r", Method: "GET", URI: "/", Created: base.Add(time.Duration(i) * time.Millisecond),
			IdempotencyKey: key, Fingerprint: []byte(fp), Owner: []byte("o")}
	}
	a, b, c := mk(1, "k", "f"), mk(2, "", ""), mk(3, "", "")
	for _, j := range []*Job{a, b} {
		if _, existing, err := s.Enqueue(ctx, j, 2); err != nil || existing {
			t.Fatalf("enqueue: %v %v", existing, err)
		}
	}
	if _, _, err := s.Enqueue(ctx, c, 2); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("past the depth: %v, want ErrQueueFull", err)
	}
	if got, existing, err := s.Enqueue(ctx, mk(4, "k", "f"), 2); err != nil || !existing || got.ID != a.ID {
		t.Fatalf("same key: %v %v %v", got, existing, err)
	}
	if _, _, err := s.Enqueue(ctx, mk(4, "k", "other"), 2); !errors.Is(err, ErrConflict) {
		t.Fatalf("same key, other fingerprint: %v", err)
	}
	// In order; a retry not yet due is passed over.
	j, err := s.Claim(ctx, "r", time.Minute)
	if err != nil || j.ID != a.ID || j.State != StateRunning || j.Attempts != 1 {
		t.Fatalf("claim: %+v %v", j, err)
	}
	j.State, j.NotBefore = StateQueued, time.Now().Add(time.Hour)
	if err := s.Update(ctx, j); err != nil {
		t.Fatal(err)
	}
	if j, err := s.Claim(ctx, "r", time.Minute); err != nil || j.ID != b.ID {
		t.Fatalf("claim past a waiting retry: %+v %v", j, err)
	}
	if j, err := s.Claim(ctx, "r", time.Minute); err != nil || j != nil {
		t.Fatalf("nothing due: %+v %v", j, err)
	}
	if m, _ := s.Stats(ctx); m[StateQueued] != 1 || m[StateRunning] != 1 {
		t.Fatalf("stats %v", m)
	}
	// A finished job with a result, expired.
	w, err := s.ResultWriter(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "body")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ = s.Get(ctx, b.ID)
	b.State, b.Expires = StateSucceeded, base.Add(time.Minute)
	if err := s.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	rr, err := s.Result(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rr)
	rr.Close()
	if string(got) != "body" {
		t.Fatalf("result %q", got)
	}
	if n, err := s.Expire(ctx, base.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	if _, err := s.Get(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after expiry: %v", err)
	}
	if _, err := os.Stat(filepath.Join(path+".results", b.ID)); !os.IsNotExist(err) {
		t.Fatalf("the result file outlived its job: %v", err)
	}
	// An aborted result leaves nothing.
	w, _ = s.ResultWriter(ctx, a.ID)
	io.WriteString(w, "partial")
	w.Abort()
	if _, err := s.Result(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an aborted result: %v", err)
	}
	// A corrupt record is an error, never a panic.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).Put([]byte(a.ID), []byte("GJOB\x01\x01garbage!"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, a.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a corrupt record: %v", err)
	}
	if _, err := s.Claim(ctx, "r", time.Minute); err != nil {
		t.Fatalf("claim over a corrupt record: %v", err)
	}
}
