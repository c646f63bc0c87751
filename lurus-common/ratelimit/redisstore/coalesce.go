package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/coalesce"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// Coalescer is a Store whose Admit, Charge and Finish calls from
// concurrent requests share pipelined round trips: while one batch is in
// flight to Redis the next gathers, so under load one write and one read
// serve many requests, and a lone call goes out at once. Each call is
// still its own atomic script run with its own answer, exactly as the
// Store's, errors (ErrUnavailable included) too. Calls are built on the
// caller's goroutine; the senders only send them.
//
// Once a call is handed over it is made and awaited even if the caller's
// context ends (a request is never admitted without its caller knowing);
// the context bounds only the wait for a place in the queue, and
// coalesce.Options.Timeout bounds a batch.
type Coalescer struct {
	s *Store
	c *coalesce.Coalescer[*call, *redis.Cmd]
}

// NewCoalescer starts the senders of a Coalescer over s; Close stops them.
func NewCoalescer(s *Store, opt coalesce.Options) *Coalescer {
	return &Coalescer{s: s, c: coalesce.New(s.sendBatch, opt)}
}

// Close stops the senders after the calls handed over; later calls fail
// with an error wrapping ratelimit.ErrUnavailable.
func (c *Coalescer) Close() { c.c.Close() }

// Admit is Store.Admit through a shared round trip.
func (c *Coalescer) Admit(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error) {
	a, d, err := c.s.admitCall(r)
	if a == nil {
		return d, err
	}
	cmd, err := c.c.Do(ctx, &a.call)
	if err != nil {
		return ratelimit.Decision{}, wrap("admit", err)
	}
	return a.decision(cmd)
}

// Charge is Store.Charge through a shared round trip.
func (c *Coalescer) Charge(ctx context.Context, t ratelimit.Ticket, delivered int64) error {
	return c.settle(ctx, opCharge, t, delivered)
}

// Finish is Store.Finish through a shared round trip.
func (c *Coalescer) Finish(ctx context.Context, t ratelimit.Ticket, final int64) error {
	return c.settle(ctx, opFinish, t, final)
}

func (c *Coalescer) settle(ctx context.Context, op settleOp, t ratelimit.Ticket, tokens int64) error {
	k, err := c.s.settleCall(op, t, tokens)
	if k == nil {
		return err
	}
	cmd, err := c.c.Do(ctx, k)
	if err != nil {
		return wrap(op.String(), err)
	}
	return wrap(op.String(), cmd.Err())
}

// ChargeAsync is Charge without waiting: the caller, typically a stream
// that must not stall on Redis, needs neither a goroutine nor a context
// of its own. done receives what Charge would return, once, on the
// caller's goroutine when no call was needed (or the coalescer is
// closed), else on a sender's, so it must be quick.
func (c *Coalescer) ChargeAsync(t ratelimit.Ticket, delivered int64, done func(error)) {
	c.settleAsync(opCharge, t, delivered, done)
}

// FinishAsync is Finish without waiting, as ChargeAsync is Charge: a
// request that has answered its client ends its accounting without a
// goroutine of its own.
func (c *Coalescer) FinishAsync(t ratelimit.Ticket, final int64, done func(error)) {
	c.settleAsync(opFinish, t, final, done)
}

func (c *Coalescer) settleAsync(op settleOp, t ratelimit.Ticket, tokens int64, done func(error)) {
	k, err := c.s.settleCall(op, t, tokens)
	if k == nil {
		done(err)
		return
	}
	err = c.c.Go(k, func(cmd *redis.Cmd, err error) {
		if err == nil {
			err = cmd.Err()
		}
		done(wrap(op.String(), err))
	})
	if err != nil {
		done(wrap(op.String(), err))
	}
}

// pipeliner is the optional ability of a client to send many commands in
// one round trip (*redis.Client and *redis.ClusterClient have it).
type pipeliner interface {
	Pipeline() redis.Pipeliner
}

// sendBatch runs calls as one pipeline (not a transaction: each script is
// atomic on its own, and one's failure leaves the others' answers).
// Answers and errors are in the commands; errs is all nil.
func (s *Store) sendBatch(ctx context.Context, calls []*call) ([]*redis.Cmd, []error) {
	cmds, errs := make([]*redis.Cmd, len(calls)), make([]error, len(calls))
	p, ok := s.rdb.(pipeliner)
	if !ok {
		for i, c := range calls {
			cmds[i] = c.script.Run(ctx, s.rdb, c.keys, c.args...)
		}
		return cmds, errs
	}
	pipe := p.Pipeline()
	for i, c := range calls {
		cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	// First use on this server (or after SCRIPT FLUSH): load the scripts
	// missing and run again the calls that found none (they did nothing).
	var again []int
	var loaded map[*redis.Script]error
	for i, cmd := range cmds {
		if !redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			continue
		}
		sc := calls[i].script
		err, done := loaded[sc]
		if !done {
			if loaded == nil {
				loaded = make(map[*redis.Script]error, 2)
			}
			err = sc.Load(ctx, s.rdb).Err()
			loaded[sc] = err
		}
		if err != nil {
			cmd.SetErr(err)
			continue
		}
		again = append(again, i)
	}
	if len(again) > 0 {
		pipe = p.Pipeline()
		for _, i := range again {
			cmds[i] = calls[i].script.EvalSha(ctx, pipe, calls[i].keys, calls[i].args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	return cmds, errs
}
