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
	// ModelMaxOutput is the output limit per model glob: the most
	// specific matching pattern wins (the smaller limit between equally
	// specific ones). It caps what a request may ask for, and is the cap
	// of a request that sets none.
	ModelMaxOutput map[string]int64
	// DefaultMaxOutput is the limit of a model no pattern matches.
	DefaultMaxOutput int64
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

// OutputCap is the output cap of a request for model whose client asked
// for at most client tokens (0: no cap asked): the smaller of that and
// the model's limit. The relay tells upstream exactly this cap and the
// hold prices it.
func (b *PriceBook) OutputCap(model string, client int64) int64 {
	limit := b.maxOutput(model)
	if client > 0 && client < limit {
		return client
	}
	return limit
}

// Estimate returns the hold for a request: prompt tokens estimated as
// bodyBytes / BytesPerToken (no tokenizer on the hot path; JSON syntax
// makes this high, the safe side for a hold) plus output tokens (the
// output cap × choices; 0 for endpoints without output), priced for the
// user's group. A model without price (and no default) is refused with
// PRICE_NOT_FOUND (404).
func (b *PriceBook) Estimate(model, group string, bodyBytes int, out int64) (micros, tokens int64, err error) {
	prompt := int64(bodyBytes/b.cfg.BytesPerToken) + 1
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
		if !modelglob.Match(p, model) {
			continue
		}
		if s := modelglob.Specificity(p); s > bestSpec || s == bestSpec && v < best {
			best, bestSpec = v, s
		}
	}
	return best
}
