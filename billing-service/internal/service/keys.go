package service

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
	"github.com/lurus-switch/lurus-switch/lurus-common/money"
)

// keyRequest is the body of key create and PATCH (absent fields keep
// their value on PATCH; "expires_at": null clears the expiry).
type keyRequest struct {
	Name             *string   `json:"name"`
	Models           *[]string `json:"models"`
	AllowedIPs       *[]string `json:"allowed_ips"`
	ExpiresAt        optTime   `json:"expires_at"`
	SpendLimitMicros *int64    `json:"spend_limit_micros"`
	limitsRequest
}

// optTime lets PATCH tell "expires_at": null (clear) from an absent field
// (keep): encoding/json calls UnmarshalJSON for null too.
type optTime struct {
	set bool
	t   *time.Time
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *optTime) UnmarshalJSON(b []byte) error {
	n.set = true
	if string(b) == "null" {
		n.t = nil
		return nil
	}
	var t time.Time
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	n.t = &t
	return nil
}

func (r keyRequest) apply(k *biz.Key) error {
	if r.Name != nil {
		if len(*r.Name) > 200 {
			return apperr.New(apperr.ReasonInvalidArgument, "name is at most 200 characters")
		}
		k.Name = *r.Name
	}
	if r.Models != nil {
		for _, m := range *r.Models {
			if err := modelglob.Validate(m); err != nil {
				return apperr.Wrap(err, apperr.ReasonInvalidGlob, "invalid model pattern "+m)
			}
		}
		k.Models = *r.Models
	}
	if r.AllowedIPs != nil {
		out := make([]string, 0, len(*r.AllowedIPs))
		for _, s := range *r.AllowedIPs {
			p, err := parseCIDR(s)
			if err != nil {
				return apperr.Newf(apperr.ReasonInvalidArgument, "allowed_ips: %q is not an IP address or CIDR", s)
			}
			out = append(out, p.String())
		}
		k.AllowedIPs = out
	}
	if r.ExpiresAt.set {
		k.ExpiresAt = nil
		if r.ExpiresAt.t != nil {
			t := r.ExpiresAt.t.UTC()
			k.ExpiresAt = &t
		}
	}
	if r.SpendLimitMicros != nil {
		if err := money.CheckAmount("spend_limit_micros", *r.SpendLimitMicros, money.MaxAmount); err != nil {
			return err
		}
		k.SpendLimitMicros = *r.SpendLimitMicros
	}
	if err := r.limitsRequest.apply(&k.Limits); err != nil {
		return err
	}
	if k.Models == nil {
		k.Models = []string{}
	}
	if k.AllowedIPs == nil {
		k.AllowedIPs = []string{}
	}
	return nil
}

// parseCIDR accepts a CIDR or a bare address (a /32 or /128).
func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// createdKey is the answer to key creation: the only time Key is shown.
type createdKey struct {
	*biz.Key
	Secret string `json:"key"`
}

// CreateKey is POST /api/v1/billing/users/{id}/keys.
func (s *Service) CreateKey(c *gin.Context) {
	var req keyRequest
	if err := bind(c, &req); err != nil {
		fail(c, err)
		return
	}
	now := s.opt.Now().UTC()
	secret := apikey.Generate()
	k := &biz.Key{ID: biz.NewID(biz.PrefixKey), UserID: c.Param("id"), Prefix: apikey.Display(secret),
		Status: biz.KeyActive, CreatedAt: now, UpdatedAt: now}
	if err := req.apply(k); err != nil {
		fail(c, err)
		return
	}
	if err := s.Keys.CreateKey(c.Request.Context(), k, apikey.Hash(s.opt.KeyPepper, secret)); err != nil {
		fail(c, err)
		return
	}
	s.propagate(c, biz.Effects{KeyChanges: []events.KeyChanged{{KeyID: k.ID, UserID: k.UserID}}})
	c.JSON(http.StatusCreated, createdKey{Key: k, Secret: secret})
}

// ListKeys is GET /api/v1/billing/users/{id}/keys (display prefixes only).
func (s *Service) ListKeys(c *gin.Context) {
	if _, err := s.Users.GetUser(c.Request.Context(), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	ks, err := s.Keys.ListKeys(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, newList(ks, ""))
}

// GetKey is GET /api/v1/billing/keys/{key_id}.
func (s *Service) GetKey(c *gin.Context) {
	k, err := s.Keys.GetKey(c.Request.Context(), c.Param("key_id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, k)
}

// PatchKey is PATCH /api/v1/billing/keys/{key_id}.
func (s *Service) PatchKey(c *gin.Context) {
	var req keyRequest
	if err := bind(c, &req); err != nil {
		fail(c, err)
		return
	}
	s.changeKey(c, req.apply)
}

// RevokeKey is DELETE /api/v1/billing/keys/{key_id}: the key is revoked
// (kept for the ledger's history), not deleted.
func (s *Service) RevokeKey(c *gin.Context) {
	s.changeKey(c, func(k *biz.Key) error {
		k.Status = biz.KeyRevoked
		return nil
	})
}

func (s *Service) changeKey(c *gin.Context, fn func(k *biz.Key) error) {
	k, err := s.Keys.UpdateKey(c.Request.Context(), c.Param("key_id"), fn)
	if err != nil {
		fail(c, err)
		return
	}
	s.propagate(c, biz.Effects{KeyChanges: []events.KeyChanged{{KeyID: k.ID, UserID: k.UserID}}})
	c.JSON(http.StatusOK, k)
}

// VerifyKey is POST /internal/v1/keys/verify for the gateway, log and
// sync services, asked by the key's peppered hash (key_hash; the key itself
// is still accepted from older callers): unknown keys are 401
// INVALID_CREDENTIALS, revoked ones 401 KEY_REVOKED. A disabled user or an
// expired key is answered 200 with user_active and expires_at: the caller's
// keyauth.Authorize refuses it (403), so its cache can hold the answer.
func (s *Service) VerifyKey(c *gin.Context) {
	var req internalapi.VerifyKeyRequest
	if err := bind(c, &req); err != nil {
		fail(c, err)
		return
	}
	hash := req.KeyHash
	switch {
	case hash != "" && req.Key != "":
		fail(c, apperr.New(apperr.ReasonInvalidArgument, "send key_hash or key, not both"))
		return
	case hash == "" && apikey.WellFormed(req.Key):
		hash = apikey.Hash(s.opt.KeyPepper, req.Key)
	case hash == "":
		fail(c, apperr.New(apperr.ReasonInvalidCredentials, "invalid API key"))
		return
	}
	k, u, err := s.verify(c, hash)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, internalapi.VerifyKeyResponse{KeyID: k.ID, UserID: k.UserID, UserGroup: u.Group,
		UserActive: u.Active(), ExpiresAt: k.ExpiresAt, Models: k.Models, AllowedIPs: k.AllowedIPs,
		SpendLimitMicros: k.SpendLimitMicros, KeyLimits: s.opt.Limits.Key(k, u), UserLimits: s.opt.Limits.User(u)})
}
