package money

import (
	"errors"
	"math"
	"math/big"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestAdd(t *testing.T) {
	for _, tc := range []struct {
		a, b, want int64
		overflow   bool
	}{
		{1, 2, 3, false},
		{math.MaxInt64, 0, math.MaxInt64, false},
		{math.MaxInt64, 1, 0, true},
		{math.MaxInt64, math.MaxInt64, 0, true},
		{math.MinInt64, -1, 0, true},
		{math.MinInt64, math.MinInt64, 0, true},
		{math.MinInt64, math.MaxInt64, -1, false},
		{math.MaxInt64, math.MinInt64, -1, false},
		{-1, math.MinInt64 + 1, math.MinInt64, false},
		// the exploit: two top-ups of 2^62
		{1 << 62, 1 << 62, 0, true},
		{1<<62 - 1, 1 << 62, math.MaxInt64, false},
	} {
		got, err := Add(tc.a, tc.b)
		if tc.overflow != errors.Is(err, ErrOverflow) || !tc.overflow && got != tc.want {
			t.Errorf("Add(%d, %d) = %d, %v; want %d (overflow %v)", tc.a, tc.b, got, err, tc.want, tc.overflow)
		}
	}
	if s, err := Sum(MaxBalance, MaxAmount, -MaxAmount); err != nil || s != MaxBalance {
		t.Errorf("Sum = %d, %v", s, err)
	}
	if _, err := Sum(math.MaxInt64, 1, -1); !errors.Is(err, ErrOverflow) {
		t.Errorf("Sum overflowing in the middle: %v", err)
	}
}

func TestMulDivCeil(t *testing.T) {
	for _, tc := range []struct {
		x, y     int64
		d        uint64
		want     int64
		overflow bool
	}{
		{3, 5, 2, 8, false},
		{-3, 5, 2, 0, false},
		{math.MaxInt64, math.MaxInt64, 1, 0, true},
		{math.MaxInt64, 1, 1, math.MaxInt64, false},
		{math.MaxInt64, 2, 2, math.MaxInt64, false},
		{math.MaxInt64, 3, 2, 0, true},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, false},
		{math.MaxInt64, math.MaxInt64, 1 << 63, math.MaxInt64, false}, // ⌈(2^63−1)²/2^63⌉ = 2^63−1
	} {
		got, err := MulDivCeil(tc.x, tc.y, tc.d)
		if tc.overflow != errors.Is(err, ErrOverflow) || !tc.overflow && got != tc.want {
			t.Errorf("MulDivCeil(%d, %d, %d) = %d, %v; want %d (overflow %v)", tc.x, tc.y, tc.d, got, err, tc.want, tc.overflow)
		}
	}
}

func TestCheckAmount(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		want apperr.Reason
	}{{0, ""}, {MaxAmount, ""}, {MaxAmount + 1, apperr.ReasonAmountOutOfRange}, {1 << 62, apperr.ReasonAmountOutOfRange},
		{math.MaxInt64, apperr.ReasonAmountOutOfRange}, {-1, apperr.ReasonInvalidAmount}, {math.MinInt64, apperr.ReasonInvalidAmount}} {
		err := CheckAmount("x", tc.v, MaxAmount)
		if tc.want == "" && err != nil || tc.want != "" && apperr.ReasonOf(err) != tc.want {
			t.Errorf("CheckAmount(%d) = %v, want %q", tc.v, err, tc.want)
		}
	}
	if apperr.ReasonAmountOutOfRange.Kind().HTTPStatus() != 400 || apperr.ReasonBalanceOutOfRange.Kind().HTTPStatus() != 409 {
		t.Error("AMOUNT_OUT_OF_RANGE must be 400 and BALANCE_OUT_OF_RANGE 409")
	}
}

// The bounds keep every value the admission scripts compute with exact in
// a double (2^53).
func TestBoundsFitDoubles(t *testing.T) {
	if s, err := Sum(MaxBalance, MaxAmount, MaxBalance, MaxAmount); err != nil || s >= 1<<53 {
		t.Fatalf("balance + credit + reserved = %d reaches 2^53", s)
	}
}

// FuzzAdd: Add equals the exact sum whenever it fits, else ErrOverflow.
func FuzzAdd(f *testing.F) {
	f.Add(int64(1<<62), int64(1<<62))
	f.Add(int64(math.MinInt64), int64(-1))
	f.Add(int64(math.MaxInt64), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, a, b int64) {
		want := new(big.Int).Add(big.NewInt(a), big.NewInt(b))
		got, err := Add(a, b)
		if !want.IsInt64() {
			if !errors.Is(err, ErrOverflow) {
				t.Fatalf("Add(%d, %d) = %d, %v; want ErrOverflow", a, b, got, err)
			}
			return
		}
		if err != nil || got != want.Int64() {
			t.Fatalf("Add(%d, %d) = %d, %v; want %s", a, b, got, err, want)
		}
	})
}

// FuzzMulDivCeil: MulDivCeil equals ⌈max(x,0)·max(y,0)/d⌉ whenever it
// fits, else ErrOverflow.
func FuzzMulDivCeil(f *testing.F) {
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), uint64(1))
	f.Add(int64(math.MaxInt64), int64(3), uint64(2))
	f.Add(int64(10_000_000), MaxAmount, uint64(1_000_000))
	f.Fuzz(func(t *testing.T, x, y int64, d uint64) {
		if d == 0 {
			return
		}
		want := new(big.Int).Mul(big.NewInt(max(x, 0)), big.NewInt(max(y, 0)))
		bd := new(big.Int).SetUint64(d)
		q, r := new(big.Int).QuoRem(want, bd, new(big.Int))
		if r.Sign() != 0 {
			q.Add(q, big.NewInt(1))
		}
		got, err := MulDivCeil(x, y, d)
		if !q.IsInt64() {
			if !errors.Is(err, ErrOverflow) {
				t.Fatalf("MulDivCeil(%d, %d, %d) = %d, %v; want ErrOverflow", x, y, d, got, err)
			}
			return
		}
		if err != nil || got != q.Int64() {
			t.Fatalf("MulDivCeil(%d, %d, %d) = %d, %v; want %s", x, y, d, got, err, q)
		}
	})
}
