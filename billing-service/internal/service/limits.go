package service

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// RateUsage reads the rate-limit counters the gateways keep in Redis
// (ratelimit/redisstore), for /me.
type RateUsage interface {
	Usage(ctx context.Context, subjects ...string) ([]ratelimit.Usage, error)
}

// limitsRequest is the rate-limit part of the user and key bodies (absent
// fields keep their value on PATCH; 0 means no limit of its own).
type limitsRequest struct {
	RPMLimit         *int64 `json:"rpm_limit"`
	TPMLimit         *int64 `json:"tpm_limit"`
	ConcurrencyLimit *int64 `json:"concurrency_limit"`
}

// apply checks each field given (0..ratelimit.MaxLimit, else 400
// INVALID_ARGUMENT naming it) and writes it into l.
func (r limitsRequest) apply(l *ratelimit.Limits) error {
	for _, f := range []struct {
		dst  *int64
		v    *int64
		name string
	}{{&l.RPM, r.RPMLimit, "rpm_limit"}, {&l.TPM, r.TPMLimit, "tpm_limit"}, {&l.Concurrency, r.ConcurrencyLimit, "concurrency_limit"}} {
		if f.v == nil {
			continue
		}
		if err := ratelimit.CheckLimit(f.name, *f.v); err != nil {
			return apperr.Wrap(err, apperr.ReasonInvalidArgument, err.Error())
		}
		*f.dst = *f.v
	}
	return nil
}

// meJSON is the body of GET /api/v1/billing/me: the sync state and the
// rate limits in force.
type meJSON struct {
	internalapi.SyncState
	Limits meLimitsJSON `json:"limits"`
}

// meLimitsJSON are the limits of the key used and of its user.
type meLimitsJSON struct {
	Key  limitJSON `json:"key"`
	User limitJSON `json:"user"`
}

// limitJSON is one subject's limits in force and what is left of them. A
// remaining or in-use figure is null when the kind has no limit (the
// gateway counts nothing then) or when the counters could not be read.
type limitJSON struct {
	RPMLimit         int64  `json:"rpm_limit"`
	RPMRemaining     *int64 `json:"rpm_remaining"`
	TPMLimit         int64  `json:"tpm_limit"`
	TPMRemaining     *int64 `json:"tpm_remaining"`
	ConcurrencyLimit int64  `json:"concurrency_limit"`
	ConcurrencyInUse *int64 `json:"concurrency_in_use"`
	// ResetMs is the time until the current one-minute window ends.
	ResetMs int64 `json:"reset_ms"`
}

func newLimitJSON(l ratelimit.Limits, u *ratelimit.Usage, reset time.Duration) limitJSON {
	out := limitJSON{RPMLimit: l.RPM, TPMLimit: l.TPM, ConcurrencyLimit: l.Concurrency, ResetMs: reset.Milliseconds()}
	if u == nil {
		return out
	}
	left := func(limit, used int64) *int64 {
		if limit <= 0 {
			return nil
		}
		v := max(limit-used, 0)
		return &v
	}
	out.RPMRemaining, out.TPMRemaining = left(l.RPM, u.Requests), left(l.TPM, u.Tokens)
	if l.Concurrency > 0 {
		n := u.InFlight
		out.ConcurrencyInUse = &n
	}
	return out
}

// Me is GET /api/v1/billing/me with the user's own API key: the fields
// of DESIGN.md §9, plus last_event_id and as_of (the sync state), plus
// the rate limits in force for the key and its user with what remains in
// the current window. When Redis cannot answer, the limits are still
// shown and the remaining figures are null.
func (s *Service) Me(c *gin.Context) {
	ctx := c.Request.Context()
	k := c.MustGet(ctxKey).(*biz.Key)
	st, err := s.state(ctx, k.UserID, "me")
	if err != nil {
		fail(c, err)
		return
	}
	u := c.MustGet(ctxUser).(*biz.User)
	keyLim, userLim := s.opt.Limits.Key(k, u), s.opt.Limits.User(u)
	var keyUsed, userUsed *ratelimit.Usage
	if keyLim.Any() || userLim.Any() { // no limit: the gateway counts nothing, nothing to read
		used, err := s.RateUsage.Usage(ctx, ratelimit.KeySubject(k.ID), ratelimit.UserSubject(u.ID))
		if err == nil && len(used) == 2 {
			keyUsed, userUsed = &used[0], &used[1]
		} else {
			s.Log.Warn("reading rate-limit counters failed", "err", err, "request_id", edge.RequestID(c.Request.Context()))
		}
	}
	reset := ratelimit.UntilReset(s.opt.Now())
	c.JSON(http.StatusOK, meJSON{SyncState: st, Limits: meLimitsJSON{
		Key: newLimitJSON(keyLim, keyUsed, reset), User: newLimitJSON(userLim, userUsed, reset)}})
}
