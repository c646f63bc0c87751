package biz

import (
	"errors"
	"sync/atomic"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// EstimateConfig sizes reservations.
type EstimateConfig struct {
	// BytesPerToken converts body bytes into prompt tokens.
	BytesPerToken int
	// DefaultMaxOutput is the output cap when a request sets none.
	DefaultMaxOutput int64
	// ModelMaxOutput overrides DefaultMaxOutput per model glob.
	ModelMaxOutput map[string]int64
}

// PriceBook holds the current price table (from billing) and estimates
// the cost of a request before it is relayed.
type PriceBook struct {
	cfg   EstimateConfig
	table atomic.Pointer[pricing.Table]
}

// NewPriceBook returns a book with no prices (every model refused until
// Load).
func NewPriceBook(cfg EstimateConfig) *PriceBook {
	b := &PriceBook{cfg: cfg}
	b.table.Store(pricing.NewTable(nil, nil, nil, 0))
	return b
}

// Load replaces the table.
func (b *PriceBook) Load(t *pricing.Table) { b.table.Store(t) }

// Table returns the table in use.
func (b *PriceBook) Table() *pricing.Table { return b.table.Load() }

// Estimate returns the hold for a request: prompt tokens estimated as
// bodyBytes / BytesPerToken (no tokenizer on the hot path; JSON syntax
// makes this high, the safe side for a hold) plus the output cap, priced
// for the user's group. A model without price (and no default) is
// refused with PRICE_NOT_FOUND (404).
func (b *PriceBook) Estimate(model, group string, bodyBytes int, maxOutput int64, hasOutput bool) (micros, tokens int64, err error) {
	prompt := int64(bodyBytes/b.cfg.BytesPerToken) + 1
	var out int64
	if hasOutput {
		out = maxOutput
		if out <= 0 {
			out = b.maxOutput(model)
		}
	}
	micros, err = b.table.Load().Cost(model, group, pricing.Tokens{Prompt: prompt, Completion: out})
	if errors.Is(err, pricing.ErrNoPrice) {
		return 0, 0, apperr.Newf(apperr.ReasonPriceNotFound, "model %q has no price", model)
	}
	if err == nil {
		tokens, err = money.Add(prompt, out)
	}
	if err != nil { // a hold that does not fit in an int64 is refused, never wrapped
		return 0, 0, apperr.Wrap(err, apperr.ReasonAmountOutOfRange, "the request's output cap is too large to reserve")
	}
	return micros, tokens, nil
}

func (b *PriceBook) maxOutput(model string) int64 {
	if v, ok := b.cfg.ModelMaxOutput[model]; ok {
		return v
	}
	best, bestSpec := b.cfg.DefaultMaxOutput, -1
	for p, v := range b.cfg.ModelMaxOutput {
		if s := modelglob.Specificity(p); s > bestSpec && modelglob.Match(p, model) {
			best, bestSpec = v, s
		}
	}
	return best
}
