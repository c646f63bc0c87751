package redisstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
)

func TestLeaseExtendRenewAndReleaseParts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: 1000, Active: true, QuotaLimitTokens: 100})
	lease := admission.Reservation{ID: "lease:g1:k1", UserID: "u", KeyID: "k1", Micros: 300, Tokens: 30}
	res, err := s.Lease(ctx, lease)
	if err != nil || res.Code != admission.OK || res.HeldMicros != 300 || res.AvailableMicros != 1000 {
		t.Fatalf("first lease: %+v %v", res, err)
	}
	res, _ = s.Lease(ctx, lease) // a lease adds every time
	if res.Code != admission.OK || res.HeldMicros != 600 || res.AvailableMicros != 700 {
		t.Fatalf("extend: %+v", res)
	}
	res, _ = s.Lease(ctx, admission.Reservation{ID: lease.ID, UserID: "u", KeyID: "k1", Micros: 401, Tokens: 1})
	if res.Code != admission.InsufficientBalance || res.HeldMicros != 600 {
		t.Fatalf("over-extend: %+v", res)
	}
	res, _ = s.Lease(ctx, admission.Reservation{ID: lease.ID, UserID: "u", KeyID: "k1", Micros: 1, Tokens: 41})
	if res.Code != admission.QuotaExceeded {
		t.Fatalf("quota: %+v", res)
	}
	res, _ = s.Lease(ctx, admission.Reservation{ID: lease.ID, UserID: "u", KeyID: "k1"}) // renew
	if res.Code != admission.OK || res.HeldMicros != 600 {
		t.Fatalf("renew: %+v", res)
	}
	st, _ := s.Get(ctx, "u")
	if st.ReservedMicros != 600 || st.ReservedTokens != 60 {
		t.Fatalf("sums after leasing: %+v", st)
	}

	// billing settles two requests admitted against the lease; the second
	// settlement is replayed.
	p1 := admission.PartRelease{ReservationID: lease.ID, RequestID: "req1", Micros: 100, Tokens: 10}
	p2 := admission.PartRelease{ReservationID: lease.ID, RequestID: "req2", Micros: 150, Tokens: 15}
	for _, p := range []admission.PartRelease{p1, p2, p2} {
		if _, err := s.ReleasePart(ctx, "u", p); err != nil {
			t.Fatal(err)
		}
	}
	if again, _ := s.ReleasePart(ctx, "u", p1); again {
		t.Fatal("replayed release reported as new")
	}
	st, _ = s.Get(ctx, "u")
	if st.ReservedMicros != 350 || st.ReservedTokens != 35 {
		t.Fatalf("sums after releases: %+v", st)
	}
	// the gateway gives back the rest; more than held is clamped, and the
	// entry goes.
	if _, err := s.ReleasePart(ctx, "u", admission.PartRelease{ReservationID: lease.ID, RequestID: "return:1", Micros: 999, Tokens: 999}); err != nil {
		t.Fatal(err)
	}
	st, _ = s.Get(ctx, "u")
	if st.ReservedMicros != 0 || st.ReservedTokens != 0 {
		t.Fatalf("sums after return: %+v", st)
	}
	res, _ = s.Lease(ctx, admission.Reservation{ID: lease.ID, UserID: "u", KeyID: "k1"})
	if res.HeldMicros != 0 {
		t.Fatalf("returned lease still held: %+v", res)
	}
}

// TestLeasesAndSettlementNeverOverdraw: two gateways lease chunks for
// their requests while billing settles earlier ones (debit + part
// release); the balance never goes below zero and every hold is accounted.
func TestLeasesAndSettlementNeverOverdraw(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const balance, chunk, cost = 100_000, 700, 100
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: balance, Active: true, Version: 1})
	var mu sync.Mutex
	bal, ver := int64(balance), int64(1)
	var wg sync.WaitGroup
	admitted := make([]int, 2)
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("lease:g%d:k", g)
			remainder := int64(0)
			for n := 0; ; n++ {
				if remainder < cost {
					res, err := s.Lease(ctx, admission.Reservation{ID: id, UserID: "u", KeyID: "k", Micros: chunk})
					if err != nil {
						t.Error(err)
						return
					}
					if res.Code != admission.OK {
						return // balance exhausted
					}
					remainder += chunk
				}
				remainder -= cost
				admitted[g]++
				// the request is settled: billing debits and releases its
				// estimate from the lease, in the same pipeline.
				mu.Lock()
				bal -= cost
				ver++
				a := admission.Account{UserID: "u", BalanceMicros: bal, Active: true, Version: ver}
				mu.Unlock()
				if err := s.ApplyBatch(ctx, []admission.Update{{Account: a,
					Parts: []admission.PartRelease{{ReservationID: id, RequestID: fmt.Sprintf("g%d-%d", g, n), Micros: cost}}}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := int64(admitted[0]+admitted[1]) * cost
	if total > balance {
		t.Fatalf("admitted %d micros of requests on a balance of %d", total, balance)
	}
	if total < balance-2*chunk {
		t.Fatalf("admitted only %d of %d: leases stranded more than their last chunk", total, balance)
	}
	st, _ := s.Get(ctx, "u")
	if st.BalanceMicros != balance-total || st.ReservedMicros < 0 || st.ReservedMicros > 2*chunk {
		t.Fatalf("mirror %+v after %d admitted", st, total)
	}
}

// An extension sized by a nearly spent balance holds few micros but many
// tokens (no quota caps the tokens): once its requests' releases take the
// micros to 0, the tokens still held must stay in the entry until they are
// released too, not be orphaned in rtok when the entry goes (found by the
// fault suite: rtok grew by every such extension and no rebuild reset it).
func TestReleasePartKeepsTokensOfAnEntryWithoutMicros(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: 1000, Active: true})
	lease := admission.Reservation{ID: "lease:g1:k1", UserID: "u", KeyID: "k1", Micros: 100, Tokens: 400}
	if res, err := s.Lease(ctx, lease); err != nil || res.Code != admission.OK {
		t.Fatalf("lease: %+v %v", res, err)
	}
	// two requests of 50 µ / 20 tokens take every micro of the lease
	for i, p := range []admission.PartRelease{{ReservationID: lease.ID, RequestID: "req1", Micros: 50, Tokens: 20},
		{ReservationID: lease.ID, RequestID: "req2", Micros: 50, Tokens: 20}} {
		if _, err := s.ReleasePart(ctx, "u", p); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}
	st, _ := s.Get(ctx, "u")
	if st.ReservedMicros != 0 || st.ReservedTokens != 360 {
		t.Fatalf("sums after the requests' releases: %+v, want 0 µ and the lease's 360 unused tokens", st)
	}
	// the gateway gives back the unused tokens: nothing stays reserved
	if _, err := s.ReleasePart(ctx, "u", admission.PartRelease{ReservationID: lease.ID, RequestID: "return:1", Tokens: 360}); err != nil {
		t.Fatal(err)
	}
	st, _ = s.Get(ctx, "u")
	if st.ReservedMicros != 0 || st.ReservedTokens != 0 {
		t.Fatalf("sums after the lease is given back: %+v, want nothing reserved", st)
	}
	if res, _ := s.Lease(ctx, admission.Reservation{ID: lease.ID, UserID: "u", KeyID: "k1"}); res.HeldMicros != 0 {
		t.Fatalf("the emptied entry still holds %d µ", res.HeldMicros)
	}
}

// A lease entry left by a dead gateway must be purged however long after
// its expiry the user comes back. The entries used to carry a Redis TTL of
// twice theirs: a user idle that long lost the entries while acct kept
// their sums, and stayed blocked by a lease nobody held (found while
// building the fault suite's scenario 15).
func TestExpiredLeaseOfADeadGatewayIsPurgedAfterAnyIdleTime(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: 1000, Active: true, QuotaLimitTokens: 100})
	const ttl = 50 * time.Millisecond
	if res, err := s.Lease(ctx, admission.Reservation{ID: "lease:dead:k1", UserID: "u", KeyID: "k1", Micros: 900, Tokens: 90, TTL: ttl}); err != nil || res.Code != admission.OK {
		t.Fatalf("lease: %+v %v", res, err)
	}
	time.Sleep(4 * ttl) // the user is idle well past twice the TTL
	res, err := s.Reserve(ctx, admission.Reservation{ID: "r1", UserID: "u", KeyID: "k1", Micros: 500, Tokens: 50})
	if err != nil || res.Code != admission.OK || res.AvailableMicros != 1000 || res.QuotaRemainingTokens != 100 {
		t.Fatalf("reserve after the dead lease expired: %+v %v; want admission.OK with all 1000 µ and 100 tokens available", res, err)
	}
	st, _ := s.Get(ctx, "u")
	if st.ReservedMicros != 500 || st.ReservedTokens != 50 {
		t.Fatalf("sums %+v: want only the new reservation's 500 µ and 50 tokens", st)
	}
}
