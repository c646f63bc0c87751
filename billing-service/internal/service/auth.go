package service

import (
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// ctxKey is the gin context key of the authenticated API key.
const ctxKey = "api_key"

// AdminAuth requires Authorization: Bearer $LURUS_ADMIN_TOKEN.
func (s *Service) AdminAuth() gin.HandlerFunc { return bearer(s.opt.AdminToken) }

// InternalAuth requires Authorization: Bearer $LURUS_INTERNAL_TOKEN.
func (s *Service) InternalAuth() gin.HandlerFunc { return bearer(s.opt.InternalToken) }

func bearer(token string) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		if h == "" {
			fail(c, apperr.New(apperr.ReasonMissingCredentials, "Authorization: Bearer token required"))
			return
		}
		if !internalapi.CheckBearer(h, token) {
			fail(c, apperr.New(apperr.ReasonInvalidCredentials, "invalid token"))
			return
		}
		c.Next()
	}
}

// UserAuth authenticates the user's own API key (Authorization: Bearer
// sk-lurus-…). Unknown keys are 401 INVALID_CREDENTIALS, revoked ones 401
// KEY_REVOKED, expired ones 403 KEY_EXPIRED.
func (s *Service) UserAuth() gin.HandlerFunc {
	return func(c *gin.Context) {
		raw, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok || raw == "" {
			fail(c, apperr.New(apperr.ReasonMissingCredentials, "Authorization: Bearer <API key> required"))
			return
		}
		k, err := s.verify(c, raw)
		if err != nil {
			fail(c, err)
			return
		}
		if !k.Usable(s.opt.Now()) {
			fail(c, apperr.New(apperr.ReasonKeyExpired, "API key expired"))
			return
		}
		c.Set(ctxKey, k)
		c.Next()
	}
}

// verify looks a key up by its keyed hash: unknown → INVALID_CREDENTIALS,
// revoked → KEY_REVOKED.
func (s *Service) verify(c *gin.Context, raw string) (*biz.Key, error) {
	if !apikey.WellFormed(raw) {
		return nil, apperr.New(apperr.ReasonInvalidCredentials, "invalid API key")
	}
	k, u, err := s.Keys.KeyByHash(c.Request.Context(), apikey.Hash(s.opt.KeyPepper, raw))
	if err != nil {
		return nil, err
	}
	if k.Status != biz.KeyActive {
		return nil, apperr.New(apperr.ReasonKeyRevoked, "API key revoked")
	}
	c.Set("key_user", u)
	return k, nil
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
