package biz

import (
	"math"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// TestEstimateNeverWraps: a hold whose cost or token count does not fit
// in an int64 is refused with AMOUNT_OUT_OF_RANGE (400), never reserved as
// a wrapped (negative or small) amount.
func TestEstimateNeverWraps(t *testing.T) {
	b := NewPriceBook(EstimateConfig{BytesPerToken: 4, DefaultMaxOutput: 4096})
	b.Load(pricing.NewTable([]pricing.Price{{ModelPattern: "m", InputMicrosPerMTok: 1, OutputMicrosPerMTok: money.MaxAmount},
		{ModelPattern: "free-output", InputMicrosPerMTok: 1}}, nil, nil, 1))
	for _, tc := range []struct {
		name      string
		model     string
		maxOutput int64
		want      apperr.Reason
	}{
		{"cost overflows", "m", math.MaxInt64 / 2, apperr.ReasonAmountOutOfRange},
		{"tokens overflow", "free-output", math.MaxInt64, apperr.ReasonAmountOutOfRange},
		{"ordinary cap", "m", 1000, ""},
	} {
		micros, tokens, err := b.Estimate(tc.model, "", 400, tc.maxOutput)
		if tc.want != "" {
			if apperr.ReasonOf(err) != tc.want || apperr.KindOf(err).HTTPStatus() != 400 {
				t.Errorf("%s: %d µ$ %d tokens, %v; want %s", tc.name, micros, tokens, err, tc.want)
			}
			continue
		}
		if err != nil || micros != 1000*money.MaxAmount/1_000_000+1 || tokens != 1101 {
			t.Errorf("%s: %d µ$ %d tokens, %v", tc.name, micros, tokens, err)
		}
	}
	if _, _, err := b.Estimate("unpriced", "", 10, 1); apperr.ReasonOf(err) != apperr.ReasonPriceNotFound {
		t.Errorf("unpriced model: %v", err)
	}
}
