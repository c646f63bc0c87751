package pricing

import (
	"errors"
	"math"
	"math/big"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
)

func TestCost(t *testing.T) {
	p := Price{InputMicrosPerMTok: 2_500_000, OutputMicrosPerMTok: 10_000_000, CachedInputMicrosPerMTok: 1_250_000, CacheWriteMicrosPerMTok: 3_750_000}
	maxP := Price{InputMicrosPerMTok: money.MaxAmount, OutputMicrosPerMTok: money.MaxAmount,
		CachedInputMicrosPerMTok: money.MaxAmount, CacheWriteMicrosPerMTok: money.MaxAmount}
	tests := []struct {
		name    string
		p       Price
		tok     Tokens
		want    int64
		wantErr bool
	}{
		{"zero", p, Tokens{}, 0, false},
		// 1000 input at $2.50/M = 2500 µ$; 500 output at $10/M = 5000 µ$
		{"plain", p, Tokens{Prompt: 1000, Completion: 500}, 7500, false},
		// 1000 prompt of which 400 cached, 100 written: 500*2.5 + 400*1.25 + 100*3.75 = 1250+500+375
		{"cache", p, Tokens{Prompt: 1000, Cached: 400, CacheWrite: 100}, 2125, false},
		{"rounds up", p, Tokens{Prompt: 1}, 3, false},
		{"negative ignored", p, Tokens{Prompt: -5, Completion: -1}, 0, false},
		{"cached beyond prompt", p, Tokens{Prompt: 10, Cached: 20}, 25, false},
		{"cached+write beyond int64", p, Tokens{Prompt: 10, Cached: math.MaxInt64, CacheWrite: math.MaxInt64}, 0, true},
		{"huge is an error, not saturated", p, Tokens{Prompt: math.MaxInt64, Completion: math.MaxInt64}, 0, true},
		// 10^7 tokens at the largest price: 10^13 × 10 = 10^14, fits
		{"ceiling tokens at max price", maxP, Tokens{Prompt: 10_000_000}, 100_000_000_000_000, false},
		// MaxInt64 tokens at 1 µ$/M: ⌈(2^63−1)/10^6⌉
		{"max tokens at 1/M", Price{InputMicrosPerMTok: 1}, Tokens{Prompt: math.MaxInt64}, 9_223_372_036_855, false},
		// exactly 10^6 × MaxInt64 / 10^6 fits; one more micro per M does not
		{"max result fits", Price{InputMicrosPerMTok: 1_000_000}, Tokens{Prompt: math.MaxInt64}, math.MaxInt64, false},
		{"just past max", Price{InputMicrosPerMTok: 1_000_001}, Tokens{Prompt: math.MaxInt64}, 0, true},
		{"negative price ignored", Price{InputMicrosPerMTok: -1}, Tokens{Prompt: 5}, 0, false},
	}
	for _, tt := range tests {
		got, err := tt.p.Cost(tt.tok)
		if tt.wantErr {
			if !errors.Is(err, money.ErrOverflow) {
				t.Errorf("%s: Cost = %d, %v; want ErrOverflow", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: Cost = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
}

func TestApplyMultiplier(t *testing.T) {
	for _, tc := range []struct{ micros, bps, want int64 }{
		{1000, 15000, 1500}, {1, 5000, 1}, {3, 5000, 2}, {7, BasisPoints, 7}, {math.MaxInt64, BasisPoints, math.MaxInt64},
		{math.MaxInt64, 5000, 4_611_686_018_427_387_904},
	} {
		if got, err := ApplyMultiplier(tc.micros, tc.bps); err != nil || got != tc.want {
			t.Errorf("ApplyMultiplier(%d, %d) = %d, %v; want %d", tc.micros, tc.bps, got, err, tc.want)
		}
	}
	if _, err := ApplyMultiplier(math.MaxInt64, BasisPoints+1); !errors.Is(err, money.ErrOverflow) {
		t.Errorf("MaxInt64 × 1.0001 did not overflow: %v", err)
	}
}

func TestTableLookup(t *testing.T) {
	tab := NewTable([]Price{
		{ID: "all-gpt", ModelPattern: "gpt-*", InputMicrosPerMTok: 1},
		{ID: "4o", ModelPattern: "gpt-4o*", InputMicrosPerMTok: 2},
		{ID: "exact", ModelPattern: "gpt-4o-mini", InputMicrosPerMTok: 3},
	}, nil, map[string]int64{"vip": 8000}, 1)
	for model, want := range map[string]string{"gpt-4o-mini": "exact", "gpt-4o-2024": "4o", "gpt-3.5": "all-gpt"} {
		if p, ok := tab.Lookup(model); !ok || p.ID != want {
			t.Errorf("Lookup(%s) = %v %v, want %s", model, p.ID, ok, want)
		}
	}
	if _, ok := tab.Lookup("claude-3"); ok {
		t.Error("unpriced model found without default")
	}
	if _, err := tab.Cost("claude-3", "", Tokens{Prompt: 1}); !errors.Is(err, ErrNoPrice) {
		t.Errorf("unpriced model: %v, want ErrNoPrice", err)
	}
	withDef := NewTable(nil, &Price{ID: "def"}, nil, 1)
	if p, ok := withDef.Lookup("claude-3"); !ok || p.ID != "def" {
		t.Error("default not used")
	}
	cost, err := NewTable([]Price{{ModelPattern: "m", InputMicrosPerMTok: 1_000_000}}, nil, map[string]int64{"vip": 8000}, 1).Cost("m", "vip", Tokens{Prompt: 1000})
	if err != nil || cost != 800 {
		t.Fatalf("group cost = %d %v", cost, err)
	}
	big := NewTable([]Price{{ModelPattern: "m", OutputMicrosPerMTok: money.MaxAmount}}, nil, map[string]int64{"x": 1000 * BasisPoints}, 1)
	if _, err := big.Cost("m", "x", Tokens{Completion: math.MaxInt64 / 2}); !errors.Is(err, money.ErrOverflow) {
		t.Fatalf("overflowing cost through a multiplier: %v", err)
	}
}

func TestCheckAmounts(t *testing.T) {
	for _, tc := range []struct {
		p    Price
		want apperr.Reason
	}{
		{Price{InputMicrosPerMTok: money.MaxAmount, OutputMicrosPerMTok: money.MaxAmount}, ""},
		{Price{OutputMicrosPerMTok: money.MaxAmount + 1}, apperr.ReasonAmountOutOfRange},
		{Price{CacheWriteMicrosPerMTok: math.MaxInt64}, apperr.ReasonAmountOutOfRange},
		{Price{CachedInputMicrosPerMTok: -1}, apperr.ReasonInvalidAmount},
	} {
		err := tc.p.CheckAmounts()
		if tc.want == "" && err != nil || tc.want != "" && apperr.ReasonOf(err) != tc.want {
			t.Errorf("%+v: %v, want %q", tc.p, err, tc.want)
		}
	}
}

// bigCost is Price.Cost computed with math/big: the reference.
func bigCost(p Price, t Tokens) *big.Int {
	nn := func(v int64) *big.Int { return big.NewInt(max(v, 0)) }
	uncached := new(big.Int).Sub(nn(t.Prompt), new(big.Int).Add(nn(t.Cached), nn(t.CacheWrite)))
	if uncached.Sign() < 0 {
		uncached.SetInt64(0)
	}
	sum := new(big.Int).Mul(uncached, nn(p.InputMicrosPerMTok))
	sum.Add(sum, new(big.Int).Mul(nn(t.Cached), nn(p.CachedInputMicrosPerMTok)))
	sum.Add(sum, new(big.Int).Mul(nn(t.CacheWrite), nn(p.CacheWriteMicrosPerMTok)))
	sum.Add(sum, new(big.Int).Mul(nn(t.Completion), nn(p.OutputMicrosPerMTok)))
	return ceilDivBig(sum, big.NewInt(perMillion))
}

func ceilDivBig(x, d *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(x, d, new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// FuzzCost checks Cost and ApplyMultiplier against math/big: the result
// is the exact rounded-up value whenever it fits in an int64, and
// money.ErrOverflow otherwise — never a wrapped or saturated number.
func FuzzCost(f *testing.F) {
	f.Add(int64(1000), int64(500), int64(400), int64(100), int64(2_500_000), int64(10_000_000), int64(1_250_000), int64(3_750_000), int64(BasisPoints))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(0), int64(0), int64(1), int64(1), int64(0), int64(0), int64(15000))
	f.Add(int64(math.MaxInt64), int64(0), int64(0), int64(0), int64(1_000_000), int64(0), int64(0), int64(0), int64(BasisPoints))
	f.Add(int64(10), int64(0), int64(math.MaxInt64), int64(math.MaxInt64), int64(7), int64(3), int64(money.MaxAmount), int64(money.MaxAmount), int64(1))
	f.Add(int64(-5), int64(-1), int64(-3), int64(-2), int64(-1), int64(money.MaxAmount), int64(0), int64(0), int64(10_000_000))
	f.Fuzz(func(t *testing.T, prompt, completion, cached, write, in, out, cin, cw, bps int64) {
		p := Price{InputMicrosPerMTok: in, OutputMicrosPerMTok: out, CachedInputMicrosPerMTok: cin, CacheWriteMicrosPerMTok: cw}
		tok := Tokens{Prompt: prompt, Completion: completion, Cached: cached, CacheWrite: write}
		want := bigCost(p, tok)
		got, err := p.Cost(tok)
		if !want.IsInt64() {
			if !errors.Is(err, money.ErrOverflow) {
				t.Fatalf("Cost(%+v, %+v) = %d, %v; exact %s does not fit, want ErrOverflow", p, tok, got, err, want)
			}
			return
		}
		if err != nil || got != want.Int64() {
			t.Fatalf("Cost(%+v, %+v) = %d, %v; want %s", p, tok, got, err, want)
		}
		if bps < 0 {
			return // Table.Multiplier never passes a negative multiplier
		}
		wantM := want
		if bps != BasisPoints {
			wantM = ceilDivBig(new(big.Int).Mul(want, big.NewInt(bps)), big.NewInt(BasisPoints))
		}
		gotM, err := ApplyMultiplier(got, bps)
		if !wantM.IsInt64() {
			if !errors.Is(err, money.ErrOverflow) {
				t.Fatalf("ApplyMultiplier(%d, %d) = %d, %v; exact %s does not fit", got, bps, gotM, err, wantM)
			}
			return
		}
		if err != nil || gotM != wantM.Int64() {
			t.Fatalf("ApplyMultiplier(%d, %d) = %d, %v; want %s", got, bps, gotM, err, wantM)
		}
	})
}
