package biz

import (
	"errors"
	"math"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// TestPostBounds: top-ups and adjustments are held to ±money.MaxAmount
// and may not take the balance past ±money.MaxBalance; a refusal changes
// nothing. Two top-ups of 2^62 (the exploit) can never both land.
func TestPostBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		balance int64
		kind    string
		amount  int64
		want    apperr.Reason // "" = booked
	}{
		{"ordinary top-up", 0, KindTopup, 5_000_000, ""},
		{"largest top-up", 0, KindTopup, money.MaxAmount, ""},
		{"2^62 top-up", 0, KindTopup, 1 << 62, apperr.ReasonAmountOutOfRange},
		{"second 2^62 top-up", 1 << 62, KindTopup, 1 << 62, apperr.ReasonAmountOutOfRange},
		{"MaxInt64 adjust", 0, KindAdjust, math.MaxInt64, apperr.ReasonAmountOutOfRange},
		{"MinInt64 adjust", 0, KindAdjust, math.MinInt64, apperr.ReasonAmountOutOfRange},
		{"top-up to the ceiling", money.MaxBalance - money.MaxAmount, KindTopup, money.MaxAmount, ""},
		{"top-up past the ceiling", money.MaxBalance - money.MaxAmount + 1, KindTopup, money.MaxAmount, apperr.ReasonBalanceOutOfRange},
		{"debit to the floor", -money.MaxBalance + money.MaxAmount, KindAdjust, -money.MaxAmount, ""},
		{"debit past the floor", -money.MaxBalance, KindAdjust, -1, apperr.ReasonBalanceOutOfRange},
		{"credit on a balance below the floor", -money.MaxBalance - 5, KindAdjust, 5, ""},
		{"debit that would wrap", math.MinInt64 + 1, KindAdjust, -2, apperr.ReasonBalanceOutOfRange},
		{"credit that would wrap", math.MaxInt64 - 1, KindTopup, 2, apperr.ReasonBalanceOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &User{ID: "usr_1", Status: StatusActive, BalanceMicros: tc.balance, PeriodStart: PeriodStart(now)}
			a, err := NewAccount(u, Rules{}, now)
			if err != nil {
				t.Fatal(err)
			}
			e, err := a.Post(tc.kind, tc.amount, "")
			if tc.want == "" {
				if err != nil || u.BalanceMicros != tc.balance+tc.amount || e.BalanceAfterMicros != u.BalanceMicros {
					t.Fatalf("booked %+v, %v; balance %d", e, err, u.BalanceMicros)
				}
				return
			}
			if apperr.ReasonOf(err) != tc.want {
				t.Fatalf("err %v, want %s", err, tc.want)
			}
			if u.BalanceMicros != tc.balance || len(a.Ledger) != 0 || len(a.Events) != 0 || a.Changed {
				t.Fatalf("a refused post changed the account: balance %d, %d entries, %d events", u.BalanceMicros, len(a.Ledger), len(a.Events))
			}
		})
	}
}

// TestChargeNeverWraps: a charge whose balance or quota sum would leave
// int64 is ErrOverflow and leaves the account untouched.
func TestChargeNeverWraps(t *testing.T) {
	for _, tc := range []struct {
		name            string
		balance, used   int64
		prompt, compl   int64
		cost            int64
		wantOverflow    bool
		wantBal, wantQu int64
	}{
		{"ordinary", 100, 0, 10, 5, 30, false, 70, 15},
		{"balance would wrap", math.MinInt64 + 10, 0, 1, 0, 11, true, 0, 0},
		{"quota would wrap", 0, math.MaxInt64 - 5, 3, 3, 1, true, 0, 0},
		{"tokens sum would wrap", 0, 0, math.MaxInt64, 1, 1, true, 0, 0},
		{"debit to MinInt64 exactly", math.MinInt64 + 10, 0, 1, 0, 10, false, math.MinInt64, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &User{ID: "usr_1", Status: StatusActive, BalanceMicros: tc.balance, QuotaUsedTokens: tc.used,
				QuotaLimitTokens: money.MaxTokens, PeriodStart: PeriodStart(now)}
			a, _ := NewAccount(u, Rules{}, now)
			_, err := a.Charge(events.Usage{RequestID: "r", PromptTokens: tc.prompt, CompletionTokens: tc.compl, Status: events.StatusOK}, tc.cost)
			if tc.wantOverflow {
				if !errors.Is(err, ErrOverflow) || !IsOverflow(err) {
					t.Fatalf("err %v, want ErrOverflow", err)
				}
				if u.BalanceMicros != tc.balance || u.QuotaUsedTokens != tc.used || len(a.Events) != 0 || len(a.Ledger) != 0 {
					t.Fatalf("a refused charge changed the account: %+v, %d events", u, len(a.Events))
				}
				return
			}
			if err != nil || u.BalanceMicros != tc.wantBal || u.QuotaUsedTokens != tc.wantQu {
				t.Fatalf("err %v, balance %d, used %d", err, u.BalanceMicros, u.QuotaUsedTokens)
			}
		})
	}
}

// TestQuotaLowWithoutOverflow: the quota.low test does not multiply the
// used count, so a used count near MaxInt64 still reads as over 80 %.
func TestQuotaLowWithoutOverflow(t *testing.T) {
	for _, tc := range []struct {
		limit, used int64
		low         bool
	}{
		{1000, 799, false}, {1000, 800, true}, {3, 2, false}, {3, 3, true}, // ⌈3·80/100⌉ = 3
		{money.MaxTokens, math.MaxInt64 - 1, true}, {money.MaxTokens, money.MaxTokens/100*80 - 1, false},
	} {
		u := &User{ID: "usr_1", Status: StatusActive, BalanceMicros: 1, QuotaLimitTokens: tc.limit, QuotaUsedTokens: tc.used,
			PeriodStart: PeriodStart(now)}
		a, _ := NewAccount(u, Rules{QuotaLowPercent: 80}, now)
		if err := a.checkThresholds(); err != nil {
			t.Fatal(err)
		}
		if got := u.AlertFlags&AlertQuotaLow != 0; got != tc.low {
			t.Errorf("limit %d used %d: quota low %v, want %v", tc.limit, tc.used, got, tc.low)
		}
	}
}

func TestCeilings(t *testing.T) {
	r := Rules{MaxTokensPerRequest: 1000, MaxCostMicrosPerRequest: 500}
	for _, tc := range []struct {
		name string
		u    events.Usage
		want error
	}{
		{"at the ceiling", events.Usage{PromptTokens: 600, CompletionTokens: 400, CachedTokens: 600, ReasoningTokens: 400}, nil},
		{"sum over", events.Usage{PromptTokens: 600, CompletionTokens: 401}, ErrTokensOverCeiling},
		{"sum wraps", events.Usage{PromptTokens: math.MaxInt64, CompletionTokens: math.MaxInt64}, ErrTokensOverCeiling},
		{"cached over", events.Usage{PromptTokens: 1, CachedTokens: 1001}, ErrTokensOverCeiling},
		{"cache write over", events.Usage{CacheWriteTokens: math.MaxInt64}, ErrTokensOverCeiling},
		{"reasoning over", events.Usage{ReasoningTokens: 1001}, ErrTokensOverCeiling},
	} {
		if err := r.CheckTokens(tc.u); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if r.CheckCost(500) != nil || !errors.Is(r.CheckCost(501), ErrCostOverCeiling) {
		t.Error("cost ceiling")
	}
	var def Rules // zero rules use the defaults
	if def.CheckTokens(events.Usage{PromptTokens: DefaultMaxTokensPerRequest}) != nil ||
		!errors.Is(def.CheckTokens(events.Usage{PromptTokens: DefaultMaxTokensPerRequest, CompletionTokens: 1}), ErrTokensOverCeiling) ||
		def.CheckCost(DefaultMaxCostMicrosPerRequest) != nil || !errors.Is(def.CheckCost(DefaultMaxCostMicrosPerRequest+1), ErrCostOverCeiling) {
		t.Error("default ceilings")
	}
	// a cost that does not fit in an int64 is a cost-ceiling refusal, not a wrapped number
	tbl := pricing.NewTable([]pricing.Price{{ModelPattern: "m", OutputMicrosPerMTok: money.MaxAmount}}, nil, nil, 1)
	if _, err := PriceUsage(tbl, events.Usage{Model: "m", CompletionTokens: math.MaxInt64}, ""); !errors.Is(err, ErrCostOverCeiling) {
		t.Errorf("overflowing cost: %v", err)
	}
}
