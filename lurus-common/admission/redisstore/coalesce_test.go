package redisstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
)

func TestReserveBatchMatchesReserve(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: 100, Active: true})
	res, errs := s.ReserveBatch(ctx, []admission.Reservation{
		{ID: "a", UserID: "u", Micros: 60},
		{ID: "b", UserID: "u", Micros: 60}, // does not fit after a
		{ID: "", UserID: "u", Micros: 1},   // invalid
		{ID: "c", UserID: "nobody", Micros: 1},
		{ID: "d", UserID: "u", Micros: 40},
	})
	want := []admission.Code{admission.OK, admission.InsufficientBalance, 0, admission.Missing, admission.OK}
	for i, w := range want {
		if i == 2 {
			if errs[i] == nil {
				t.Fatal("invalid reservation accepted")
			}
			continue
		}
		if errs[i] != nil || res[i].Code != w {
			t.Fatalf("[%d] = %v %v, want %v", i, res[i].Code, errs[i], w)
		}
	}
}

func TestCoalescerNeverOverdraws(t *testing.T) {
	s := newStore(t)
	c := NewCoalescer(s, 2, 32)
	defer c.Close()
	admitsExactly(t, s, 300, 41, c.Lease)
}

func TestCoalescerClose(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustApply(t, s, admission.Account{UserID: "u", BalanceMicros: 1 << 40, Active: true})
	c := NewCoalescer(s, 2, 4)
	// Reservations racing with Close are either done or refused, never
	// left waiting.
	var wg sync.WaitGroup
	var done, refused atomic.Int32
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Lease(ctx, admission.Reservation{ID: fmt.Sprintf("c%d", i), UserID: "u", Micros: 1})
			switch err {
			case nil:
				done.Add(1)
			case ErrCoalescerClosed:
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	c.Close()
	c.Close() // idempotent
	wg.Wait()
	if done.Load()+refused.Load() != 200 {
		t.Fatalf("done %d + refused %d != 200", done.Load(), refused.Load())
	}
	st, _ := s.Get(ctx, "u")
	if st.ReservedMicros != int64(done.Load()) {
		t.Fatalf("reserved %d, but %d reservations reported done", st.ReservedMicros, done.Load())
	}
	if _, err := c.Lease(ctx, admission.Reservation{ID: "x", UserID: "u"}); err != ErrCoalescerClosed {
		t.Fatalf("after Close: %v", err)
	}
}
