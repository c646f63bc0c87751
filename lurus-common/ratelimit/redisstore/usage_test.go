package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// testUsage: Usage reads what admissions counted in the current window and
// the slots still leased, per subject, and changes nothing.
func testUsage(t *testing.T, v via) {
	st, clk, re := replicas(t, v, 1)
	s := st[0]
	ctx := context.Background()
	key, user := sub("key:k", 10, 1000, 3), sub("user:u", 100, 0, 0)
	d1 := admit(t, s, "a", 40, key, user)
	admit(t, s, "b", 60, key, user)
	if err := s.Finish(ctx, d1.Ticket, 40); err != nil {
		t.Fatal(err)
	}
	got, err := s.Usage(ctx, "key:k", "user:u", "key:unseen")
	if err != nil {
		t.Fatal(err)
	}
	w := ratelimit.WindowOf(t0)
	want := []ratelimit.Usage{{Window: w, Requests: 2, Tokens: 100, InFlight: 1}, {Window: w, Requests: 2}, {Window: w}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Usage()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Read-only: the same answer again, and the window hash untouched.
	if again, _ := s.Usage(ctx, "key:k"); again[0] != want[0] {
		t.Fatalf("second read %+v", again[0])
	}
	if n, _ := re.Client.Exists(ctx, s.WindowKey("key:unseen", w)).Result(); n != 0 {
		t.Fatal("Usage created a window for an unseen subject")
	}
	// The next window starts empty; an expired slot is not in flight.
	clk.Add(time.Minute)
	if got, _ := s.Usage(ctx, "key:k"); got[0] != (ratelimit.Usage{Window: w + 1, InFlight: 1}) {
		t.Fatalf("next window: %+v", got[0])
	}
	clk.Add(DefaultLeaseTTL)
	if got, _ := s.Usage(ctx, "key:k"); got[0].InFlight != 0 {
		t.Fatalf("expired slot counted: %+v", got[0])
	}
}

// testUsageRedisDown: an unreachable Redis is ErrUnavailable, so /me can
// show limits without remaining.
func testUsageRedisDown(t *testing.T, v via) {
	s, p := behindProxy(t, v)
	p.Cut()
	if _, err := s.Usage(context.Background(), "key:k"); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("usage with Redis down: %v", err)
	}
}
