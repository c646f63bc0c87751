package service

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"

	"github.com/gin-gonic/gin"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
)

// idemKeyRe is the Idempotency-Key syntax: 1–128 of [A-Za-z0-9_-:.].
var idemKeyRe = regexp.MustCompile(`^[A-Za-z0-9_\-:.]{1,128}$`)

// userRequest is the body of POST /users and PATCH /users/{id} (absent
// fields keep their value on PATCH).
type userRequest struct {
	Name                      *string `json:"name"`
	Email                     *string `json:"email"`
	Status                    *string `json:"status"`
	Group                     *string `json:"group"`
	CreditLimitMicros         *int64  `json:"credit_limit_micros"`
	QuotaLimitTokens          *int64  `json:"quota_limit_tokens"`
	LowBalanceThresholdMicros *int64  `json:"low_balance_threshold_micros"`
	limitsRequest
}

// apply validates r and writes its fields into u.
func (r userRequest) apply(u *biz.User) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&u.Name, r.Name)
	set(&u.Email, r.Email)
	set(&u.Status, r.Status)
	set(&u.Group, r.Group)
	for _, f := range []struct {
		dst *int64
		v   *int64
		n   string
		max int64
	}{{&u.CreditLimitMicros, r.CreditLimitMicros, "credit_limit_micros", money.MaxAmount},
		{&u.QuotaLimitTokens, r.QuotaLimitTokens, "quota_limit_tokens", money.MaxTokens},
		{&u.LowBalanceThresholdMicros, r.LowBalanceThresholdMicros, "low_balance_threshold_micros", money.MaxAmount}} {
		if f.v == nil {
			continue
		}
		if err := money.CheckAmount(f.n, *f.v, f.max); err != nil {
			return err
		}
		*f.dst = *f.v
	}
	if err := r.limitsRequest.apply(&u.Limits); err != nil {
		return err
	}
	switch {
	case u.Name == "" || len(u.Name) > 200:
		return apperr.New(apperr.ReasonInvalidArgument, "name is required (at most 200 characters)")
	case u.Email != "" && !validEmail(u.Email):
		return apperr.New(apperr.ReasonInvalidArgument, "email is not a valid address")
	case u.Status != biz.StatusActive && u.Status != biz.StatusDisabled:
		return apperr.New(apperr.ReasonInvalidArgument, "status must be active or disabled")
	case !biz.ValidGroup(u.Group):
		return apperr.New(apperr.ReasonInvalidArgument, "group must be 1-64 of [A-Za-z0-9_-]")
	}
	return nil
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && len(s) <= 254
}

// CreateUser is POST /api/v1/billing/users.
func (s *Service) CreateUser(c *gin.Context) {
	var req userRequest
	if err := bind(c, &req); err != nil {
		fail(c, err)
		return
	}
	now := s.opt.Now().UTC()
	u := &biz.User{ID: biz.NewID(biz.PrefixUser), Status: biz.StatusActive, Group: "default",
		PeriodStart: biz.PeriodStart(now), Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := req.apply(u); err != nil {
		fail(c, err)
		return
	}
	if err := s.Users.CreateUser(c.Request.Context(), u); err != nil {
		fail(c, err)
		return
	}
	s.propagate(c, biz.Effects{Mirrors: []biz.Mirror{biz.MirrorOf(u)}})
	c.JSON(http.StatusCreated, u)
}

// GetUser is GET /api/v1/billing/users/{id}.
func (s *Service) GetUser(c *gin.Context) {
	u, err := s.Users.GetUser(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// ListUsers is GET /api/v1/billing/users[?email=].
func (s *Service) ListUsers(c *gin.Context) {
	p, err := page(c)
	if err != nil {
		fail(c, err)
		return
	}
	us, next, err := s.Users.ListUsers(c.Request.Context(), c.Query("email"), p)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, newList(us, next))
}

// PatchUser is PATCH /api/v1/billing/users/{id}: profile, limits, status
// and group. A change of status, group or rate limits publishes
// key.changed for every key of the user: the gateways' key caches hold the
// limits in force.
func (s *Service) PatchUser(c *gin.Context) {
	var req userRequest
	if err := bind(c, &req); err != nil {
		fail(c, err)
		return
	}
	var keysChanged bool
	a, err := s.Accounts.WithAccount(c.Request.Context(), c.Param("id"), func(a *biz.Account) error {
		next := *a.U
		if err := req.apply(&next); err != nil {
			return err
		}
		a.U.Name, a.U.Email = next.Name, next.Email
		rateChanged := a.U.Limits != next.Limits
		a.U.Limits = next.Limits
		var err error
		keysChanged, err = a.SetLimits(next.CreditLimitMicros, next.QuotaLimitTokens, next.LowBalanceThresholdMicros, next.Status, next.Group)
		keysChanged = keysChanged || rateChanged
		return err
	})
	if err != nil {
		fail(c, err)
		return
	}
	eff := biz.EffectsOf(a)
	if keysChanged {
		eff.KeyChanges = append(eff.KeyChanges, events.KeyChanged{UserID: a.U.ID})
	}
	s.propagate(c, eff)
	c.JSON(http.StatusOK, a.U)
}

// moneyRequest is the body of top-up and adjust.
type moneyRequest struct {
	AmountMicros int64  `json:"amount_micros"`
	Note         string `json:"note"`
}

// Topup is POST /api/v1/billing/users/{id}/topup.
func (s *Service) Topup(c *gin.Context) { s.post(c, biz.KindTopup) }

// Adjust is POST /api/v1/billing/users/{id}/adjust.
func (s *Service) Adjust(c *gin.Context) { s.post(c, biz.KindAdjust) }

// post books a top-up (0 < amount ≤ money.MaxAmount) or adjustment (0 <
// |amount| ≤ MaxAmount) under an Idempotency-Key: a replay with the same
// body answers the first result, with another body 409
// IDEMPOTENCY_KEY_REUSED. An amount out of bounds is 400
// AMOUNT_OUT_OF_RANGE; one that would take the balance past
// ±money.MaxBalance is 409 BALANCE_OUT_OF_RANGE. Refusals book nothing and
// are not remembered under the key.
func (s *Service) post(c *gin.Context, kind string) {
	key := c.GetHeader("Idempotency-Key")
	if !idemKeyRe.MatchString(key) {
		fail(c, apperr.New(apperr.ReasonInvalidIdemKey, "Idempotency-Key header required: 1-128 of [A-Za-z0-9_-:.]"))
		return
	}
	var req moneyRequest
	if err := bind(c, &req); err != nil {
		fail(c, err)
		return
	}
	switch {
	case kind == biz.KindTopup && req.AmountMicros <= 0:
		fail(c, apperr.New(apperr.ReasonInvalidAmount, "amount_micros must be > 0"))
		return
	case req.AmountMicros == 0:
		fail(c, apperr.New(apperr.ReasonInvalidAmount, "amount_micros must not be 0"))
		return
	case req.AmountMicros > money.MaxAmount || req.AmountMicros < -money.MaxAmount:
		fail(c, apperr.Newf(apperr.ReasonAmountOutOfRange, "amount_micros must be within ±%d", money.MaxAmount))
		return
	case len(req.Note) > 500:
		fail(c, apperr.New(apperr.ReasonInvalidArgument, "note is at most 500 characters"))
		return
	}
	userID := c.Param("id")
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%s", kind, userID, req.AmountMicros, req.Note))
	res, err := s.Accounts.Post(c.Request.Context(), biz.PostRequest{UserID: userID, Kind: kind, AmountMicros: req.AmountMicros,
		Note: req.Note, IdemKey: key, RequestHash: hex.EncodeToString(sum[:])})
	if err != nil {
		fail(c, err)
		return
	}
	if res.Replayed {
		c.Header("Idempotent-Replayed", "true")
	} else {
		s.propagate(c, res.Effects)
	}
	c.Data(res.Status, "application/json; charset=utf-8", res.Body)
}

// Ledger is GET /api/v1/billing/users/{id}/ledger.
func (s *Service) Ledger(c *gin.Context) {
	p, err := page(c)
	if err != nil {
		fail(c, err)
		return
	}
	id := c.Param("id")
	if _, err := s.Users.GetUser(c.Request.Context(), id); err != nil {
		fail(c, err)
		return
	}
	items, next, err := s.Money.Ledger(c.Request.Context(), id, p)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, newList(items, next))
}
