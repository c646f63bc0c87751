package biz

import (
	"testing"
	"time"
)

func TestHeadroom(t *testing.T) {
	clk := newClock()
	h := &Headroom{Factor: 4, MaxAge: 5 * time.Second, Now: clk.now}
	if h.Take("u", 10, 1) {
		t.Fatal("overlapped with nothing known about the user")
	}
	// A reservation of 100 left 1000-100 = 900 and an unlimited quota.
	h.Learn("u", HoldResult{Code: HoldOK, AvailableMicros: 1000, QuotaRemainingTokens: -1}, 100, 10)
	if !h.Take("u", 200, 10) { // 900 >= 4*200
		t.Fatal("not overlapped with ample headroom")
	}
	if h.Take("u", 200, 10) { // 700 < 4*200: the first take counted
		t.Fatal("concurrent takes did not share the headroom")
	}
	if !h.Take("u", 100, 10) { // 700 >= 400
		t.Fatal("small request refused")
	}
	clk.add(6 * time.Second)
	if h.Take("u", 1, 1) {
		t.Fatal("stale knowledge trusted")
	}
	// A quota: 50 tokens remain after the hold.
	h.Learn("u", HoldResult{Code: HoldOK, AvailableMicros: 1 << 30, QuotaRemainingTokens: 60}, 1, 10)
	if h.Take("u", 1, 13) || !h.Take("u", 1, 12) {
		t.Fatal("token quota margin not applied")
	}
	// A refusal: the next request must be checked first.
	h.Learn("u", HoldResult{Code: HoldInsufficientBalance, AvailableMicros: 1 << 30, QuotaRemainingTokens: -1}, 1, 1)
	if h.Take("u", 1, 1) {
		t.Fatal("overlapped right after a refusal")
	}
	h.Learn("u", HoldResult{Code: HoldOK, AvailableMicros: 1 << 30, QuotaRemainingTokens: -1}, 1, 1)
	h.Forget("u")
	if h.Take("u", 1, 1) {
		t.Fatal("forgotten user overlapped")
	}
	var off *Headroom
	if off.Take("u", 1, 1) || (&Headroom{Factor: 0, Now: clk.now}).Take("u", 1, 1) {
		t.Fatal("disabled headroom overlapped")
	}
}
