package biz

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// Limiter keeps the rate limits shared by every gateway replica
// (lurus-common/ratelimit/redisstore.Store); see package ratelimit for
// what each call counts.
type Limiter interface {
	Admit(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error)
	Charge(ctx context.Context, t ratelimit.Ticket, delivered int64) error
	Finish(ctx context.Context, t ratelimit.Ticket, final int64) error
}

// LimitQueue is an optional ability of a Limiter: taking Charge and Finish
// calls without the caller waiting (redisstore.Coalescer queues them for
// its next pipelined round trip), so that the end of a request and a
// stream's charges cost no goroutine each. done is called once with what
// the call would have returned, maybe on another goroutine, and must be
// quick.
type LimitQueue interface {
	ChargeAsync(t ratelimit.Ticket, delivered int64, done func(error))
	FinishAsync(t ratelimit.Ticket, final int64, done func(error))
}

// LimitConfig tunes how the relay applies rate limits.
type LimitConfig struct {
	// FailOpen admits requests without rate limits while the store is
	// unavailable; otherwise they are refused with 503
	// ADMISSION_UNAVAILABLE. The gateway sets it from
	// admission.fail_open_max_micros > 0, so limits and the money
	// admission follow one setting.
	FailOpen bool
	// ChargeEvery is how often, at most, a stream's delivered tokens are
	// looked at (default 100 ms); the store is called only when the
	// running total went past what the request has counted, or to renew
	// its slots (every RenewEvery).
	ChargeEvery time.Duration
	// RenewEvery renews a long stream's concurrency slots (default 1 min;
	// the store's lease is 10 min).
	RenewEvery time.Duration
	// Timeout bounds one store call (default 2 s).
	Timeout time.Duration
}

func (c LimitConfig) withDefaults() LimitConfig {
	if c.ChargeEvery <= 0 {
		c.ChargeEvery = 100 * time.Millisecond
	}
	if c.RenewEvery <= 0 {
		c.RenewEvery = time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	return c
}

// limitState is one admitted request's rate-limit accounting: the ticket
// of its key and user subjects, and that of the upstream key of the
// attempt being served.
type limitState struct {
	client   ratelimit.Ticket
	upstream ratelimit.Ticket
	// estimate is the tokens reserved at admission; prompt its prompt
	// part, the running total's floor while a stream runs.
	estimate, prompt int64
	// counted is the highest running total charged (estimate at first).
	counted int64
	// Stream progress, touched by the stream's goroutine only.
	units               int64
	nextLook, nextRenew time.Time
	busy                int32 // 1 while a charge is under way (atomic)
}

// open reports whether the request holds limit state the store must be
// told about when it ends.
func (l *limitState) open() bool { return l.client.Open() || l.upstream.Open() }

// Scopes of lurus_gateway_rate_limited_total.
const (
	scopeKey      = "key"
	scopeUser     = "user"
	scopeUpstream = "upstream"
)

// clientSubjects are the key and user subjects of a verified key with the
// limits in force. Billing holds a key's limits under its user's, and every
// request of the key counts in the user's subject too, so a key limit equal
// to its user's can never refuse first: it is left out (one subject fewer
// in the script), kind by kind.
func clientSubjects(ki *KeyInfo, dst []ratelimit.Subject) []ratelimit.Subject {
	u, k := ki.UserLimits, ki.KeyLimits
	own := func(key, user int64) int64 {
		if key > 0 && (user <= 0 || key < user) {
			return key
		}
		return 0
	}
	k = ratelimit.Limits{RPM: own(k.RPM, u.RPM), TPM: own(k.TPM, u.TPM), Concurrency: own(k.Concurrency, u.Concurrency)}
	if k.Any() {
		dst = append(dst, ratelimit.Subject{ID: ratelimit.KeySubject(ki.KeyID), Limits: k})
	}
	if u.Any() {
		dst = append(dst, ratelimit.Subject{ID: ratelimit.UserSubject(ki.UserID), Limits: u})
	}
	return dst
}

// admitLimits admits the request against its key's and user's limits
// (tokens: the hold's estimate). It makes no store call when neither has a
// limit. Admitted under a limit, the answer carries the x-ratelimit-*
// headers of the tightest one, and the writer returned keeps upstream's
// own x-ratelimit-* headers out; refused, the headers, Retry-After and a
// 429 (400 when the estimate alone exceeds a TPM limit) are the answer.
func (r *Relay) admitLimits(ctx context.Context, req *Request, w ClientWriter, o *Outcome, ki *KeyInfo, tokens, output int64) (ClientWriter, error) {
	o.lim.estimate, o.lim.prompt, o.lim.counted = tokens, max(tokens-output, 0), tokens
	var buf [2]ratelimit.Subject
	subs := clientSubjects(ki, buf[:0])
	if len(subs) == 0 || r.Limits == nil {
		return w, nil
	}
	d, err := r.admit(ctx, ratelimit.Request{ID: req.ID, Subjects: subs, Tokens: tokens})
	if err != nil {
		if errors.Is(err, ratelimit.ErrUnavailable) && r.LimitCfg.FailOpen {
			return w, nil // admitted without limits (admission.fail_open_max_micros > 0)
		}
		return w, limitsUnavailable(err)
	}
	setLimitHeaders(w, &d)
	if !d.Allowed {
		scope := scopeKey
		if strings.HasPrefix(d.Subject, "user:") {
			scope = scopeUser
		}
		r.Metrics.RateLimited(scope, d.Kind.String())
		return w, refusal(w, &d, scope, tokens)
	}
	o.lim.client = d.Ticket
	o.lim.nextRenew = r.Now().Add(r.LimitCfg.withDefaults().RenewEvery)
	return &limitWriter{ClientWriter: w}, nil
}

// admit calls the store with the configured timeout.
func (r *Relay) admit(ctx context.Context, rq ratelimit.Request) (ratelimit.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, r.LimitCfg.withDefaults().Timeout)
	defer cancel()
	return r.Limits.Admit(ctx, rq)
}

func limitsUnavailable(err error) error {
	return apperr.Wrap(err, apperr.ReasonAdmissionDown, "admission is unavailable; retry later")
}

// refusal sets Retry-After (whole seconds, rounded up, and OpenAI's
// retry-after-ms) and returns the error the client sees.
func refusal(w ClientWriter, d *ratelimit.Decision, scope string, estimate int64) error {
	whose := "this API key's"
	switch scope {
	case scopeUser:
		whose = "this account's"
	case scopeUpstream:
		whose = "every upstream's"
	}
	if d.TooLarge {
		return apperr.Newf(apperr.ReasonExceedsTPM,
			"this request may use up to %d tokens (prompt + max output tokens), more than %s limit of %d tokens per minute; lower max_tokens or shorten the prompt",
			estimate, whose, d.Limit)
	}
	setRetryAfter(w, d.RetryAfter)
	secs := retryAfterSeconds(d.RetryAfter)
	switch d.Kind {
	case ratelimit.TPM:
		return apperr.Newf(apperr.ReasonRateLimitedTPM, "rate limit reached: %s limit of %d tokens per minute; retry in %d s", whose, d.Limit, secs)
	case ratelimit.Concurrency:
		return apperr.Newf(apperr.ReasonConcurrencyLimited, "concurrency limit reached: %s limit of %d requests in flight; retry when one ends", whose, d.Limit)
	default:
		return apperr.Newf(apperr.ReasonRateLimitedRPM, "rate limit reached: %s limit of %d requests per minute; retry in %d s", whose, d.Limit, secs)
	}
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int64 { return max(int64((d+time.Second-1)/time.Second), 1) }

// setRetryAfter sets Retry-After (whole seconds, every SDK reads it) and
// retry-after-ms (which the OpenAI and Anthropic SDKs prefer).
func setRetryAfter(w ClientWriter, d time.Duration) {
	w.SetHeader("Retry-After", strconv.FormatInt(retryAfterSeconds(d), 10))
	w.SetHeader("retry-after-ms", strconv.FormatInt(max(d.Milliseconds(), 1), 10))
}

// limitHeaders are the names of OpenAI's x-ratelimit-* headers (limit,
// remaining, reset) for requests and for tokens, spelt out so that no
// request builds them.
var limitHeaders = [2][3]string{
	{"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"},
	{"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
}

// setLimitHeaders sets OpenAI's x-ratelimit-* headers for the tightest
// RPM and TPM in force (none for a kind without a limit).
func setLimitHeaders(w ClientWriter, d *ratelimit.Decision) {
	for i, h := range [2]ratelimit.Headroom{d.Requests, d.Tokens} {
		if h.Limit <= 0 {
			continue
		}
		names := &limitHeaders[i]
		w.SetHeader(names[0], strconv.FormatInt(h.Limit, 10))
		w.SetHeader(names[1], strconv.FormatInt(h.Remaining, 10))
		w.SetHeader(names[2], resetValue(h.Reset))
	}
}

// resetValue renders a reset the way OpenAI does ("1s", "6m0s", "59ms"):
// a Go duration, rounded up to the millisecond below a second and to the
// second above.
func resetValue(d time.Duration) string {
	if d < time.Second {
		return (max((d+time.Millisecond-1)/time.Millisecond, 1) * time.Millisecond).String()
	}
	return (time.Duration(retryAfterSeconds(d)) * time.Second).String()
}

// limitWriter is the client's writer of a request answered under a limit
// of the gateway's own: upstream's x-ratelimit-* headers describe the
// upstream account, not the caller, and would overwrite the gateway's.
type limitWriter struct{ ClientWriter }

func (w *limitWriter) SetHeader(k, v string) {
	if len(k) > len("x-ratelimit-") && strings.EqualFold(k[:len("x-ratelimit-")], "x-ratelimit-") {
		return
	}
	w.ClientWriter.SetHeader(k, v)
}

// upstreamSat collects the refusals of upstream keys at their limits
// while a request's candidates are tried.
type upstreamSat struct {
	refused bool
	d       ratelimit.Decision // the refusal with the shortest wait
}

func (s *upstreamSat) add(d ratelimit.Decision) {
	if !s.refused || d.RetryAfter < s.d.RetryAfter {
		s.d = d
	}
	s.refused = true
}

// err is the answer when every upstream key was at its limit: 429 with
// the shortest wait, naming no provider.
func (s *upstreamSat) err(w ClientWriter) error {
	s.d.TooLarge = false // another key may have room for it later
	err := refusal(w, &s.d, scopeUpstream, 0)
	var ae *apperr.Error
	if errors.As(err, &ae) {
		ae.Message = fmt.Sprintf("every upstream that serves this model is at its rate limit; retry in %d s", retryAfterSeconds(s.d.RetryAfter))
	}
	return err
}

// admitUpstream admits an attempt against the RPM and TPM of candidate
// c's upstream key. When that key is at its limit, the provider's other
// keys (breaker closed) are tried in turn and the first with room
// replaces it in c, the way routing skips an open breaker. It reports
// false when none has room (the refusals are added to sat). Keys without
// limits cost no store call.
func (r *Relay) admitUpstream(ctx context.Context, req *Request, o *Outcome, c *Candidate, sat *upstreamSat) (bool, error) {
	if !c.Key.Limits.Any() || r.Limits == nil {
		return true, nil
	}
	keys := c.Provider.Keys
	start := -1
	for i, k := range keys {
		if k == c.Key {
			start = i
		}
	}
	for j := 0; j < len(keys); j++ {
		k := c.Key
		if j > 0 {
			if start < 0 {
				break
			}
			k = keys[(start+j)%len(keys)]
			if k == c.Key || !k.Breaker.Available() {
				continue
			}
		}
		if !k.Limits.Any() {
			c.Key = k
			return true, nil
		}
		d, err := r.admit(ctx, ratelimit.Request{ID: req.ID + ":" + k.ID,
			Subjects: []ratelimit.Subject{{ID: k.limitSubject(), Limits: k.Limits}}, Tokens: o.lim.estimate})
		if err != nil {
			if errors.Is(err, ratelimit.ErrUnavailable) && r.LimitCfg.FailOpen {
				c.Key = k
				return true, nil
			}
			return false, limitsUnavailable(err)
		}
		r.Metrics.UpstreamSaturation(c.Provider.ID, saturation(&d))
		if d.Allowed {
			c.Key = k
			o.lim.upstream = d.Ticket
			if o.lim.nextRenew.IsZero() {
				o.lim.nextRenew = r.Now().Add(r.LimitCfg.withDefaults().RenewEvery)
			}
			return true, nil
		}
		r.Metrics.RateLimited(scopeUpstream, d.Kind.String())
		sat.add(d)
	}
	return false, nil
}

// saturation is the used share of the tighter of a decision's RPM and TPM.
func saturation(d *ratelimit.Decision) float64 {
	used := func(h ratelimit.Headroom) float64 {
		if h.Limit <= 0 {
			return 0
		}
		return float64(h.Limit-h.Remaining) / float64(h.Limit)
	}
	return max(used(d.Requests), used(d.Tokens))
}

// dropUpstream finishes the ticket of an attempt that was not served
// (upstream failed, or the attempt was not sent): nothing was delivered,
// so its token reservation is given back.
func (r *Relay) dropUpstream(o *Outcome) {
	if !o.lim.upstream.Open() {
		return
	}
	t := o.lim.upstream
	o.lim.upstream = ratelimit.Ticket{}
	r.settle(true, t, ratelimit.Ticket{}, 0, nil)
}

// finishLimits ends the request's accounting with its final usage (0 when
// nothing was delivered), on a context of its own: it runs after the
// answer, also for failed and cancelled requests, and frees the
// concurrency slots.
func (r *Relay) finishLimits(o *Outcome) {
	l := &o.lim
	if !l.open() {
		return
	}
	var final int64
	if o.UsageSource != SourceNone {
		final = o.Usage.Total()
	}
	r.settle(true, l.client, l.upstream, final, nil)
}

// settle tells the store the Finish (else the Charge) of the open tickets
// among a and b with tokens, without waiting: queued when the store is a
// LimitQueue, else on a goroutine of its own. after, when set, runs once
// both calls are done. WaitBackground waits for them.
func (r *Relay) settle(finish bool, a, b ratelimit.Ticket, tokens int64, after func()) {
	op := "charge"
	if finish {
		op = "finish"
	}
	q, ok := r.Limits.(LimitQueue)
	if !ok {
		r.background(func(ctx context.Context) {
			if after != nil {
				defer after()
			}
			for _, t := range [2]ratelimit.Ticket{a, b} {
				if !t.Open() {
					continue
				}
				if finish {
					r.logLimitErr(op, r.Limits.Finish(ctx, t, tokens))
				} else {
					r.logLimitErr(op, r.Limits.Charge(ctx, t, tokens))
				}
			}
		})
		return
	}
	var n int32
	for _, t := range [2]ratelimit.Ticket{a, b} {
		if t.Open() {
			n++
		}
	}
	if n == 0 {
		if after != nil {
			after()
		}
		return
	}
	left := new(atomic.Int32)
	left.Store(n)
	r.bg.Add(int(n))
	done := func(err error) {
		r.logLimitErr(op, err)
		if left.Add(-1) == 0 && after != nil {
			after()
		}
		r.bg.Done()
	}
	call := q.ChargeAsync
	if finish {
		call = q.FinishAsync
	}
	for _, t := range [2]ratelimit.Ticket{a, b} {
		if t.Open() {
			call(t, tokens, done)
		}
	}
}

// background runs f on a detached context bounded by the store timeout;
// WaitBackground waits for it at shutdown.
func (r *Relay) background(f func(ctx context.Context)) {
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.LimitCfg.withDefaults().Timeout)
		defer cancel()
		f(ctx)
	}()
}

// WaitBackground waits for the rate-limit calls still under way (the
// Finish of requests that just ended) or until ctx ends.
func (r *Relay) WaitBackground(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.bg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logLimitErr reports a failed Charge or Finish. The request was admitted
// already; a lost call costs nothing permanent (slots expire, windows
// pass), so it is only counted.
func (r *Relay) logLimitErr(op string, err error) {
	if err != nil && r.LimitErrors != nil {
		r.LimitErrors(op, err)
	}
}

// streamTick is called as a stream delivers a unit: at most every
// ChargeEvery it takes the running total of tokens (prompt, and output so
// far: upstream's own cumulative counts when its stream carries them,
// else one token per unit delivered) and charges it when it went past
// what the request counted, or renews the request's slots every
// RenewEvery. A stream is never cut for its TPM: what it delivers beyond
// its estimate counts in the current window, and the next request waits.
func (r *Relay) streamTick(l *limitState, so func() (Usage, bool)) {
	l.units++
	now := r.Now()
	if now.Before(l.nextLook) {
		return
	}
	l.nextLook = now.Add(r.LimitCfg.withDefaults().ChargeEvery)
	total := l.prompt + l.units
	if so != nil {
		if u, ok := so(); ok {
			total = max(u.Prompt, l.prompt) + max(u.Completion, l.units)
		}
	}
	renew := !now.Before(l.nextRenew)
	if total <= l.counted && !renew {
		return
	}
	if !atomic.CompareAndSwapInt32(&l.busy, 0, 1) {
		return // the previous charge is still under way; the next look catches up
	}
	l.nextRenew = now.Add(r.LimitCfg.withDefaults().RenewEvery)
	l.counted = max(l.counted, total)
	r.settle(false, l.client, l.upstream, total, func() { atomic.StoreInt32(&l.busy, 0) })
}
