// Package pricing turns token counts into micro-USD. billing-service uses it
// to settle; the gateway uses the same code to estimate the reservation, so
// the two can never disagree on arithmetic. All amounts are int64 micro-USD;
// no float touches money.
package pricing

import (
	"math"
	"math/bits"
	"sort"

	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
)

// Price is a model's price per million tokens, in micro-USD.
type Price struct {
	ID                       string `json:"id"`
	ModelPattern             string `json:"model_pattern"`
	InputMicrosPerMTok       int64  `json:"input_micros_per_mtok"`
	OutputMicrosPerMTok      int64  `json:"output_micros_per_mtok"`
	CachedInputMicrosPerMTok int64  `json:"cached_input_micros_per_mtok"`
	CacheWriteMicrosPerMTok  int64  `json:"cache_write_micros_per_mtok"`
}

// Tokens are the counts of one request, normalized as in events.Usage:
// Prompt includes Cached and CacheWrite; Completion includes Reasoning.
type Tokens struct {
	Prompt     int64
	Completion int64
	Cached     int64
	CacheWrite int64
}

// BasisPoints is the unit of group multipliers: 10000 = ×1.
const BasisPoints = 10000

const perMillion = 1_000_000

// Cost returns the price of t, rounded up to a whole micro-USD (a request
// that used tokens never costs 0 unless its price is 0). Negative counts
// are treated as 0; the result saturates at math.MaxInt64.
func (p Price) Cost(t Tokens) int64 {
	prompt, cached, write := pos(t.Prompt), pos(t.Cached), pos(t.CacheWrite)
	var uncached uint64
	if prompt > cached+write {
		uncached = prompt - cached - write
	}
	var acc u128
	acc.addMul(uncached, pos(p.InputMicrosPerMTok))
	acc.addMul(cached, pos(p.CachedInputMicrosPerMTok))
	acc.addMul(write, pos(p.CacheWriteMicrosPerMTok))
	acc.addMul(pos(t.Completion), pos(p.OutputMicrosPerMTok))
	return acc.ceilDiv(perMillion)
}

// ApplyMultiplier scales micros by bps basis points, rounding up.
func ApplyMultiplier(micros, bps int64) int64 {
	if bps == BasisPoints {
		return micros
	}
	var acc u128
	acc.addMul(pos(micros), pos(bps))
	return acc.ceilDiv(BasisPoints)
}

func pos(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// u128 is an unsigned 128-bit accumulator, so products of large token counts
// and prices cannot overflow before the division.
type u128 struct{ hi, lo uint64 }

func (a *u128) addMul(x, y uint64) {
	hi, lo := bits.Mul64(x, y)
	var c uint64
	a.lo, c = bits.Add64(a.lo, lo, 0)
	a.hi, _ = bits.Add64(a.hi, hi, c)
}

func (a u128) ceilDiv(d uint64) int64 {
	if a.hi >= d {
		return math.MaxInt64
	}
	q, r := bits.Div64(a.hi, a.lo, d)
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// Table finds the price of a model: an exact pattern first, otherwise the
// most specific matching glob, otherwise the default (if configured).
type Table struct {
	exact   map[string]Price
	globs   []Price
	def     *Price
	groups  map[string]int64
	version int64
}

// NewTable builds a table. def may be nil (a model without a price is then
// refused); groups maps a user group to its multiplier in basis points.
func NewTable(prices []Price, def *Price, groups map[string]int64, version int64) *Table {
	t := &Table{exact: map[string]Price{}, def: def, groups: groups, version: version}
	for _, p := range prices {
		if modelglob.IsGlob(p.ModelPattern) {
			t.globs = append(t.globs, p)
		} else {
			t.exact[p.ModelPattern] = p
		}
	}
	sort.SliceStable(t.globs, func(i, j int) bool {
		return modelglob.Specificity(t.globs[i].ModelPattern) > modelglob.Specificity(t.globs[j].ModelPattern)
	})
	return t
}

// Version is the version the table was built with.
func (t *Table) Version() int64 { return t.version }

// Lookup returns the price for model.
func (t *Table) Lookup(model string) (Price, bool) {
	if p, ok := t.exact[model]; ok {
		return p, true
	}
	for _, p := range t.globs {
		if modelglob.Match(p.ModelPattern, model) {
			return p, true
		}
	}
	if t.def != nil {
		return *t.def, true
	}
	return Price{}, false
}

// Multiplier returns the group's multiplier in basis points (×1 when the
// group has none).
func (t *Table) Multiplier(group string) int64 {
	if m, ok := t.groups[group]; ok && m >= 0 {
		return m
	}
	return BasisPoints
}

// Cost prices tokens of model for a user in group. ok is false when the
// model has no price.
func (t *Table) Cost(model, group string, tok Tokens) (micros int64, ok bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	return ApplyMultiplier(p.Cost(tok), t.Multiplier(group)), true
}
