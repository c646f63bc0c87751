// Package keyauth is the one way a user's API key is authorized, in every
// service that accepts one (DESIGN.md §2, §9): the gateway on the relay
// routes, billing-service on /me and the sync routes, log-service on its
// query routes and sync-service on tickets and sockets.
//
// Authorizing a key is two steps:
//
//   - Verify: the key is known and not revoked. billing-service is the
//     authority (it reads PostgreSQL); every other service asks it through
//     a Cache, by the key's peppered hash (apikey.Hash), never the key.
//     An unknown key is 401 INVALID_CREDENTIALS, a revoked one 401
//     KEY_REVOKED; billing unreachable, with nothing cached, is 503
//     DEPENDENCY_UNAVAILABLE.
//   - Authorize: what the verified key may do now and from where. The user
//     is not disabled (403 USER_DISABLED), the key has not expired (403
//     KEY_EXPIRED), the client address (found with package clientip and
//     the service's trusted_proxies) is on the key's IP allow-list (403
//     IP_NOT_ALLOWED), and, on the relay routes, the model on its model
//     allow-list (403 MODEL_NOT_ALLOWED). It runs on every use, cached or
//     not, so an expiry takes effect to the second.
//
// # How long an answer is believed
//
// A Cache keeps billing's answers: a verified key for at most PositiveTTL
// (≤ MaxPositiveTTL, 60 s), a refusal (unknown or revoked key) for at most
// NegativeTTL (≤ MaxNegativeTTL, 5 s). A key.changed event (a key revoked
// or edited, a user disabled or edited) evicts the key, or every key of
// the user, at once (Evict), so within one service a revocation applies to
// the next request.
//
// Past PositiveTTL a verified key may still be served for StaleTTL (≤
// MaxStaleTTL, 5 min; 0 turns it off): the stale answer is returned at once
// and re-verified in the background, so no request waits on billing, and
// while billing cannot answer the stale answer keeps serving. This is the
// one bound on how long a revocation can go unnoticed: only when its
// key.changed event is lost AND billing cannot be reached does a revoked
// key keep working, and then for at most PositiveTTL + StaleTTL (6 min
// with the maximum values) after it was last verified. With billing
// reachable, the first request after PositiveTTL triggers the refresh and
// the refusal replaces the entry within one billing round trip.
//
// # Abuse
//
// Refusals live in their own set, bounded by MaxNegative and replaced
// oldest first, so a flood of random keys never evicts verified keys.
// Verified keys are bounded by MaxEntries; they can only be as many as the
// keys that exist.
package keyauth

import (
	"net/netip"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// Info is a verified API key and its user, as billing-service describes
// it. It says nothing yet about whether a use is allowed: Authorize does.
type Info struct {
	KeyID     string
	UserID    string
	UserGroup string
	// UserActive is false for a disabled user.
	UserActive bool
	// ExpiresAt is when the key stops working (zero: never).
	ExpiresAt time.Time
	// Models is the allow-list of model globs (empty: any model).
	Models []string
	// AllowedIPs is the allow-list of networks (empty: any address). A
	// list that was set but did not parse holds an empty prefix, which
	// contains no address: it never widens to "any".
	AllowedIPs []netip.Prefix
	// SpendLimitMicros is the key's lifetime spend limit (0: none).
	SpendLimitMicros int64
	// KeyLimits and UserLimits are the rate limits in force for the
	// subjects ratelimit.KeySubject(KeyID) and ratelimit.UserSubject(UserID),
	// as billing computed them (internalapi.VerifyKeyResponse).
	KeyLimits  ratelimit.Limits
	UserLimits ratelimit.Limits
}

// Authorize checks a use of the key by client at now: the user is active,
// the key has not expired and client is on the key's IP allow-list. A key
// with an allow-list refuses an unknown (zero) client address.
func (k *Info) Authorize(client netip.Addr, now time.Time) error {
	if err := k.authorizeKey(now); err != nil {
		return err
	}
	return k.authorizeAddr(client)
}

// AuthorizeModel is Authorize for a request that names a model (the relay
// routes): the model must also be on the key's model allow-list. The
// model is checked before the address, the order the gateway has always
// answered in.
func (k *Info) AuthorizeModel(model string, client netip.Addr, now time.Time) error {
	if err := k.authorizeKey(now); err != nil {
		return err
	}
	if !k.AllowsModel(model) {
		return apperr.Newf(apperr.ReasonModelNotAllowed, "this API key may not use model %q", model)
	}
	return k.authorizeAddr(client)
}

func (k *Info) authorizeKey(now time.Time) error {
	if !k.UserActive {
		return apperr.New(apperr.ReasonUserDisabled, "the key's user is disabled")
	}
	if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		return apperr.New(apperr.ReasonKeyExpired, "the API key has expired")
	}
	return nil
}

func (k *Info) authorizeAddr(client netip.Addr) error {
	if len(k.AllowedIPs) == 0 {
		return nil
	}
	client = client.Unmap()
	for _, p := range k.AllowedIPs {
		if p.IsValid() && p.Contains(client) {
			return nil
		}
	}
	return apperr.New(apperr.ReasonIPNotAllowed, "this API key may not be used from this address")
}

// AllowsModel reports whether the key's model allow-list admits model.
func (k *Info) AllowsModel(model string) bool {
	if len(k.Models) == 0 {
		return true
	}
	for _, p := range k.Models {
		if p == model || modelglob.Match(p, model) {
			return true
		}
	}
	return false
}

// ParseAllowedIPs turns a key's stored allow-list (CIDRs or single
// addresses) into prefixes. An entry that does not parse is skipped; if
// none parses, the result admits no address (never every address).
func ParseAllowedIPs(list []string) []netip.Prefix {
	if len(list) == 0 {
		return nil
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := clientip.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = append(out, netip.Prefix{}) // contains nothing
	}
	return out
}
