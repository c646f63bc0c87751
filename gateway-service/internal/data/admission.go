package data

import (
	"context"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
)

// Admission is the Redis admission store as biz.Admitter.
type Admission struct{ s *admission.Store }

// NewAdmission returns the adapter over s.
func NewAdmission(s *admission.Store) *Admission { return &Admission{s: s} }

// Reserve implements biz.Admitter.
func (a *Admission) Reserve(ctx context.Context, h biz.Hold) (biz.HoldResult, error) {
	res, err := a.s.Reserve(ctx, admission.Reservation{ID: h.ID, UserID: h.UserID, KeyID: h.KeyID,
		KeySpendLimitMicros: h.KeyLimitMicros, Micros: h.Micros, Tokens: h.Tokens, TTL: h.TTL})
	if err != nil {
		return 0, err
	}
	switch res.Code {
	case admission.OK:
		return biz.HoldOK, nil
	case admission.Missing:
		return biz.HoldMissing, nil
	case admission.Disabled:
		return biz.HoldDisabled, nil
	case admission.InsufficientBalance:
		return biz.HoldInsufficientBalance, nil
	case admission.QuotaExceeded:
		return biz.HoldQuotaExceeded, nil
	default:
		return biz.HoldKeySpendLimit, nil
	}
}
