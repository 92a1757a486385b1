package limit

import (
	"context"
	"errors"
	"testing"
	"time"
)

func newConcurrency(t testing.TB, o ConcurrencyOptions) *Concurrency {
	t.Helper()
	c, err := NewConcurrency(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// acquireAsync starts an Acquire and reports its result.
func acquireAsync(ctx context.Context, c *Concurrency) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Acquire(ctx) }()
	return ch
}

// waitQueued waits until n requests are queued.
func waitQueued(t *testing.T, c *Concurrency, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Queued != n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d queued; want %d", c.Stats().Queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func recv(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// TestConcurrencyQueueFIFO: MaxInFlight slots, Queue waiters served in
// arrival order as slots free, and the next refused at once.
func TestConcurrencyQueueFIFO(t *testing.T) {
	c := newConcurrency(t, ConcurrencyOptions{MaxInFlight: 2, Queue: 2, QueueTimeout: time.Minute})
	ctx := context.Background()
	for i := range 2 {
		if err := c.Acquire(ctx); err != nil {
			t.Fatalf("acquire %d: %v", i+1, err)
		}
	}
	first := acquireAsync(ctx, c)
	waitQueued(t, c, 1)
	second := acquireAsync(ctx, c)
	waitQueued(t, c, 2)
	if err := c.Acquire(ctx); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("fifth: got %v; want ErrQueueFull", err)
	}
	c.Release()
	if err := recv(t, first, "the first waiter"); err != nil {
		t.Fatalf("first waiter: %v", err)
	}
	select {
	case err := <-second:
		t.Fatalf("second waiter: got %v before a slot was free; want it waiting", err)
	default:
	}
	c.Release()
	if err := recv(t, second, "the second waiter"); err != nil {
		t.Fatalf("second waiter: %v", err)
	}
	if s := c.Stats(); s.InFlight != 2 || s.Queued != 0 || s.Shed != 1 || s.Waited != 2 || s.QueueTimeouts != 0 {
		t.Errorf("got %+v; want 2 in flight, 0 queued, 1 shed, 2 waited", s)
	}
	c.Release()
	c.Release()
	if s := c.Stats(); s.InFlight != 0 {
		t.Errorf("got %d in flight after every release; want 0", s.InFlight)
	}
}

// TestConcurrencyQueueTimeout: a waiter gives up after QueueTimeout and
// leaves the queue; one whose context ends leaves with its error.
func TestConcurrencyQueueTimeout(t *testing.T) {
	const timeout = 20 * time.Millisecond
	c := newConcurrency(t, ConcurrencyOptions{MaxInFlight: 1, Queue: 1, QueueTimeout: timeout})
	if err := c.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Acquire(context.Background()); !errors.Is(err, ErrQueueTimeout) {
		t.Fatalf("got %v; want ErrQueueTimeout", err)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("gave up after %v; want at least %v", d, timeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := acquireAsync(ctx, c)
	waitQueued(t, c, 1)
	cancel()
	if err := recv(t, ch, "the canceled waiter"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	if s := c.Stats(); s.Queued != 0 || s.InFlight != 1 || s.QueueTimeouts != 1 {
		t.Errorf("got %+v; want nothing queued, 1 in flight, 1 timeout", s)
	}
	// The slot goes back to the pool, not to a waiter that left.
	c.Release()
	if err := c.Acquire(context.Background()); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestConcurrencyOptions(t *testing.T) {
	for _, o := range []ConcurrencyOptions{
		{MaxInFlight: 0},
		{MaxInFlight: 1, Queue: -1},
		{MaxInFlight: 1, Queue: 1},
	} {
		if _, err := NewConcurrency(o); err == nil {
			t.Errorf("NewConcurrency(%+v): got no error; want one", o)
		}
	}
}
