package redisstore

import (
	"context"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
)

// TestLargeHoldsStayExact holds, leases and releases amounts of 15 and 16
// digits (up to the largest balance a user can have). Lua formats a
// concatenated number with 14 significant digits, so before the scripts
// rendered entries with %d such a hold was stored as "1.2345678901234e+14",
// could not be parsed again, and every later script of the user failed.
func TestLargeHoldsStayExact(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const big = 123_456_789_012_345 // 15 significant digits
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: money.MaxBalance, CreditMicros: money.MaxAmount, Active: true,
		QuotaLimitTokens: money.MaxTokens})
	if res, err := s.Reserve(ctx, admission.Reservation{ID: "r1", UserID: "u", KeyID: "k", Micros: big, Tokens: 9_876_543_210_987}); err != nil || res.Code != admission.OK {
		t.Fatalf("reserve: %+v %v", res, err)
	}
	if res, err := s.Lease(ctx, admission.Reservation{ID: "lease", UserID: "u", KeyID: "k", Micros: big + 2, Tokens: 3}); err != nil || res.Code != admission.OK {
		t.Fatalf("lease: %+v %v", res, err)
	}
	if res, err := s.Lease(ctx, admission.Reservation{ID: "lease", UserID: "u", KeyID: "k", Micros: big, Tokens: 4}); err != nil || res.HeldMicros != 2*big+2 {
		t.Fatalf("lease extension: %+v %v, want %d held", res, err, 2*big+2)
	}
	st, err := s.Get(ctx, "u")
	if err != nil || st.ReservedMicros != 3*big+2 || st.ReservedTokens != 9_876_543_210_987+7 {
		t.Fatalf("after holds: %+v %v", st, err)
	}
	// what is left must be exactly the balance + credit − holds
	res, err := s.Reserve(ctx, admission.Reservation{ID: "probe", UserID: "u", Micros: money.MaxBalance + money.MaxAmount})
	if err != nil || res.AvailableMicros != money.MaxBalance+money.MaxAmount-(3*big+2) {
		t.Fatalf("available %d (%v), want %d", res.AvailableMicros, err, money.MaxBalance+money.MaxAmount-(3*big+2))
	}
	if ok, err := s.ReleasePart(ctx, "u", admission.PartRelease{ReservationID: "lease", RequestID: "q1", Micros: big - 1, Tokens: 1}); err != nil || !ok {
		t.Fatalf("release part: %v %v", ok, err)
	}
	if ok, err := s.Release(ctx, "u", "r1"); err != nil || !ok {
		t.Fatalf("release: %v %v", ok, err)
	}
	if ok, err := s.Release(ctx, "u", "lease"); err != nil || !ok {
		t.Fatalf("release lease: %v %v", ok, err)
	}
	if st, err := s.Get(ctx, "u"); err != nil || st.ReservedMicros != 0 || st.ReservedTokens != 0 {
		t.Fatalf("after releases: %+v %v, want nothing held", st, err)
	}
}
