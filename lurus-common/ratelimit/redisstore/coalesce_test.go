package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/coalesce"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
	"github.com/lurus-switch/lurus-switch/lurus-common/requestid"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// trips counts a client's round trips to Redis that run scripts (a single
// command or a whole pipeline each) and the script calls in them, and can
// slow the first one down so that calls pile up behind it.
type trips struct {
	n, scripts atomic.Int64
	slowFirst  time.Duration
}

func (h *trips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *trips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.trip([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *trips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trip(cmds)
		return next(ctx, cmds)
	}
}

func (h *trips) trip(cmds []redis.Cmder) {
	scripts := 0
	for _, c := range cmds {
		if n := c.Name(); n == "evalsha" || n == "eval" {
			scripts++
		}
	}
	if scripts == 0 {
		return // connection set-up, script loads
	}
	h.scripts.Add(int64(scripts))
	if h.n.Add(1) == 1 && h.slowFirst > 0 {
		time.Sleep(h.slowFirst)
	}
}

// counted returns a Store on a client of its own whose round trips h
// counts.
func counted(t *testing.T, h *trips) *Store {
	t.Helper()
	re := testenv.Redis(t)
	cl := redis.NewClient(&redis.Options{Addr: re.Addr, PoolSize: 4})
	t.Cleanup(func() { cl.Close() })
	cl.AddHook(h)
	s, err := New(cl, re.Prefix, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCoalescerSharesRoundTrips: N concurrent admissions take far fewer
// than N round trips, and the limit still admits exactly its number.
func TestCoalescerSharesRoundTrips(t *testing.T) {
	const n, limit = 64, 40
	h := &trips{slowFirst: 50 * time.Millisecond}
	s := counted(t, h)
	c := NewCoalescer(s, coalesce.Options{Senders: 2, MaxBatch: 16})
	defer c.Close()
	k := sub("key:k", limit, 0, 2*n)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := c.Admit(context.Background(), ratelimit.Request{ID: fmt.Sprint("r", i), Subjects: []ratelimit.Subject{k}})
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				admitted.Add(1)
				if err := c.Finish(context.Background(), d.Ticket, 0); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if a := admitted.Load(); a != limit {
		t.Fatalf("admitted %d, want exactly %d", a, limit)
	}
	// n admissions and `limit` finishes, one script each; a script load
	// may add a trip and a retry.
	rt, calls := h.n.Load(), h.scripts.Load()
	t.Logf("%d script calls in %d round trips", calls, rt)
	if rt >= (n+limit)/4 {
		t.Fatalf("%d round trips for %d calls: not coalesced", rt, n+limit)
	}
	if n, err := s.rdb.(*redis.Client).ZCard(context.Background(), s.SlotsKey("key:k")).Result(); err != nil || n != 0 {
		t.Fatalf("%d slots left (%v)", n, err)
	}
}

// TestCoalescerLoneCallAtOnce: a call alone goes out in a round trip of
// its own at once, not after a gathering delay.
func TestCoalescerLoneCallAtOnce(t *testing.T) {
	h := &trips{}
	c := NewCoalescer(counted(t, h), coalesce.Options{Senders: 1, MaxBatch: 64})
	defer c.Close()
	k := sub("key:k", 1000, 0, 0)
	admit(t, c, "warm", 0, k) // loads the script if this server lacks it
	before := h.n.Load()
	for i := 0; i < 5; i++ {
		start := time.Now()
		admit(t, c, fmt.Sprint("r", i), 0, k)
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Fatalf("a lone admission took %v", d)
		}
	}
	if got := h.n.Load() - before; got != 5 {
		t.Fatalf("%d round trips for 5 lone calls, want 5", got)
	}
}

// TestCoalescerAsync: FinishAsync and ChargeAsync do what Finish and
// Charge do and report through done; after Close every call is refused
// as unavailable and done still hears of it.
func TestCoalescerAsync(t *testing.T) {
	st, _, re := replicas(t, direct, 1)
	c := NewCoalescer(st[0].st, coalesce.Options{})
	s := replica{limiter: c, st: st[0].st}
	k := sub("key:k", 0, 1000, 1)
	d := admit(t, s, "a", 100, k)
	wait := func(f func(done func(error))) error {
		t.Helper()
		ch := make(chan error, 1)
		f(func(err error) { ch <- err })
		select {
		case err := <-ch:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("done never called")
			return nil
		}
	}
	if err := wait(func(done func(error)) { c.ChargeAsync(d.Ticket, 300, done) }); err != nil {
		t.Fatal(err)
	}
	if got := windowTokens(t, re, s, "key:k", ratelimit.WindowOf(t0)); got != 300 {
		t.Fatalf("window counts %d after a charge of 300", got)
	}
	if err := wait(func(done func(error)) { c.FinishAsync(d.Ticket, 250, done) }); err != nil {
		t.Fatal(err)
	}
	if got := slotMembers(t, re, s, "key:k"); got != "[]" {
		t.Fatalf("slots %s after finish", got)
	}
	if err := wait(func(done func(error)) { c.FinishAsync(ratelimit.Ticket{}, 0, done) }); err != nil {
		t.Fatalf("a ticket holding nothing: %v", err)
	}
	c.Close()
	if err := wait(func(done func(error)) { c.FinishAsync(d.Ticket, 0, done) }); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("finish after Close: %v", err)
	}
	if _, err := c.Admit(context.Background(), ratelimit.Request{ID: "b", Subjects: []ratelimit.Subject{k}}); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("admit after Close: %v", err)
	}
}

// TestBatchLoadsMissingScripts: a batch whose script the server does not
// hold yet loads it and runs those calls again, once; the calls that did
// run are not repeated.
func TestBatchLoadsMissingScripts(t *testing.T) {
	h := &trips{}
	s := counted(t, h)
	// A script no server has seen: it counts its runs in a key.
	key := s.prefix + "batchtest:" + requestid.New()
	fresh := redis.NewScript(fmt.Sprintf("-- %s\nreturn redis.call('INCR', KEYS[1])", requestid.New()))
	known := redis.NewScript("return 7")
	if err := known.Load(context.Background(), s.rdb).Err(); err != nil {
		t.Fatal(err)
	}
	calls := []*call{{script: fresh, keys: []string{key}}, {script: known}, {script: fresh, keys: []string{key}}}
	cmds, errs := s.sendBatch(context.Background(), calls)
	for i, c := range cmds {
		if errs[i] != nil || c.Err() != nil {
			t.Fatalf("call %d: %v %v", i, errs[i], c.Err())
		}
	}
	if a, b, c := cmds[0].Val(), cmds[1].Val(), cmds[2].Val(); fmt.Sprint(a, b, c) != "1 7 2" {
		t.Fatalf("answers %v %v %v, want 1 7 2", a, b, c)
	}
	// one pipeline of three, then (after the load) one of the two that
	// found no script
	if rt, n := h.n.Load(), h.scripts.Load(); rt != 2 || n != 5 {
		t.Fatalf("%d script calls in %d round trips, want 5 in 2", n, rt)
	}
	_ = s.rdb.(*redis.Client).Del(context.Background(), key)
}

// TestCoalescerRedisDownQueued: with Redis not answering, calls queued
// behind a stuck batch all come back as ErrUnavailable once the client's
// read timeout ends each batch, rather than hanging.
func TestCoalescerRedisDownQueued(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	cl := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, ReadTimeout: 200 * time.Millisecond})
	defer cl.Close()
	st, err := New(cl, "x:", Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCoalescer(st, coalesce.Options{Senders: 1, MaxBatch: 4})
	defer c.Close()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Admit(context.Background(), ratelimit.Request{ID: fmt.Sprint("r", i), Subjects: []ratelimit.Subject{sub("key:k", 1, 0, 0)}})
			if !errors.Is(err, ratelimit.ErrUnavailable) {
				t.Errorf("admit %d: %v, want ErrUnavailable", i, err)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("10 calls in at most 4 batches took %v with a 200 ms read timeout", d)
	}
}
