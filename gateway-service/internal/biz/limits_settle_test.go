package biz

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// recLimiter records the Charge and Finish calls it is told of. As a
// LimitQueue it answers them later, from goroutines of its own, until
// release is closed.
type recLimiter struct {
	mu      sync.Mutex
	calls   []string
	release chan struct{}
	fail    error
}

func (l *recLimiter) record(op string, t ratelimit.Ticket, n int64) {
	l.mu.Lock()
	l.calls = append(l.calls, fmt.Sprintf("%s %s %d", op, t.RequestID, n))
	l.mu.Unlock()
}

func (l *recLimiter) got() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := append([]string(nil), l.calls...)
	sort.Strings(c)
	return fmt.Sprint(c)
}

func (l *recLimiter) Admit(context.Context, ratelimit.Request) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, errors.New("not used")
}

func (l *recLimiter) Charge(_ context.Context, t ratelimit.Ticket, n int64) error {
	l.record("sync-charge", t, n)
	return l.fail
}

func (l *recLimiter) Finish(_ context.Context, t ratelimit.Ticket, n int64) error {
	l.record("sync-finish", t, n)
	return l.fail
}

type queueLimiter struct{ recLimiter }

func (l *queueLimiter) later(op string, t ratelimit.Ticket, n int64, done func(error)) {
	go func() {
		<-l.release
		l.record(op, t, n)
		done(l.fail)
	}()
}

func (l *queueLimiter) ChargeAsync(t ratelimit.Ticket, n int64, done func(error)) {
	l.later("charge", t, n, done)
}
func (l *queueLimiter) FinishAsync(t ratelimit.Ticket, n int64, done func(error)) {
	l.later("finish", t, n, done)
}

func openTicket(id string) ratelimit.Ticket {
	return ratelimit.Ticket{RequestID: id, Concurrency: []string{"key:k"}}
}

// TestSettleQueued: with a LimitQueue, a request's Finish of both tickets
// is queued (no direct call), WaitBackground waits for both answers, and
// a failed call is reported.
func TestSettleQueued(t *testing.T) {
	l := &queueLimiter{recLimiter{release: make(chan struct{}), fail: errors.New("down")}}
	var errs atomic.Int32
	r := &Relay{Limits: l, Now: time.Now, LimitErrors: func(op string, err error) { errs.Add(1) }}
	o := &Outcome{UsageSource: SourceNone}
	o.lim.client, o.lim.upstream = openTicket("r"), openTicket("r:up")
	r.finishLimits(o)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.WaitBackground(ctx); err == nil {
		t.Fatal("WaitBackground returned before the queued finishes were answered")
	}
	close(l.release)
	if err := r.WaitBackground(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := l.got(); got != "[finish r 0 finish r:up 0]" {
		t.Fatalf("calls %s", got)
	}
	if errs.Load() != 2 {
		t.Fatalf("%d failures reported, want 2", errs.Load())
	}
}

// TestStreamTickChargesOnceAtATime: a stream's charge is queued for both
// tickets; while it is unanswered no other is made, and once both are
// answered the next tick charges again.
func TestStreamTickChargesOnceAtATime(t *testing.T) {
	l := &queueLimiter{recLimiter{release: make(chan struct{})}}
	now := time.Unix(1_800_000_000, 0)
	r := &Relay{Limits: l, Now: func() time.Time { return now }}
	lim := &limitState{client: openTicket("r"), upstream: openTicket("r:up"), prompt: 10, counted: 10}
	r.streamTick(lim, nil) // 11 > 10: charges
	now = now.Add(time.Second)
	r.streamTick(lim, nil) // the first is unanswered: skipped
	close(l.release)
	if err := r.WaitBackground(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := l.got(); got != "[charge r 11 charge r:up 11]" {
		t.Fatalf("calls %s", got)
	}
	if atomic.LoadInt32(&lim.busy) != 0 {
		t.Fatal("still busy after both charges were answered")
	}
	now = now.Add(time.Second)
	r.streamTick(lim, nil)
	if err := r.WaitBackground(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := l.got(); got != "[charge r 11 charge r 13 charge r:up 11 charge r:up 13]" {
		t.Fatalf("calls %s", got)
	}
}

// TestSettleWithoutQueue: a Limiter without the queue is called directly,
// for open tickets only, on a goroutine WaitBackground waits for.
func TestSettleWithoutQueue(t *testing.T) {
	l := &recLimiter{}
	r := &Relay{Limits: l, Now: time.Now}
	o := &Outcome{UsageSource: SourceNone}
	o.lim.client = openTicket("r")
	r.finishLimits(o)
	if err := r.WaitBackground(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := l.got(); got != "[sync-finish r 0]" {
		t.Fatalf("calls %s", got)
	}
}
