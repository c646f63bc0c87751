// Package money is checked int64 arithmetic for micro-USD amounts and
// token counts, and the bounds every service holds amounts to. Money is an
// integer count of micro-USD (DESIGN.md §5); an int64 wraps silently, so
// every sum that an outsider can influence goes through Add, and every
// amount an admin or a client sets is held to MaxAmount first.
//
// The bounds also keep the Redis admission mirror exact: its Lua scripts
// compute in doubles, which represent every integer up to 2^53 ≈ 9.0·10^15.
// A balance is held to ±MaxBalance by what an admin may book, and usage
// lowers it by at most one request's cost ceiling at a time, so every value
// the scripts add stays far below 2^53.
package money

import (
	"errors"
	"math"
	"math/bits"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// MaxAmount (10^13 micro-USD, $10 million) bounds every amount set from
// outside: a top-up, the absolute value of an adjustment, a credit limit, a
// low-balance threshold, a key's spend limit and each per-million-token
// price. Far above any real value, far below where int64 sums could wrap.
const MaxAmount int64 = 10_000_000_000_000

// MaxBalance (10^15 micro-USD, $1 billion) bounds how far top-ups and
// adjustments may take a balance either way: 10^5 maximal top-ups, and 9×
// below 2^53, where the admission mirror's doubles stop being exact.
const MaxBalance int64 = 1_000_000_000_000_000

// MaxTokens (10^13) bounds a token quota set by an admin.
const MaxTokens int64 = 10_000_000_000_000

// ErrOverflow is returned when a result does not fit in an int64. It is
// never a wrapped or saturated value: the caller refuses the operation.
var ErrOverflow = errors.New("money: result out of int64 range")

// Add returns a + b, or ErrOverflow when the sum does not fit.
func Add(a, b int64) (int64, error) {
	s := a + b
	// Overflow happened iff both operands have the sign the sum lacks.
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, ErrOverflow
	}
	return s, nil
}

// Sum adds vs in order, failing on the first sum that does not fit.
func Sum(vs ...int64) (int64, error) {
	var s int64
	for _, v := range vs {
		var err error
		if s, err = Add(s, v); err != nil {
			return 0, err
		}
	}
	return s, nil
}

// MulDivCeil returns ⌈x·y / d⌉ computed over 128 bits, or ErrOverflow when
// the quotient does not fit in an int64. Negative x or y count as 0 (token
// counts and prices are never negative); d must be > 0.
func MulDivCeil(x, y int64, d uint64) (int64, error) {
	var a U128
	a.AddMul(x, y)
	return a.CeilDiv(d)
}

// U128 is an unsigned 128-bit accumulator of products, so a sum of
// token × price terms cannot wrap before it is divided.
type U128 struct{ hi, lo uint64 }

// AddMul adds x·y to a; negative x or y count as 0. Adding more than 2^128
// in all is not possible with int64 operands and fewer than 2^64 terms.
func (a *U128) AddMul(x, y int64) {
	hi, lo := bits.Mul64(nonNeg(x), nonNeg(y))
	var c uint64
	a.lo, c = bits.Add64(a.lo, lo, 0)
	a.hi, _ = bits.Add64(a.hi, hi, c)
}

// CeilDiv returns ⌈a / d⌉, or ErrOverflow when it exceeds math.MaxInt64.
// d must be > 0.
func (a U128) CeilDiv(d uint64) (int64, error) {
	if a.hi >= d { // the quotient needs more than 64 bits
		return 0, ErrOverflow
	}
	q, r := bits.Div64(a.hi, a.lo, d)
	if r != 0 {
		if q == math.MaxUint64 {
			return 0, ErrOverflow
		}
		q++
	}
	if q > math.MaxInt64 {
		return 0, ErrOverflow
	}
	return int64(q), nil
}

func nonNeg(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// CheckAmount validates an amount field set from outside: INVALID_AMOUNT
// when it is negative, AMOUNT_OUT_OF_RANGE when it exceeds max.
func CheckAmount(field string, v, max int64) error {
	switch {
	case v < 0:
		return apperr.Newf(apperr.ReasonInvalidAmount, "%s must be >= 0", field)
	case v > max:
		return apperr.Newf(apperr.ReasonAmountOutOfRange, "%s must be <= %d", field, max)
	}
	return nil
}
