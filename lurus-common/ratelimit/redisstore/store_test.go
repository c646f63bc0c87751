package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/coalesce"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// clock is a settable clock shared by the replicas of one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// t0 is ten seconds into a window (1_800_000_000 is a whole minute).
var t0 = time.Unix(1_800_000_010, 0)

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// limiter is what a gateway calls: a Store, or a Coalescer over one.
type limiter interface {
	Admit(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error)
	Charge(ctx context.Context, t ratelimit.Ticket, delivered int64) error
	Finish(ctx context.Context, t ratelimit.Ticket, final int64) error
}

// via is how a test's calls reach a Store: directly or through a
// Coalescer. Every test in the table of TestStore runs both ways.
type via struct {
	name string
	wrap func(t *testing.T, s *Store) limiter
}

var (
	direct    = via{"direct", func(_ *testing.T, s *Store) limiter { return s }}
	coalesced = via{"coalesced", func(t *testing.T, s *Store) limiter {
		c := NewCoalescer(s, coalesce.Options{Senders: 2, MaxBatch: 16, Timeout: 5 * time.Second})
		t.Cleanup(c.Close)
		return c
	}}
)

// replica is one gateway's limits: calls go via the test's way, keys are
// named by the Store.
type replica struct {
	limiter
	st *Store
}

func (r replica) WindowKey(subject string, w int64) string { return r.st.WindowKey(subject, w) }
func (r replica) SlotsKey(subject string) string           { return r.st.SlotsKey(subject) }

func (r replica) Usage(ctx context.Context, subjects ...string) ([]ratelimit.Usage, error) {
	return r.st.Usage(ctx, subjects...)
}

func (v via) replica(t *testing.T, s *Store) replica { return replica{limiter: v.wrap(t, s), st: s} }

// TestStore runs every test of the store both directly and through a
// Coalescer: coalescing must change no answer.
func TestStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, v via)
	}{
		{"AdmitAllOrNone", testAdmitAllOrNone},
		{"HeadroomIsTightest", testHeadroomIsTightest},
		{"RefusalPrefersWindowLimit", testRefusalPrefersWindowLimit},
		{"TooLarge", testTooLarge},
		{"AdmitReplayCountsOnce", testAdmitReplayCountsOnce},
		{"NoLimitsNoRedis", testNoLimitsNoRedis},
		{"RPMExactAcrossReplicas", testRPMExactAcrossReplicas},
		{"ConcurrencyNeverExceededAcrossReplicas", testConcurrencyNeverExceededAcrossReplicas},
		{"TPMWithStreamsInFlight", testTPMWithStreamsInFlight},
		{"TPMAccounting", testTPMAccounting},
		{"FinishIsIdempotent", testFinishIsIdempotent},
		{"ExpiredSlotsArePurged", testExpiredSlotsArePurged},
		{"RedisDown", testRedisDown},
		{"ReplyErrorIsNotUnavailable", testReplyErrorIsNotUnavailable},
		{"Usage", testUsage},
		{"UsageRedisDown", testUsageRedisDown},
	}
	for _, v := range []via{direct, coalesced} {
		for _, tc := range tests {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) { tc.fn(t, v) })
		}
	}
}

// replicas returns n Stores, each on its own Redis connection pool (like n
// gateway processes), sharing one key prefix and one clock, reached via v.
func replicas(t *testing.T, v via, n int) ([]replica, *clock, testenv.RedisEnv) {
	t.Helper()
	re := testenv.Redis(t)
	clk := &clock{t: t0}
	stores := make([]replica, n)
	for i := range stores {
		cl := re.Client
		if i > 0 {
			cl = redis.NewClient(&redis.Options{Addr: re.Addr, PoolSize: 16})
			t.Cleanup(func() { cl.Close() })
		}
		s, err := New(cl, re.Prefix, Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = v.replica(t, s)
	}
	return stores, clk, re
}

func admit(t *testing.T, s limiter, id string, tokens int64, subs ...ratelimit.Subject) ratelimit.Decision {
	t.Helper()
	d, err := s.Admit(context.Background(), ratelimit.Request{ID: id, Tokens: tokens, Subjects: subs})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sub(id string, rpm, tpm, conc int64) ratelimit.Subject {
	return ratelimit.Subject{ID: id, Limits: ratelimit.Limits{RPM: rpm, TPM: tpm, Concurrency: conc}}
}

func windowTokens(t *testing.T, re testenv.RedisEnv, s replica, subject string, w int64) int64 {
	t.Helper()
	v, err := re.Client.HGet(context.Background(), s.WindowKey(subject, w), "t").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return v
}

// slotMembers lists subject's requests in flight, by lease expiry.
func slotMembers(t *testing.T, re testenv.RedisEnv, s replica, subject string) string {
	t.Helper()
	m, err := re.Client.ZRange(context.Background(), s.SlotsKey(subject), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(m)
}

// testAdmitAllOrNone: a request refused by one subject counts in none.
func testAdmitAllOrNone(t *testing.T, v via) {
	st, _, re := replicas(t, v, 1)
	s := st[0]
	key, user := sub("key:k", 0, 0, 0), sub("user:u", 2, 0, 0)
	key.Limits.RPM = 10
	for i := 0; i < 2; i++ {
		if d := admit(t, s, fmt.Sprint("r", i), 0, key, user); !d.Allowed {
			t.Fatalf("request %d refused: %+v", i, d)
		}
	}
	d := admit(t, s, "r2", 0, key, user)
	if d.Allowed || d.Subject != "user:u" || d.Kind != ratelimit.RPM || d.Limit != 2 || d.RetryAfter != 50*time.Second {
		t.Fatalf("third request: %+v", d)
	}
	if d.Requests != (ratelimit.Headroom{Limit: 2, Remaining: 0, Reset: 50 * time.Second}) {
		t.Fatalf("headroom on refusal: %+v", d.Requests)
	}
	n, err := re.Client.HGet(context.Background(), s.WindowKey("key:k", ratelimit.WindowOf(t0)), "r").Int64()
	if err != nil || n != 2 {
		t.Fatalf("key counted %d (%v) requests, want 2: the refused one must count nowhere", n, err)
	}
}

// testHeadroomIsTightest: the x-ratelimit-* figures are those of the limit
// with the fewest remaining.
func testHeadroomIsTightest(t *testing.T, v via) {
	st, clk, _ := replicas(t, v, 1)
	clk.Add(15 * time.Second)
	d := admit(t, st[0], "r", 300, sub("key:k", 100, 1000, 0), sub("user:u", 5, 10000, 4), sub("upkey:p", 0, 0, 2))
	if !d.Allowed {
		t.Fatalf("refused: %+v", d)
	}
	want := ratelimit.Decision{
		Allowed:     true,
		Requests:    ratelimit.Headroom{Limit: 5, Remaining: 4, Reset: 35 * time.Second},
		Tokens:      ratelimit.Headroom{Limit: 1000, Remaining: 700, Reset: 35 * time.Second},
		Concurrency: ratelimit.Headroom{Limit: 2, Remaining: 1},
	}
	d.Ticket = ratelimit.Ticket{}
	if fmt.Sprint(d) != fmt.Sprint(want) {
		t.Fatalf("decision\n%+v\nwant\n%+v", d, want)
	}
}

// testRefusalPrefersWindowLimit: when a concurrency limit and a window
// limit both refuse, the window limit (the longer wait) is reported.
func testRefusalPrefersWindowLimit(t *testing.T, v via) {
	st, _, _ := replicas(t, v, 1)
	s := st[0]
	a, b := sub("key:k", 0, 0, 1), sub("user:u", 1, 0, 0)
	admit(t, s, "r1", 0, a, b)
	d := admit(t, s, "r2", 0, a, b)
	if d.Allowed || d.Kind != ratelimit.RPM || d.Subject != "user:u" {
		t.Fatalf("got %+v, want the user's RPM", d)
	}
	d = admit(t, s, "r3", 0, a)
	if d.Allowed || d.Kind != ratelimit.Concurrency || d.RetryAfter != time.Second {
		t.Fatalf("got %+v, want concurrency with a one-second retry", d)
	}
}

func testTooLarge(t *testing.T, v via) {
	st, _, _ := replicas(t, v, 1)
	d := admit(t, st[0], "r", 1001, sub("key:k", 0, 1000, 0))
	if d.Allowed || d.Kind != ratelimit.TPM || !d.TooLarge {
		t.Fatalf("got %+v", d)
	}
	if d := admit(t, st[0], "r2", 1000, sub("key:k", 0, 1000, 0)); !d.Allowed {
		t.Fatalf("estimate equal to the limit refused: %+v", d)
	}
}

// testAdmitReplayCountsOnce: retrying Admit with the same request id (a
// lost reply) counts nothing twice.
func testAdmitReplayCountsOnce(t *testing.T, v via) {
	st, _, re := replicas(t, v, 1)
	s := st[0]
	k := sub("key:k", 10, 1000, 2)
	for i := 0; i < 3; i++ {
		if d := admit(t, s, "same", 100, k); !d.Allowed || d.Requests.Remaining != 9 || d.Tokens.Remaining != 900 {
			t.Fatalf("admit %d: %+v", i, d)
		}
	}
	if n := re.Client.ZCard(context.Background(), s.SlotsKey("key:k")).Val(); n != 1 {
		t.Fatalf("%d slots held, want 1", n)
	}
}

// testNoLimitsNoRedis: a request without limits is admitted with no call
// to Redis at all (the store's client points at nothing).
func testNoLimitsNoRedis(t *testing.T, v via) {
	cl := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer cl.Close()
	st, err := New(cl, "x:", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := v.replica(t, st)
	r := ratelimit.Request{ID: "r", Tokens: 5, Subjects: []ratelimit.Subject{{ID: "key:k"}, {ID: "user:u"}}}
	if r.Limited() {
		t.Fatal("Limited() true without limits")
	}
	d, err := s.Admit(context.Background(), r)
	if err != nil || !d.Allowed || d.Ticket.Open() {
		t.Fatalf("admit: %+v %v", d, err)
	}
	if err := s.Charge(context.Background(), d.Ticket, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(context.Background(), d.Ticket, 10); err != nil {
		t.Fatal(err)
	}
}

// hammer runs n goroutines per replica, each calling fn with its replica
// and a name unique in the call, and waits for all of them.
func hammer(st []replica, n int, fn func(s replica, name string)) {
	var wg sync.WaitGroup
	for r, s := range st {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fn(s, fmt.Sprintf("r%d-%d", r, i))
			}()
		}
	}
	wg.Wait()
}

// testRPMExactAcrossReplicas: two replicas hammering one key admit exactly
// L requests per window in total, and L again in the next window.
func testRPMExactAcrossReplicas(t *testing.T, v via) {
	const limit, perReplica = 37, 100
	st, clk, _ := replicas(t, v, 2)
	k := sub("key:k", limit, 0, 0)
	for round := 0; round < 2; round++ {
		var admitted atomic.Int32
		hammer(st, perReplica, func(s replica, name string) {
			d, err := s.Admit(context.Background(), ratelimit.Request{ID: fmt.Sprint("w", round, name), Subjects: []ratelimit.Subject{k}})
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				admitted.Add(1)
			} else if d.Kind != ratelimit.RPM || d.RetryAfter != 50*time.Second {
				t.Errorf("refusal %+v", d)
			}
		})
		if n := admitted.Load(); n != limit {
			t.Fatalf("window %d admitted %d, want exactly %d", round, n, limit)
		}
		clk.Add(time.Minute)
	}
}

// testConcurrencyNeverExceededAcrossReplicas: two replicas never have more
// than C requests in flight on one subject between them.
func testConcurrencyNeverExceededAcrossReplicas(t *testing.T, v via) {
	const limit = 3
	st, _, re := replicas(t, v, 2)
	k := sub("user:u", 0, 0, limit)
	var inflight, peak, admitted atomic.Int32
	hammer(st, 6, func(s replica, name string) {
		for i := 0; i < 15; i++ {
			ctx := context.Background()
			d, err := s.Admit(ctx, ratelimit.Request{ID: fmt.Sprint(name, "-", i), Subjects: []ratelimit.Subject{k}})
			if err != nil {
				t.Error(err)
				return
			}
			if !d.Allowed {
				time.Sleep(time.Millisecond)
				continue
			}
			admitted.Add(1)
			n := inflight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(2 * time.Millisecond)
			inflight.Add(-1)
			if err := s.Finish(ctx, d.Ticket, 0); err != nil {
				t.Error(err)
			}
		}
	})
	if p := peak.Load(); p > limit || p == 0 {
		t.Fatalf("peak in flight %d, want 1..%d", p, limit)
	}
	if admitted.Load() < limit {
		t.Fatalf("only %d admitted", admitted.Load())
	}
	if n := re.Client.ZCard(context.Background(), st[0].SlotsKey("user:u")).Val(); n != 0 {
		t.Fatalf("%d slots left after every request finished", n)
	}
}

// testTPMWithStreamsInFlight: two replicas admit streams that deliver more
// than their estimate while others are being admitted. No admission ever
// sees the window over its limit, the streams are not cut, every token is
// counted exactly once, and the next request waits for the window.
func testTPMWithStreamsInFlight(t *testing.T, v via) {
	const limit, est, final, perReplica = 10_000, 100, 150, 80
	st, clk, re := replicas(t, v, 2)
	k := sub("key:k", 0, limit, 0)
	w := ratelimit.WindowOf(t0)
	var admitted atomic.Int64
	hammer(st, perReplica, func(s replica, name string) {
		ctx := context.Background()
		d, err := s.Admit(ctx, ratelimit.Request{ID: name, Tokens: est, Subjects: []ratelimit.Subject{k}})
		if err != nil {
			t.Error(err)
			return
		}
		if !d.Allowed {
			if d.Kind != ratelimit.TPM || d.Tokens.Remaining >= est {
				t.Errorf("refused with room: %+v", d)
			}
			return
		}
		admitted.Add(1)
		for _, delivered := range []int64{50, 100, 130, final} {
			if err := s.Charge(ctx, d.Ticket, delivered); err != nil {
				t.Error(err)
			}
		}
		if err := s.Finish(ctx, d.Ticket, final); err != nil {
			t.Error(err)
		}
	})
	n := admitted.Load()
	if n == 0 || n == 2*perReplica || n*est > limit {
		t.Fatalf("admitted %d of %d with estimate %d under %d", n, 2*perReplica, est, limit)
	}
	if got := windowTokens(t, re, st[0], "key:k", w); got != n*final {
		t.Fatalf("window counted %d tokens, want %d×%d = %d", got, n, final, n*final)
	}
	d := admit(t, st[1], "next", est, k)
	if d.Allowed || d.Kind != ratelimit.TPM || d.RetryAfter != 50*time.Second {
		t.Fatalf("next request in a full window: %+v", d)
	}
	clk.Add(50 * time.Second)
	if d := admit(t, st[1], "next", est, k); !d.Allowed {
		t.Fatalf("next request in the next window: %+v", d)
	}
}

// testTPMAccounting walks one window and its successor step by step.
func testTPMAccounting(t *testing.T, v via) {
	st, clk, re := replicas(t, v, 2)
	s0, s1 := st[0], st[1]
	ctx := context.Background()
	k := sub("key:k", 0, 1000, 0)
	w0, w1 := ratelimit.WindowOf(t0), ratelimit.WindowOf(t0)+1
	tokens := func(w int64) int64 { return windowTokens(t, re, s0, "key:k", w) }
	step := func(name string, err error, w, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := tokens(w); got != want {
			t.Fatalf("%s: window %d counts %d tokens, want %d", name, w-w0, got, want)
		}
	}

	a := admit(t, s0, "a", 400, k)
	b := admit(t, s1, "b", 400, k)
	if !a.Allowed || !b.Allowed || b.Tokens.Remaining != 200 {
		t.Fatalf("a %+v b %+v", a, b)
	}
	if c := admit(t, s0, "c", 400, k); c.Allowed || c.Kind != ratelimit.TPM || c.TooLarge {
		t.Fatalf("c (800 + 400 > 1000): %+v", c)
	}
	step("a charges within its estimate", s0.Charge(ctx, a.Ticket, 300), w0, 800)
	step("a charges past its estimate", s0.Charge(ctx, a.Ticket, 600), w0, 1000)
	step("a repeats a total", s0.Charge(ctx, a.Ticket, 550), w0, 1000)
	step("b finishes below its estimate", s1.Finish(ctx, b.Ticket, 100), w0, 700)
	step("b finishes again", s1.Finish(ctx, b.Ticket, 0), w0, 700)
	d := admit(t, s1, "d", 300, k)
	if !d.Allowed || d.Tokens.Remaining != 0 {
		t.Fatalf("d: %+v", d)
	}
	if e := admit(t, s1, "e", 1, k); e.Allowed {
		t.Fatal("e admitted into a full window")
	}

	clk.Add(time.Minute) // the next window
	step("a streams on into the next window", s0.Charge(ctx, a.Ticket, 700), w1, 100)
	if f := admit(t, s1, "f", 900, k); !f.Allowed {
		t.Fatalf("f: %+v", f)
	}
	if g := admit(t, s1, "g", 1, k); g.Allowed {
		t.Fatal("g admitted into a full window")
	}
	// a counted 600 in w0 and 100 in w1; using 550 in all, it gives back
	// only the 100 it counted in this window, none of f's tokens
	step("a finishes below what it charged", s0.Finish(ctx, a.Ticket, 550), w1, 900)
	step("the past window is unchanged", nil, w0, 1000)
	// d reserved 300 in w0 and used 200: w0 has passed and w1 never held
	// d's tokens, so neither changes
	step("d finishes below its estimate a window later", s1.Finish(ctx, d.Ticket, 200), w1, 900)
	step("and the past window is not given back to", nil, w0, 1000)
}

// testFinishIsIdempotent: finishing twice frees a slot once and gives
// tokens back once.
func testFinishIsIdempotent(t *testing.T, v via) {
	st, _, re := replicas(t, v, 1)
	s := st[0]
	ctx := context.Background()
	k := sub("key:k", 0, 1000, 2)
	a := admit(t, s, "a", 500, k)
	admit(t, s, "b", 100, k)
	for i := 0; i < 3; i++ {
		if err := s.Finish(ctx, a.Ticket, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := windowTokens(t, re, s, "key:k", ratelimit.WindowOf(t0)); got != 100 {
		t.Fatalf("window counts %d, want b's 100", got)
	}
	if got := slotMembers(t, re, s, "key:k"); got != "[b]" {
		t.Fatalf("slots %s, want [b]", got)
	}
	if err := s.Charge(ctx, a.Ticket, 900); err != nil {
		t.Fatal(err)
	}
	if got := windowTokens(t, re, s, "key:k", ratelimit.WindowOf(t0)); got != 100 {
		t.Fatalf("a charge after finish counted: window %d", got)
	}
}

// testExpiredSlotsArePurged: a crashed gateway's slots come back when
// their lease ends; a charge renews a live one.
func testExpiredSlotsArePurged(t *testing.T, v via) {
	re := testenv.Redis(t)
	clk := &clock{t: t0}
	st, err := New(re.Client, re.Prefix, Options{Now: clk.Now, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s := v.replica(t, st)
	ctx := context.Background()
	k := sub("upkey:p", 0, 0, 2)
	crashed := admit(t, s, "crashed", 0, k)
	live := admit(t, s, "live", 0, k)
	if d := admit(t, s, "x", 0, k); d.Allowed {
		t.Fatal("third slot granted")
	}
	clk.Add(40 * time.Second)
	if err := s.Charge(ctx, live.Ticket, 0); err != nil { // renew only
		t.Fatal(err)
	}
	clk.Add(30 * time.Second) // crashed's lease ended, live's was renewed
	d := admit(t, s, "y", 0, k)
	if !d.Allowed || d.Concurrency.Remaining != 0 {
		t.Fatalf("y: %+v", d)
	}
	if got := slotMembers(t, re, s, "upkey:p"); got != "[live y]" {
		t.Fatalf("slots %s, want [live y]", got)
	}
	// a late renewal of the purged slot does not take it back
	if err := s.Charge(ctx, crashed.Ticket, 0); err != nil {
		t.Fatal(err)
	}
	if n := re.Client.ZCard(ctx, s.SlotsKey("upkey:p")).Val(); n != 2 {
		t.Fatalf("%d slots after a late renewal, want 2", n)
	}
}

// testRedisDown: with Redis unreachable every call returns an error
// wrapping ErrUnavailable; once it is back, admission works again.
func testRedisDown(t *testing.T, v via) {
	s, p := behindProxy(t, v)
	ctx := context.Background()
	k := sub("key:k", 10, 1000, 2)
	d := admit(t, s, "a", 10, k)
	if !d.Allowed {
		t.Fatalf("a: %+v", d)
	}
	p.Cut()
	if _, err := s.Admit(ctx, ratelimit.Request{ID: "b", Subjects: []ratelimit.Subject{k}}); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("admit with Redis down: %v, want ErrUnavailable", err)
	}
	if err := s.Charge(ctx, d.Ticket, 20); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("charge with Redis down: %v", err)
	}
	if err := s.Finish(ctx, d.Ticket, 20); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("finish with Redis down: %v", err)
	}
	p.Restore()
	if d := admit(t, s, "c", 10, k); !d.Allowed {
		t.Fatalf("after Redis is back: %+v", d)
	}
}

// behindProxy returns a Store that reaches Redis through a proxy the test
// can cut, with short timeouts and no retries.
func behindProxy(t *testing.T, v via) (replica, *testenv.Proxy) {
	t.Helper()
	re := testenv.Redis(t)
	p := testenv.NewProxy(t, re.Addr)
	cl := redis.NewClient(&redis.Options{Addr: p.Addr, MaxRetries: -1,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { cl.Close() })
	s, err := New(cl, re.Prefix, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return v.replica(t, s), p
}

// testReplyErrorIsNotUnavailable: a fault reported by Redis (here a key of
// the wrong type) is an error, but not ErrUnavailable: it must not be
// mistaken for an outage and waved through by a fail-open setting.
func testReplyErrorIsNotUnavailable(t *testing.T, v via) {
	st, _, re := replicas(t, v, 1)
	s := st[0]
	if err := re.Client.Set(context.Background(), s.SlotsKey("key:k"), "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Admit(context.Background(), ratelimit.Request{ID: "r", Subjects: []ratelimit.Subject{sub("key:k", 0, 0, 1)}})
	if err == nil || errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewRejectsBracedPrefix(t *testing.T) {
	if _, err := New(nil, "a{b}:", Options{}); err == nil {
		t.Fatal("prefix with a hash tag accepted")
	}
}

// BenchmarkAdmit measures one admission (key, user and upstream key, all
// three limits) plus its finish, against real Redis.
func BenchmarkAdmit(b *testing.B) {
	re := testenv.Redis(b)
	s, err := New(re.Client, re.Prefix, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	subs := []ratelimit.Subject{sub("key:k", 1<<40, 1<<50, 1<<20), sub("user:u", 1<<40, 1<<50, 1<<20), sub("upkey:p", 1<<40, 1<<50, 0)}
	b.ReportAllocs()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, err := s.Admit(ctx, ratelimit.Request{ID: fmt.Sprint("r", i.Add(1)), Tokens: 100, Subjects: subs})
			if err != nil || !d.Allowed {
				b.Fatalf("%+v %v", d, err)
			}
			if err := s.Finish(ctx, d.Ticket, 80); err != nil {
				b.Fatal(err)
			}
		}
	})
}
