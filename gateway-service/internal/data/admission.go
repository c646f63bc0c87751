package data

import (
	"context"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
)

// Admission is the Redis admission store as biz.Admitter. Reservations go
// through a coalescer: concurrent requests share pipelined round trips.
type Admission struct{ c *admission.Coalescer }

// NewAdmission returns the adapter over s with senders batches of at most
// maxBatch reservations in flight; Close stops it.
func NewAdmission(s *admission.Store, senders, maxBatch int) *Admission {
	return &Admission{c: admission.NewCoalescer(s, senders, maxBatch)}
}

// Close stops the coalescer (after the reservations handed to it).
func (a *Admission) Close() { a.c.Close() }

// Reserve implements biz.Admitter.
func (a *Admission) Reserve(ctx context.Context, h biz.Hold) (biz.HoldResult, error) {
	res, err := a.c.Reserve(ctx, admission.Reservation{ID: h.ID, UserID: h.UserID, KeyID: h.KeyID,
		KeySpendLimitMicros: h.KeyLimitMicros, Micros: h.Micros, Tokens: h.Tokens, TTL: h.TTL})
	if err != nil {
		return biz.HoldResult{}, err
	}
	out := biz.HoldResult{AvailableMicros: res.AvailableMicros, QuotaRemainingTokens: res.QuotaRemainingTokens}
	switch res.Code {
	case admission.OK:
		out.Code = biz.HoldOK
	case admission.Missing:
		out.Code = biz.HoldMissing
	case admission.Disabled:
		out.Code = biz.HoldDisabled
	case admission.InsufficientBalance:
		out.Code = biz.HoldInsufficientBalance
	case admission.QuotaExceeded:
		out.Code = biz.HoldQuotaExceeded
	default:
		out.Code = biz.HoldKeySpendLimit
	}
	return out, nil
}
