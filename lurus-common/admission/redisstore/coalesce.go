package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/coalesce"
)

// ReserveBatch runs many reservations in one round trip (a pipeline of the
// same script Reserve runs, so each stays atomic on its own). errs[i] is
// set when rs[i] could not be attempted or failed; the others' results
// stand.
func (s *Store) ReserveBatch(ctx context.Context, rs []admission.Reservation) ([]admission.Result, []error) {
	return s.runBatch(ctx, reserveScript, s.Reserve, rs)
}

// LeaseBatch is Lease for many entries in one round trip.
func (s *Store) LeaseBatch(ctx context.Context, rs []admission.Reservation) ([]admission.Result, []error) {
	return s.runBatch(ctx, leaseScript, s.Lease, rs)
}

func (s *Store) runBatch(ctx context.Context, script *redis.Script, one func(context.Context, admission.Reservation) (admission.Result, error),
	rs []admission.Reservation) ([]admission.Result, []error) {
	out, errs := make([]admission.Result, len(rs)), make([]error, len(rs))
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
var ErrCoalescerClosed = coalesce.ErrClosed

// Coalescer turns concurrent Lease calls into pipelined batches: while
// one batch is in flight to Redis, the next one gathers, so under load one
// round trip (one write and one read on each side) serves many requests,
// and a lone request goes out at once. Each reservation stays its own
// atomic script run with its own result.
type Coalescer struct {
	c *coalesce.Coalescer[admission.Reservation, admission.Result]
}

// NewCoalescer starts workers senders (each keeps one batch in flight)
// that send batches of at most maxBatch reservations. Close stops them.
func NewCoalescer(s *Store, workers, maxBatch int) *Coalescer {
	// Redis' own timeouts bound a batch; the requests' contexts must not
	// cut a batch that holds other requests' reservations.
	return &Coalescer{c: coalesce.New(s.LeaseBatch, coalesce.Options{Senders: workers, MaxBatch: maxBatch})}
}

// Lease is Store.Lease through the coalescer. Once handed over, the
// reservation is always attempted and its outcome awaited, even if ctx
// ends, so a hold is never made that its caller does not know about.
func (c *Coalescer) Lease(ctx context.Context, r admission.Reservation) (admission.Result, error) {
	return c.c.Do(ctx, r)
}

// Close stops the workers once the calls handed over are done; later
// calls to Lease fail with ErrCoalescerClosed.
func (c *Coalescer) Close() { c.c.Close() }
