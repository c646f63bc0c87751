package data

import (
	"context"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission/redisstore"
)

// Admission is the Redis admission store as biz.Admitter. Lease calls go
// through a coalescer: concurrent ones share pipelined round trips.
type Admission struct {
	s *redisstore.Store
	c *redisstore.Coalescer
}

// NewAdmission returns the adapter over s with senders batches of at most
// maxBatch lease calls in flight; Close stops it.
func NewAdmission(s *redisstore.Store, senders, maxBatch int) *Admission {
	return &Admission{s: s, c: redisstore.NewCoalescer(s, senders, maxBatch)}
}

// Close stops the coalescer (after the calls handed to it).
func (a *Admission) Close() { a.c.Close() }

// Lease implements biz.Admitter.
func (a *Admission) Lease(ctx context.Context, h biz.Hold) (biz.HoldResult, error) {
	res, err := a.c.Lease(ctx, admission.Reservation{ID: h.ID, UserID: h.UserID, KeyID: h.KeyID,
		KeySpendLimitMicros: h.KeyLimitMicros, Micros: h.Micros, Tokens: h.Tokens, TTL: h.TTL})
	if err != nil {
		return biz.HoldResult{}, err
	}
	out := biz.HoldResult{AvailableMicros: res.AvailableMicros, QuotaRemainingTokens: res.QuotaRemainingTokens, HeldMicros: res.HeldMicros}
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

// ReleasePart implements biz.Admitter.
func (a *Admission) ReleasePart(ctx context.Context, userID string, p biz.Part) error {
	_, err := a.s.ReleasePart(ctx, userID, admission.PartRelease{ReservationID: p.ReservationID, RequestID: p.RequestID,
		Micros: p.Micros, Tokens: p.Tokens})
	return err
}
