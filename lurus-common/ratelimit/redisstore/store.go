// Package redisstore keeps the rate-limit state of package ratelimit in
// Redis, shared by every gateway replica, and changes it only with atomic
// Lua scripts: one round trip admits a request against all of its subjects
// and all three limits, one charges a stream's tokens, one finishes a
// request. A fourth, read-only, reports subjects' usage for display
// (billing's /me). A Coalescer in front of a Store sends the calls of
// concurrent requests as one pipeline, each still its own atomic script.
//
// Key schema (every key carries the one hash tag {rl}, because a request
// touches subjects of different users and upstream keys in one atomic
// script; in Redis Cluster all rate-limit state therefore lives in one
// slot, whose node serves one small script per request):
//
//	<prefix>rl:{rl}:w:<minute>:<subject>  HASH  r (requests admitted), t (tokens counted) in that window;
//	                                              expires a minute after the window ends
//	<prefix>rl:{rl}:c:<subject>           ZSET  request id -> lease expiry (unix ms): requests in flight;
//	                                              expired members are purged by the next admission
//	<prefix>rl:{rl}:q:<request id>        HASH  c (tokens counted in all), w (window last counted in),
//	                                              cw (counted there): an admitted request's accounting;
//	                                              lives until Finish or its lease ends
//
// The prefix must not contain '{' or '}' (the hash tag must be the first).
package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// DefaultLeaseTTL is how long a concurrency slot and a request's token
// accounting live without a Charge or Finish: long enough for any request
// that keeps charging, short enough that a crashed gateway's slots come
// back soon.
const DefaultLeaseTTL = 10 * time.Minute

// replayTTL is how long the record of a request with no open state (RPM
// only) is kept, so that a retried Admit counts nothing twice.
const replayTTL = 2 * time.Minute

// windowGrace keeps a window's counters a little past its end, for late
// charges from replicas whose clock is behind.
const windowGrace = time.Minute

//go:embed admit.lua
var admitSrc string

//go:embed settle.lua
var settleSrc string

//go:embed usage.lua
var usageSrc string

var (
	admitScript  = redis.NewScript(admitSrc)
	settleScript = redis.NewScript(settleSrc)
	usageScript  = redis.NewScript(usageSrc)
)

// Options tune a Store; the zero value is the production setting.
type Options struct {
	// LeaseTTL is the life of a concurrency slot and of a request's token
	// accounting without a Charge (default DefaultLeaseTTL).
	LeaseTTL time.Duration
	// Now is the clock (default time.Now); tests set it to cross windows
	// without waiting.
	Now func() time.Time
}

// Store reads and writes the rate-limit state. It is safe for concurrent
// use; any number of Stores (one per gateway replica) may share one Redis.
type Store struct {
	rdb    redis.Scripter
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// New returns a Store on rdb whose keys start with prefix.
func New(rdb redis.Scripter, prefix string, opt Options) (*Store, error) {
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("ratelimit: prefix %q must not contain braces", prefix)
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = DefaultLeaseTTL
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Store{rdb: rdb, prefix: prefix, ttl: opt.LeaseTTL, now: opt.Now}, nil
}

// WindowKey names subject's counters for window w.
func (s *Store) WindowKey(subject string, w int64) string {
	return s.prefix + "rl:{rl}:w:" + strconv.FormatInt(w, 10) + ":" + subject
}

// SlotsKey names subject's set of requests in flight.
func (s *Store) SlotsKey(subject string) string { return s.prefix + "rl:{rl}:c:" + subject }

func (s *Store) recordKey(requestID string) string { return s.prefix + "rl:{rl}:q:" + requestID }

// Admit checks r against every limit of every subject and, when all admit
// it, counts it in all of them, in one atomic round trip. A refusal is a
// Decision with Allowed false, not an error. When no subject has a limit
// it admits without touching Redis (the caller should not call it then).
func (s *Store) Admit(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error) {
	a, d, err := s.admitCall(r)
	if a == nil {
		return d, err
	}
	return a.decision(a.script.Run(ctx, s.rdb, a.keys, a.args...))
}

// Charge reports the running total of tokens t's request has delivered
// (input + output so far, not an increment): what exceeds everything the
// request has counted, its estimate included, counts in the current
// window. Since it is a total, a lost or repeated call is made good by the
// next. It also renews t's concurrency slots and
// accounting, so calling it with an unchanged total renews only. It makes
// no call when t holds no TPM or concurrency state.
func (s *Store) Charge(ctx context.Context, t ratelimit.Ticket, delivered int64) error {
	return s.settle(ctx, opCharge, t, delivered)
}

// Finish ends t's request: it trues the current window up to the final
// usage (input + output tokens; 0 when nothing ran, giving the whole
// reservation back), see the package ratelimit documentation, and frees
// t's concurrency slots, in one round trip. It is idempotent: a second call
// changes nothing. It makes no call when t holds no TPM or concurrency
// state.
func (s *Store) Finish(ctx context.Context, t ratelimit.Ticket, final int64) error {
	return s.settle(ctx, opFinish, t, final)
}

func (s *Store) settle(ctx context.Context, op settleOp, t ratelimit.Ticket, tokens int64) error {
	c, err := s.settleCall(op, t, tokens)
	if c == nil {
		return err
	}
	return wrap(op.String(), c.script.Run(ctx, s.rdb, c.keys, c.args...).Err())
}

// call is one script run, built by the caller's goroutine so that a
// coalescer's sender only sends it.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

// admission is an Admit call and what reading its answer needs.
type admission struct {
	call
	subjects []ratelimit.Subject
	t        ratelimit.Ticket
	reset    time.Duration
	tokens   int64
}

// admitCall validates r and builds its script call. It returns a nil call
// with the answer when there is nothing to ask Redis: r is invalid (the
// error), or no subject has a limit (admitted).
func (s *Store) admitCall(r ratelimit.Request) (*admission, ratelimit.Decision, error) {
	if err := r.Validate(); err != nil {
		return nil, ratelimit.Decision{}, err
	}
	now := s.now()
	w := ratelimit.WindowOf(now)
	reset := ratelimit.WindowEnd(w).Sub(now)
	t := ratelimit.Ticket{RequestID: r.ID, Window: w}
	subjects := make([]ratelimit.Subject, 0, len(r.Subjects))
	for _, sub := range r.Subjects {
		if !sub.Limits.Any() {
			continue
		}
		subjects = append(subjects, sub)
		if sub.Limits.TPM > 0 {
			t.TPM = append(t.TPM, sub.ID)
		}
		if sub.Limits.Concurrency > 0 {
			t.Concurrency = append(t.Concurrency, sub.ID)
		}
	}
	if len(subjects) == 0 {
		return nil, ratelimit.Decision{Allowed: true, Ticket: t}, nil
	}
	recTTL := replayTTL
	if t.Open() {
		recTTL = s.ttl
	}
	keys := make([]string, 0, 1+2*len(subjects))
	keys = append(keys, s.recordKey(r.ID))
	args := make([]any, 0, 7+3*len(subjects))
	args = append(args, r.ID, now.UnixMilli(), w, r.Tokens, now.Add(s.ttl).UnixMilli(),
		recTTL.Milliseconds(), (reset + windowGrace).Milliseconds())
	for _, sub := range subjects {
		keys = append(keys, s.WindowKey(sub.ID, w), s.SlotsKey(sub.ID))
		args = append(args, sub.Limits.RPM, sub.Limits.TPM, sub.Limits.Concurrency)
	}
	return &admission{call: call{script: admitScript, keys: keys, args: args},
		subjects: subjects, t: t, reset: reset, tokens: r.Tokens}, ratelimit.Decision{}, nil
}

// decision reads the answer of admit.lua.
func (a *admission) decision(cmd *redis.Cmd) (ratelimit.Decision, error) {
	res, err := cmd.Int64Slice()
	if err != nil {
		return ratelimit.Decision{}, wrap("admit", err)
	}
	if len(res) != 8 {
		return ratelimit.Decision{}, fmt.Errorf("ratelimit: admit returned %v", res)
	}
	reset := a.reset
	d := ratelimit.Decision{
		Requests:    ratelimit.Headroom{Limit: res[2], Remaining: res[3]},
		Tokens:      ratelimit.Headroom{Limit: res[4], Remaining: res[5]},
		Concurrency: ratelimit.Headroom{Limit: res[6], Remaining: max(res[6]-res[7], 0)},
	}
	if d.Requests.Limit > 0 {
		d.Requests.Reset = reset
	}
	if d.Tokens.Limit > 0 {
		d.Tokens.Reset = reset
	}
	kind := ratelimit.Kind(res[0])
	if kind == 0 {
		d.Allowed, d.Ticket = true, a.t
		return d, nil
	}
	i := res[1] - 1
	if i < 0 || int(i) >= len(a.subjects) {
		return ratelimit.Decision{}, fmt.Errorf("ratelimit: admit returned subject %d", res[1])
	}
	sub := a.subjects[i]
	d.Subject, d.Kind, d.RetryAfter = sub.ID, kind, reset
	switch kind {
	case ratelimit.RPM:
		d.Limit = sub.Limits.RPM
	case ratelimit.TPM:
		d.Limit = sub.Limits.TPM
		d.TooLarge = a.tokens > sub.Limits.TPM
	case ratelimit.Concurrency:
		d.Limit, d.RetryAfter = sub.Limits.Concurrency, time.Second
	}
	return d, nil
}

// settleOp is the mode of settle.lua.
type settleOp int

const (
	opCharge settleOp = 0
	opFinish settleOp = 1
)

func (op settleOp) String() string {
	if op == opFinish {
		return "finish"
	}
	return "charge"
}

// settleCall builds the script call of a Charge or Finish; it returns nil
// (and the error of a bad call) when there is nothing to ask Redis.
func (s *Store) settleCall(op settleOp, t ratelimit.Ticket, tokens int64) (*call, error) {
	if !t.Open() {
		return nil, nil
	}
	if t.RequestID == "" || tokens < 0 {
		return nil, fmt.Errorf("ratelimit: %s needs a request id and tokens >= 0", op)
	}
	now := s.now()
	w := ratelimit.WindowOf(now)
	keys := make([]string, 0, 1+len(t.TPM)+len(t.Concurrency))
	keys = append(keys, s.recordKey(t.RequestID))
	for _, sub := range t.TPM {
		keys = append(keys, s.WindowKey(sub, w))
	}
	for _, sub := range t.Concurrency {
		keys = append(keys, s.SlotsKey(sub))
	}
	winTTL := ratelimit.WindowEnd(w).Sub(now) + windowGrace
	return &call{script: settleScript, keys: keys, args: []any{t.RequestID, int(op), w, tokens,
		now.Add(s.ttl).UnixMilli(), s.ttl.Milliseconds(), winTTL.Milliseconds(), len(t.TPM)}}, nil
}

// Usage reads the current window's counters and the requests in flight of
// each subject, in one round trip and without changing anything (expired
// slots are not counted, and not purged either), for display: by the time
// the answer arrives another replica may have admitted more.
func (s *Store) Usage(ctx context.Context, subjects ...string) ([]ratelimit.Usage, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	now := s.now()
	w := ratelimit.WindowOf(now)
	keys := make([]string, 0, 2*len(subjects))
	for _, sub := range subjects {
		keys = append(keys, s.WindowKey(sub, w), s.SlotsKey(sub))
	}
	res, err := usageScript.Run(ctx, s.rdb, keys, now.UnixMilli()).Int64Slice()
	if err != nil {
		return nil, wrap("usage", err)
	}
	if len(res) != 3*len(subjects) {
		return nil, fmt.Errorf("ratelimit: usage returned %v", res)
	}
	out := make([]ratelimit.Usage, len(subjects))
	for i := range out {
		out[i] = ratelimit.Usage{Window: w, Requests: res[3*i], Tokens: res[3*i+1], InFlight: res[3*i+2]}
	}
	return out, nil
}

// wrap marks errors of an unreachable or unready Redis with
// ratelimit.ErrUnavailable. A reply error that is not about availability
// (a script bug, a wrong type) and a cancelled context are not marked: the
// first is a fault, the second means the caller is gone.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || !unavailable(err) {
		return fmt.Errorf("ratelimit: %s: %w", op, err)
	}
	return fmt.Errorf("ratelimit: %s: %w: %w", op, ratelimit.ErrUnavailable, err)
}

func unavailable(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return true // network, timeout, closed pool
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS"} {
		if strings.HasPrefix(re.Error(), p) {
			return true
		}
	}
	return false
}
