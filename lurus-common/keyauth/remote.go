package keyauth

import (
	"context"
	"errors"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// Remote is the Verifier of every service but billing: billing-service's
// POST /internal/v1/keys/verify, asked by hash.
type Remote struct {
	Client *internalapi.Client
}

// VerifyHash implements Verifier.
func (r Remote) VerifyHash(ctx context.Context, hash string) (Info, error) {
	resp, err := r.Client.VerifyKeyHash(ctx, hash)
	if err != nil {
		return Info{}, err
	}
	if resp.UserID == "" || resp.KeyID == "" {
		return Info{}, apperr.Wrap(errors.New("verify answer without user or key id"), apperr.ReasonDependencyDown,
			"billing-service answered unexpectedly")
	}
	return FromVerifyResponse(resp), nil
}

// FromVerifyResponse is the Info billing's verify answer describes.
func FromVerifyResponse(r internalapi.VerifyKeyResponse) Info {
	info := Info{KeyID: r.KeyID, UserID: r.UserID, UserGroup: r.UserGroup, UserActive: r.UserActive,
		Models: r.Models, AllowedIPs: ParseAllowedIPs(r.AllowedIPs), SpendLimitMicros: r.SpendLimitMicros,
		KeyLimits: r.KeyLimits, UserLimits: r.UserLimits}
	if r.ExpiresAt != nil {
		info.ExpiresAt = *r.ExpiresAt
	}
	return info
}
