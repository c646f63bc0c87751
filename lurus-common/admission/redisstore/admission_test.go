package redisstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	re := testenv.Redis(t)
	return New(re.Client, re.Prefix)
}

func mustApply(t *testing.T, s *Store, a admission.Account) {
	t.Helper()
	if _, err := s.Apply(context.Background(), a, ""); err != nil {
		t.Fatal(err)
	}
}

func TestReserveRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		acct *admission.Account
		prev []admission.Reservation
		r    admission.Reservation
		want admission.Code
	}{
		{name: "no mirror", r: admission.Reservation{ID: "a", UserID: "u", Micros: 1}, want: admission.Missing},
		{name: "fits balance", acct: &admission.Account{BalanceMicros: 100, Active: true}, r: admission.Reservation{ID: "a", Micros: 100}, want: admission.OK},
		{name: "over balance", acct: &admission.Account{BalanceMicros: 100, Active: true}, r: admission.Reservation{ID: "a", Micros: 101}, want: admission.InsufficientBalance},
		{name: "credit extends", acct: &admission.Account{BalanceMicros: 100, CreditMicros: 50, Active: true}, r: admission.Reservation{ID: "a", Micros: 150}, want: admission.OK},
		{name: "negative balance within credit", acct: &admission.Account{BalanceMicros: -40, CreditMicros: 50, Active: true}, r: admission.Reservation{ID: "a", Micros: 11}, want: admission.InsufficientBalance},
		{name: "open reservations count", acct: &admission.Account{BalanceMicros: 100, Active: true},
			prev: []admission.Reservation{{ID: "p", Micros: 60}}, r: admission.Reservation{ID: "a", Micros: 41}, want: admission.InsufficientBalance},
		{name: "quota room", acct: &admission.Account{BalanceMicros: 100, QuotaLimitTokens: 1000, QuotaUsedTokens: 900, Active: true},
			r: admission.Reservation{ID: "a", Tokens: 100}, want: admission.OK},
		{name: "quota exceeded", acct: &admission.Account{BalanceMicros: 100, QuotaLimitTokens: 1000, QuotaUsedTokens: 900, Active: true},
			prev: []admission.Reservation{{ID: "p", Tokens: 50}}, r: admission.Reservation{ID: "a", Tokens: 51}, want: admission.QuotaExceeded},
		{name: "no quota means unlimited", acct: &admission.Account{BalanceMicros: 100, Active: true}, r: admission.Reservation{ID: "a", Tokens: 1 << 40}, want: admission.OK},
		{name: "key limit", acct: &admission.Account{BalanceMicros: 1000, Active: true, KeySpentMicros: map[string]int64{"k1": 90}},
			r: admission.Reservation{ID: "a", KeyID: "k1", KeySpendLimitMicros: 100, Micros: 11}, want: admission.KeySpendLimit},
		{name: "key limit counts key reservations", acct: &admission.Account{BalanceMicros: 1000, Active: true},
			prev: []admission.Reservation{{ID: "p", KeyID: "k1", KeySpendLimitMicros: 100, Micros: 60}},
			r:    admission.Reservation{ID: "a", KeyID: "k1", KeySpendLimitMicros: 100, Micros: 41}, want: admission.KeySpendLimit},
		{name: "other key unaffected", acct: &admission.Account{BalanceMicros: 1000, Active: true, KeySpentMicros: map[string]int64{"k1": 100}},
			r: admission.Reservation{ID: "a", KeyID: "k2", KeySpendLimitMicros: 100, Micros: 100}, want: admission.OK},
		{name: "disabled", acct: &admission.Account{BalanceMicros: 100}, r: admission.Reservation{ID: "a", Micros: 1}, want: admission.Disabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if tt.acct != nil {
				tt.acct.UserID = "u"
				mustApply(t, s, *tt.acct)
			}
			for _, p := range tt.prev {
				p.UserID = "u"
				if res, err := s.Reserve(ctx, p); err != nil || res.Code != admission.OK {
					t.Fatalf("prev reserve: %v %v", res, err)
				}
			}
			tt.r.UserID = "u"
			res, err := s.Reserve(ctx, tt.r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Code != tt.want {
				t.Fatalf("code = %v, want %v (%+v)", res.Code, tt.want, res)
			}
		})
	}
}

func TestReserveIsIdempotentAndReleaseFrees(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: 100, Active: true, QuotaLimitTokens: 10})
	r := admission.Reservation{ID: "req", UserID: "u", KeyID: "k", Micros: 70, Tokens: 7}
	for i := 0; i < 3; i++ {
		if res, _ := s.Reserve(ctx, r); res.Code != admission.OK {
			t.Fatalf("reserve %d: %v", i, res.Code)
		}
	}
	st, _ := s.Get(ctx, "u")
	if st.ReservedMicros != 70 || st.ReservedTokens != 7 {
		t.Fatalf("held twice: %+v", st)
	}
	if res, _ := s.Reserve(ctx, admission.Reservation{ID: "other", UserID: "u", Micros: 31}); res.Code != admission.InsufficientBalance || res.AvailableMicros != 30 {
		t.Fatalf("second reservation: %+v", res)
	}
	if ok, err := s.Release(ctx, "u", "req"); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	if ok, _ := s.Release(ctx, "u", "req"); ok {
		t.Fatal("released twice")
	}
	st, _ = s.Get(ctx, "u")
	if st.ReservedMicros != 0 || st.ReservedTokens != 0 {
		t.Fatalf("after release: %+v", st)
	}
}

func TestExpiredReservationsArePurged(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	clock := time.Now()
	s.now = func() time.Time { return clock }
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: 100, Active: true})
	if res, _ := s.Reserve(ctx, admission.Reservation{ID: "crashed", UserID: "u", Micros: 100, TTL: time.Minute}); res.Code != admission.OK {
		t.Fatal(res.Code)
	}
	if res, _ := s.Reserve(ctx, admission.Reservation{ID: "next", UserID: "u", Micros: 1}); res.Code != admission.InsufficientBalance {
		t.Fatalf("balance not held: %v", res.Code)
	}
	clock = clock.Add(61 * time.Second)
	if res, _ := s.Reserve(ctx, admission.Reservation{ID: "next", UserID: "u", Micros: 100}); res.Code != admission.OK {
		t.Fatalf("expired reservation still held: %+v", res)
	}
	if ok, _ := s.Release(ctx, "u", "crashed"); ok {
		t.Fatal("expired reservation released")
	}
}

func TestApplyVersionGuardAndRelease(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: 500, Active: true, Version: 5})
	if res, _ := s.Reserve(ctx, admission.Reservation{ID: "r1", UserID: "u", Micros: 200}); res.Code != admission.OK {
		t.Fatal(res.Code)
	}
	// settlement of r1: debit 150 at version 6, releasing the hold atomically
	if ok, _ := s.Apply(ctx, admission.Account{UserID: "u", BalanceMicros: 350, Active: true, Version: 6}, "r1"); !ok {
		t.Fatal("apply v6 not written")
	}
	// a late writer with an older version must not roll back the balance
	if ok, _ := s.Apply(ctx, admission.Account{UserID: "u", BalanceMicros: 500, Active: true, Version: 5}, ""); ok {
		t.Fatal("stale apply written")
	}
	st, _ := s.Get(ctx, "u")
	if st.BalanceMicros != 350 || st.ReservedMicros != 0 || st.Version != 6 || !st.Active {
		t.Fatalf("state = %+v", st)
	}
}

// TestConcurrentReservationsNeverOverdraw runs 200 concurrent reservations
// against a balance that covers exactly k of them.
func TestConcurrentReservationsNeverOverdraw(t *testing.T) {
	s := newStore(t)
	admitsExactly(t, s, 200, 37, s.Reserve)
}

// admitsExactly runs n concurrent reservations of one cost through reserve
// against a balance that covers exactly k of them, and checks that k are
// admitted and held.
func admitsExactly(t *testing.T, s *Store, n, k int, reserve func(context.Context, admission.Reservation) (admission.Result, error)) {
	t.Helper()
	ctx := context.Background()
	const cost = 1000
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: int64(k) * cost, Active: true})
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := reserve(ctx, admission.Reservation{ID: fmt.Sprintf("r%d", i), UserID: "u", Micros: cost})
			if err != nil {
				t.Error(err)
				return
			}
			if res.Code == admission.OK {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if int(admitted.Load()) != k {
		t.Fatalf("admitted %d, want exactly %d", admitted.Load(), k)
	}
	if st, _ := s.Get(ctx, "u"); st.ReservedMicros != int64(k)*cost {
		t.Fatalf("reserved %d, want %d", st.ReservedMicros, int64(k)*cost)
	}
}
