package data

import (
	"context"
	"fmt"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission/redisstore"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
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
	code, err := holdCode(res.Code)
	if err != nil {
		return biz.HoldResult{}, err
	}
	return biz.HoldResult{Code: code, AvailableMicros: res.AvailableMicros, QuotaRemainingTokens: res.QuotaRemainingTokens,
		HeldMicros: res.HeldMicros}, nil
}

// holdCode maps the admission script's result code. A code it does not
// know (a script newer or older than this gateway) is an internal error,
// not a refusal the client would be told is theirs.
func holdCode(c admission.Code) (biz.HoldCode, error) {
	switch c {
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
	case admission.KeySpendLimit:
		return biz.HoldKeySpendLimit, nil
	}
	return 0, apperr.Internal(fmt.Errorf("admission: unknown result code %d", c))
}

// ReleasePart implements biz.Admitter.
func (a *Admission) ReleasePart(ctx context.Context, userID string, p biz.Part) error {
	_, err := a.s.ReleasePart(ctx, userID, admission.PartRelease{ReservationID: p.ReservationID, RequestID: p.RequestID,
		Micros: p.Micros, Tokens: p.Tokens})
	return err
}
