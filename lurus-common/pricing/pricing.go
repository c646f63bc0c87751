// Package pricing turns token counts into micro-USD. billing-service uses it
// to settle; the gateway uses the same code to estimate the reservation, so
// the two can never disagree on arithmetic. All amounts are int64 micro-USD;
// no float touches money.
package pricing

import (
	"errors"
	"sort"

	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
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
// and prices are treated as 0. A cost that does not fit in an int64 is
// money.ErrOverflow, never a wrapped or saturated value.
func (p Price) Cost(t Tokens) (int64, error) {
	prompt, cached, write := max(t.Prompt, 0), max(t.Cached, 0), max(t.CacheWrite, 0)
	// uncached = prompt − cached − write, clamped at 0; computed in uint64
	// because cached + write may exceed math.MaxInt64.
	var uncached int64
	if c := uint64(cached) + uint64(write); uint64(prompt) > c {
		uncached = int64(uint64(prompt) - c)
	}
	var acc money.U128
	acc.AddMul(uncached, p.InputMicrosPerMTok)
	acc.AddMul(cached, p.CachedInputMicrosPerMTok)
	acc.AddMul(write, p.CacheWriteMicrosPerMTok)
	acc.AddMul(t.Completion, p.OutputMicrosPerMTok)
	return acc.CeilDiv(perMillion)
}

// ApplyMultiplier scales micros by bps basis points, rounding up; a result
// that does not fit is money.ErrOverflow.
func ApplyMultiplier(micros, bps int64) (int64, error) {
	if bps == BasisPoints {
		return micros, nil
	}
	return money.MulDivCeil(micros, bps, BasisPoints)
}

// ErrNoPrice is returned by Table.Cost for a model without a price (and no
// default): such a model is refused, never free.
var ErrNoPrice = errors.New("pricing: no price for model")

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

// Cost prices tokens of model for a user in group: ErrNoPrice when the
// model has no price, money.ErrOverflow when the cost does not fit.
func (t *Table) Cost(model, group string, tok Tokens) (int64, error) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, ErrNoPrice
	}
	c, err := p.Cost(tok)
	if err != nil {
		return 0, err
	}
	return ApplyMultiplier(c, t.Multiplier(group))
}

// CheckAmounts validates p's four per-million-token prices: each must be
// in 0..money.MaxAmount (INVALID_AMOUNT below, AMOUNT_OUT_OF_RANGE above).
func (p Price) CheckAmounts() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"input_micros_per_mtok", p.InputMicrosPerMTok}, {"output_micros_per_mtok", p.OutputMicrosPerMTok},
		{"cached_input_micros_per_mtok", p.CachedInputMicrosPerMTok}, {"cache_write_micros_per_mtok", p.CacheWriteMicrosPerMTok}} {
		if err := money.CheckAmount(f.name, f.v, money.MaxAmount); err != nil {
			return err
		}
	}
	return nil
}
