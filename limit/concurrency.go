package limit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gateway/internal/fielderr"
)

// Errors of Concurrency.Acquire.
var (
	// ErrQueueFull: every slot is taken and the queue is full.
	ErrQueueFull = errors.New("limit: too many requests in flight and queued")
	// ErrQueueTimeout: the request waited its queue timeout for a slot.
	ErrQueueTimeout = errors.New("limit: timed out waiting for a slot")
)

// ConcurrencyOptions configure a Concurrency limiter.
type ConcurrencyOptions struct {
	// MaxInFlight is how many requests may hold a slot at once; at
	// least 1.
	MaxInFlight int
	// Queue is how many more may wait for a slot (0: none wait).
	Queue int
	// QueueTimeout is the longest a request waits; it must be positive
	// when Queue is.
	QueueTimeout time.Duration
}

// Concurrency bounds the requests in flight, with a bounded FIFO queue
// in front: a request beyond both is refused at once, so the work
// behind the limiter stays at MaxInFlight however much arrives. A
// released slot passes straight to the first waiter, so a waiter cannot
// be overtaken by a request that arrives later.
type Concurrency struct {
	max, maxQueue int
	timeout       time.Duration

	mu       sync.Mutex
	inFlight int
	queue    []*waiter // FIFO; waiters that gave up are removed

	shed, timedOut, waited atomic.Uint64
}

type waiter struct {
	ready   chan struct{} // closed when the slot is handed over
	granted bool          // under mu: the slot is this waiter's
}

// ConcurrencyStats is a snapshot of a Concurrency limiter.
type ConcurrencyStats struct {
	InFlight int `json:"in_flight"`
	Queued   int `json:"queued"`
	// Shed counts requests refused at once, QueueTimeouts those that
	// waited in vain, and Waited all that had to wait (served or not).
	Shed          uint64 `json:"shed"`
	QueueTimeouts uint64 `json:"queue_timeouts"`
	Waited        uint64 `json:"waited"`
}

// Validate reports the problems with o, each a *fielderr.Error naming
// MaxInFlight, Queue or QueueTimeout, joined.
func (o ConcurrencyOptions) Validate() error {
	var errs []error
	if o.MaxInFlight < 1 {
		errs = append(errs, fielderr.New("limit", "MaxInFlight", fmt.Sprintf("%d: must be at least 1", o.MaxInFlight)))
	}
	switch {
	case o.Queue < 0:
		errs = append(errs, fielderr.New("limit", "Queue", fmt.Sprintf("%d: must not be negative", o.Queue)))
	case o.Queue > 0 && o.QueueTimeout <= 0:
		errs = append(errs, fielderr.New("limit", "QueueTimeout", "must be positive when Queue is set"))
	}
	return errors.Join(errs...)
}

// NewConcurrency checks o (see Validate) and builds the limiter.
func NewConcurrency(o ConcurrencyOptions) (*Concurrency, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Concurrency{max: o.MaxInFlight, maxQueue: o.Queue, timeout: o.QueueTimeout}, nil
}

// Acquire takes a slot, waiting in the queue if there is room in it. It
// returns nil with the slot held (give it back with Release),
// ErrQueueFull, ErrQueueTimeout, or ctx's error if ctx ends first.
func (c *Concurrency) Acquire(ctx context.Context) error {
	c.mu.Lock()
	if c.inFlight < c.max && len(c.queue) == 0 {
		c.inFlight++
		c.mu.Unlock()
		return nil
	}
	if len(c.queue) >= c.maxQueue {
		c.mu.Unlock()
		c.shed.Add(1)
		return ErrQueueFull
	}
	w := &waiter{ready: make(chan struct{})}
	c.queue = append(c.queue, w)
	c.mu.Unlock()
	c.waited.Add(1)

	t := time.NewTimer(c.timeout)
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-t.C:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.mu.Lock()
	if w.granted {
		// The slot arrived as the wait ended; it is ours now.
		c.mu.Unlock()
		return nil
	}
	if i := slices.Index(c.queue, w); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
	}
	c.mu.Unlock()
	if err == ErrQueueTimeout {
		c.timedOut.Add(1)
	}
	return err
}

// Release gives back a slot taken by Acquire: to the first waiter, if
// any, else to the pool.
func (c *Concurrency) Release() {
	c.mu.Lock()
	if len(c.queue) > 0 {
		w := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if len(c.queue) == 0 {
			c.queue = nil // start over at the front of a new array
		}
		w.granted = true
		close(w.ready)
	} else {
		c.inFlight--
	}
	c.mu.Unlock()
}

// Stats returns the counters and the current occupancy.
func (c *Concurrency) Stats() ConcurrencyStats {
	c.mu.Lock()
	s := ConcurrencyStats{InFlight: c.inFlight, Queued: len(c.queue)}
	c.mu.Unlock()
	s.Shed = c.shed.Load()
	s.QueueTimeouts = c.timedOut.Load()
	s.Waited = c.waited.Load()
	return s
}
