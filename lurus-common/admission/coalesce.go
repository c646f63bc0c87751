package admission

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ReserveBatch runs many reservations in one round trip (a pipeline of the
// same script Reserve runs, so each stays atomic on its own). errs[i] is
// set when rs[i] could not be attempted or failed; the others' results
// stand.
func (s *Store) ReserveBatch(ctx context.Context, rs []Reservation) ([]Result, []error) {
	return s.runBatch(ctx, reserveScript, s.Reserve, rs)
}

// LeaseBatch is Lease for many entries in one round trip.
func (s *Store) LeaseBatch(ctx context.Context, rs []Reservation) ([]Result, []error) {
	return s.runBatch(ctx, leaseScript, s.Lease, rs)
}

func (s *Store) runBatch(ctx context.Context, script *redis.Script, one func(context.Context, Reservation) (Result, error),
	rs []Reservation) ([]Result, []error) {
	out, errs := make([]Result, len(rs)), make([]error, len(rs))
	p, ok := s.rdb.(pipeliner)
	if !ok {
		for i, r := range rs {
			out[i], errs[i] = one(ctx, r)
		}
		return out, errs
	}
	run := func() bool {
		pipe := p.Pipeline()
		cmds := make([]*redis.Cmd, len(rs))
		for i, r := range rs {
			args, err := s.reserveArgs(r)
			if err != nil {
				errs[i] = err
				continue
			}
			cmds[i] = script.EvalSha(ctx, pipe, s.keys(r.UserID), args...)
		}
		_, _ = pipe.Exec(ctx) // per-command errors are read below
		noScript := false
		for i, c := range cmds {
			if c == nil {
				continue
			}
			res, err := c.Int64Slice()
			if err != nil {
				if redis.HasErrorPrefix(err, "NOSCRIPT") {
					noScript = true
				}
				errs[i] = fmt.Errorf("admission: reserve: %w", err)
				continue
			}
			out[i], errs[i] = reserveResult(res)
		}
		return noScript
	}
	if run() {
		// First use on this server (or after SCRIPT FLUSH): load, retry.
		if err := script.Load(ctx, s.rdb).Err(); err != nil {
			for i := range errs {
				errs[i] = fmt.Errorf("admission: load script: %w", err)
			}
			return out, errs
		}
		clear(errs)
		run()
	}
	return out, errs
}

// ErrCoalescerClosed is returned by Coalescer.Lease after Close.
var ErrCoalescerClosed = errors.New("admission: coalescer closed")

// Coalescer turns concurrent Lease calls into pipelined batches: while
// one batch is in flight to Redis, the next one gathers, so under load one
// round trip (one write and one read on each side) serves many requests,
// and a lone request goes out at once. Each reservation stays its own
// atomic script run with its own result.
type Coalescer struct {
	s        *Store
	in       chan *pendingReserve
	maxBatch int
	done     chan struct{}
	// mu makes Close wait for hand-overs in progress, so nothing is handed
	// over after the workers drained the queue.
	mu     sync.RWMutex
	closed bool
}

type pendingReserve struct {
	r   Reservation
	res Result
	err error
	ok  chan struct{}
}

// NewCoalescer starts workers senders (each keeps one batch in flight)
// that send batches of at most maxBatch reservations. Close stops them.
func NewCoalescer(s *Store, workers, maxBatch int) *Coalescer {
	workers, maxBatch = max(1, workers), max(1, maxBatch)
	c := &Coalescer{s: s, in: make(chan *pendingReserve, workers*maxBatch), maxBatch: maxBatch, done: make(chan struct{})}
	for range workers {
		go c.loop()
	}
	return c
}

// Lease is Store.Lease through the coalescer. Once handed over, the
// reservation is always attempted and its outcome awaited, even if ctx
// ends, so a hold is never made that its caller does not know about.
func (c *Coalescer) Lease(ctx context.Context, r Reservation) (Result, error) {
	p := &pendingReserve{r: r, ok: make(chan struct{})}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return Result{}, ErrCoalescerClosed
	}
	select {
	case c.in <- p:
	case <-ctx.Done():
		c.mu.RUnlock()
		return Result{}, ctx.Err()
	}
	c.mu.RUnlock()
	<-p.ok
	return p.res, p.err
}

// Close stops the workers once the calls handed over are done; later
// calls to Lease fail with ErrCoalescerClosed.
func (c *Coalescer) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
}

func (c *Coalescer) loop() {
	batch := make([]*pendingReserve, 0, c.maxBatch)
	rs := make([]Reservation, 0, c.maxBatch)
	for {
		batch, rs = batch[:0], rs[:0]
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
		for _, p := range batch {
			rs = append(rs, p.r)
		}
		// Redis' own timeouts bound the call; the requests' contexts must
		// not cut a batch that holds other requests' reservations.
		res, errs := c.s.LeaseBatch(context.Background(), rs)
		for i, p := range batch {
			p.res, p.err = res[i], errs[i]
			close(p.ok)
		}
	}
}
