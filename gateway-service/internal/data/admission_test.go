package data

import (
	"testing"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestHoldCode(t *testing.T) {
	for _, tc := range []struct {
		in   admission.Code
		want biz.HoldCode
	}{
		{admission.OK, biz.HoldOK},
		{admission.Missing, biz.HoldMissing},
		{admission.Disabled, biz.HoldDisabled},
		{admission.InsufficientBalance, biz.HoldInsufficientBalance},
		{admission.QuotaExceeded, biz.HoldQuotaExceeded},
		{admission.KeySpendLimit, biz.HoldKeySpendLimit},
	} {
		if got, err := holdCode(tc.in); err != nil || got != tc.want {
			t.Errorf("holdCode(%d) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	// An unknown result is an internal error, not "spend limit reached".
	for _, c := range []admission.Code{-1, 6, 99} {
		if got, err := holdCode(c); apperr.KindOf(err) != apperr.KindInternal {
			t.Errorf("holdCode(%d) = %v, %v; want an internal error", c, got, err)
		}
	}
}
