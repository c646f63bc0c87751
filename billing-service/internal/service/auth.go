package service

import (
	"github.com/gin-gonic/gin"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
)

// ctxKey and ctxUser are the gin context keys of the authenticated API
// key (*biz.Key) and of its user as KeyByHash read it (*biz.User: id,
// status, group and rate limits only).
const (
	ctxKey  = "api_key"
	ctxUser = "api_key_user"
)

// AdminAuth requires Authorization: Bearer $LURUS_ADMIN_TOKEN.
func (s *Service) AdminAuth() gin.HandlerFunc { return bearer(s.opt.AdminToken) }

// InternalAuth requires Authorization: Bearer $LURUS_INTERNAL_TOKEN.
func (s *Service) InternalAuth() gin.HandlerFunc { return bearer(s.opt.InternalToken) }

func bearer(token string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := edge.CheckToken(c.GetHeader("Authorization"), token); err != nil {
			fail(c, err)
			return
		}
		c.Next()
	}
}

// UserAuth authenticates the user's own API key (Authorization: Bearer
// sk-lurus-…) with the one key authorization every service applies
// (lurus-common/keyauth): unknown keys are 401 INVALID_CREDENTIALS, revoked
// ones 401 KEY_REVOKED, a disabled user 403 USER_DISABLED, an expired key
// 403 KEY_EXPIRED, a client address outside the key's allow-list 403
// IP_NOT_ALLOWED (the address found through http.trusted_proxies).
// billing is the authority: it reads PostgreSQL on every request, so a
// change applies to the next one. A client address with too many failed
// authentications is refused first, 429 RATE_LIMITED with Retry-After,
// without a lookup (lurus-common/authguard).
func (s *Service) UserAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		client := s.opt.ClientIP.FromRequest(c.Request)
		if err := s.opt.Guard.Check(client); err != nil {
			fail(c, err)
			return
		}
		info, k, u, err := s.userKey(c)
		if err == nil {
			err = info.Authorize(client, s.opt.Now())
		}
		if err != nil {
			s.opt.Guard.Observe(client, err)
			fail(c, err)
			return
		}
		c.Set(ctxKey, k)
		c.Set(ctxUser, u)
		c.Next()
	}
}

// userKey reads and verifies the request's Bearer key.
func (s *Service) userKey(c *gin.Context) (keyauth.Info, *biz.Key, *biz.User, error) {
	raw, ok := edge.BearerToken(c.GetHeader("Authorization"))
	if !ok || raw == "" {
		return keyauth.Info{}, nil, nil, apperr.New(apperr.ReasonMissingCredentials, "Authorization: Bearer <API key> required")
	}
	if !apikey.WellFormed(raw) {
		return keyauth.Info{}, nil, nil, apperr.New(apperr.ReasonInvalidCredentials, "invalid API key")
	}
	k, u, err := s.verify(c, apikey.Hash(s.opt.KeyPepper, raw))
	if err != nil {
		return keyauth.Info{}, nil, nil, err
	}
	return s.keyInfo(k, u), k, u, nil
}

// verify looks a key up by its keyed hash: unknown → INVALID_CREDENTIALS,
// revoked → KEY_REVOKED.
func (s *Service) verify(c *gin.Context, hash string) (*biz.Key, *biz.User, error) {
	k, u, err := s.Keys.KeyByHash(c.Request.Context(), hash)
	if err != nil {
		return nil, nil, err
	}
	if k.Status != biz.KeyActive {
		return nil, nil, apperr.New(apperr.ReasonKeyRevoked, "API key revoked")
	}
	return k, u, nil
}

// keyInfo is a stored key as keyauth.Authorize judges it.
func (s *Service) keyInfo(k *biz.Key, u *biz.User) keyauth.Info {
	info := keyauth.Info{KeyID: k.ID, UserID: k.UserID, UserGroup: u.Group, UserActive: u.Active(), Models: k.Models,
		AllowedIPs: keyauth.ParseAllowedIPs(k.AllowedIPs), SpendLimitMicros: k.SpendLimitMicros,
		KeyLimits: s.opt.Limits.Key(k, u), UserLimits: s.opt.Limits.User(u)}
	if k.ExpiresAt != nil {
		info.ExpiresAt = *k.ExpiresAt
	}
	return info
}

// ownUser checks that the path's :user_id is the authenticated key's user.
func ownUser(c *gin.Context) (string, bool) {
	k := c.MustGet(ctxKey).(*biz.Key)
	id := c.Param("user_id")
	if id != k.UserID {
		fail(c, apperr.New(apperr.ReasonForbidden, "this API key belongs to another user"))
		return "", false
	}
	return id, true
}
