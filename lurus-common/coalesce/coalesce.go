// Package coalesce turns concurrent calls of one operation into batches,
// so that a store able to pipeline serves many callers with one round trip
// (one write and one read on each side) instead of one each. While a batch
// is in flight the next one gathers; a lone call goes out at once, so
// coalescing adds no wait when there is nothing to wait for. It knows
// nothing of the store: the batch function says how a batch is sent.
package coalesce

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by Do and Go after Close: the senders are gone, so
// the call was not made.
var ErrClosed = errors.New("coalesce: closed")

// Batch sends a batch of calls: out[i] and errs[i] answer in[i]. One
// call's failure must not fail the others (each is its own operation; the
// batch only shares the trip).
type Batch[In, Out any] func(ctx context.Context, in []In) (out []Out, errs []error)

// Options size a Coalescer.
type Options struct {
	// Senders is how many batches may be in flight at once (at least 1):
	// each sender keeps one.
	Senders int
	// MaxBatch caps the calls in one batch (at least 1).
	MaxBatch int
	// Timeout bounds one batch (0: none, the store's own timeouts bound
	// it). Callers' contexts never cut a batch, since it carries other
	// callers' calls.
	Timeout time.Duration
}

// Coalescer gathers calls and hands them to the batch function in batches.
// It is safe for concurrent use.
type Coalescer[In, Out any] struct {
	run      Batch[In, Out]
	in       chan *pending[In, Out]
	maxBatch int
	timeout  time.Duration
	done     chan struct{}
	// mu makes Close wait for hand-overs in progress, so nothing is handed
	// over after the senders drained the queue.
	mu     sync.RWMutex
	closed bool
}

type pending[In, Out any] struct {
	in  In
	out Out
	err error
	ok  chan struct{}    // closed when answered (Do)
	cb  func(Out, error) // called when answered (Go)
}

// New starts opt.Senders senders sending batches through run; Close stops
// them.
func New[In, Out any](run Batch[In, Out], opt Options) *Coalescer[In, Out] {
	senders, maxBatch := max(1, opt.Senders), max(1, opt.MaxBatch)
	c := &Coalescer[In, Out]{run: run, in: make(chan *pending[In, Out], senders*maxBatch), maxBatch: maxBatch,
		timeout: opt.Timeout, done: make(chan struct{})}
	for range senders {
		go c.loop()
	}
	return c
}

// Do makes one call through a batch and returns its answer. If ctx ends
// before the call is handed over, Do returns ctx.Err() and the call is not
// made. Once handed over, the call is always made and its answer awaited,
// even if ctx ends, so a change is never made that its caller does not
// know about.
func (c *Coalescer[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	p := &pending[In, Out]{in: in, ok: make(chan struct{})}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		var zero Out
		return zero, ErrClosed
	}
	select {
	case c.in <- p:
	case <-ctx.Done():
		c.mu.RUnlock()
		var zero Out
		return zero, ctx.Err()
	}
	c.mu.RUnlock()
	<-p.ok
	return p.out, p.err
}

// Go makes one call through a batch without waiting for it: done is called
// with the answer, on a sender's goroutine (so it must be quick), unless
// Go returns an error (ErrClosed), in which case the call is not made and
// done is not called. Go never blocks: when the queue is full, a goroutine
// of its own waits to hand the call over.
func (c *Coalescer[In, Out]) Go(in In, done func(Out, error)) error {
	if done == nil {
		done = func(Out, error) {}
	}
	p := &pending[In, Out]{in: in, cb: done}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	select {
	case c.in <- p:
		c.mu.RUnlock()
	default:
		// Still under the read lock, which Close waits for: the call is
		// handed over before the senders can stop.
		go func() {
			c.in <- p
			c.mu.RUnlock()
		}()
	}
	return nil
}

// Close stops the senders once the calls handed over are done; later calls
// to Do and Go fail with ErrClosed. It does not wait for the last batches.
func (c *Coalescer[In, Out]) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
}

func (c *Coalescer[In, Out]) loop() {
	batch := make([]*pending[In, Out], 0, c.maxBatch)
	ins := make([]In, 0, c.maxBatch)
	var zero In
	for {
		batch = batch[:0]
		select {
		case p := <-c.in:
			batch = append(batch, p)
		case <-c.done:
			// Closed: nothing more can arrive; finish what is queued.
			select {
			case p := <-c.in:
				batch = append(batch, p)
			default:
				return
			}
		}
	gather:
		for len(batch) < c.maxBatch {
			select {
			case p := <-c.in:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		ins = ins[:0]
		for _, p := range batch {
			ins = append(ins, p.in)
		}
		out, errs := c.send(ins)
		for i := range ins {
			ins[i] = zero // keep no caller's data alive until the next batch
		}
		for i, p := range batch {
			p.out, p.err = out[i], errs[i]
			if p.cb != nil {
				p.cb(p.out, p.err)
			} else {
				close(p.ok)
			}
			batch[i] = nil
		}
	}
}

func (c *Coalescer[In, Out]) send(ins []In) ([]Out, []error) {
	ctx := context.Background()
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	return c.run(ctx, ins)
}
