package data

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// maxCachedKeys bounds the key cache; past it, expired entries are swept
// and, if that is not enough, the cache starts over.
const maxCachedKeys = 10000

// Keys verifies users' API keys with billing-service
// (POST /internal/v1/keys/verify) and caches the answers briefly: accepted
// keys for ttl (never past the key's expiry), refused ones for negTTL.
// Failures to reach billing are not cached. Keys are held only as SHA-256
// digests.
type Keys struct {
	client *internalapi.Client
	ttl    time.Duration
	negTTL time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]keyEntry
}

type keyEntry struct {
	p       biz.Principal
	err     error
	expires time.Time
}

// NewKeys returns a verifier calling billing-service through client.
func NewKeys(client *internalapi.Client, ttl, negTTL time.Duration) *Keys {
	return &Keys{client: client, ttl: ttl, negTTL: negTTL, now: time.Now, cache: make(map[[sha256.Size]byte]keyEntry)}
}

// Verify returns the principal of an API key: its user and key id. A
// refused key is an unauthenticated or forbidden *apperr.Error; billing
// being unreachable is DEPENDENCY_UNAVAILABLE.
func (k *Keys) Verify(ctx context.Context, key string) (biz.Principal, error) {
	if !apikey.WellFormed(key) {
		return biz.Principal{}, apperr.New(apperr.ReasonInvalidCredentials, "invalid API key")
	}
	digest := sha256.Sum256([]byte(key))
	now := k.now()
	k.mu.Lock()
	e, ok := k.cache[digest]
	k.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.p, e.err
	}

	resp, err := k.client.VerifyKey(ctx, key)
	switch kind := apperr.KindOf(err); {
	case err == nil:
	case kind == apperr.KindUnauthenticated || kind == apperr.KindForbidden:
		k.store(digest, keyEntry{err: err, expires: now.Add(k.negTTL)})
		return biz.Principal{}, err
	default:
		return biz.Principal{}, err
	}
	e = keyEntry{p: biz.Principal{UserID: resp.UserID, KeyID: resp.KeyID}, expires: now.Add(k.ttl)}
	switch {
	case !resp.UserActive:
		e = keyEntry{err: apperr.New(apperr.ReasonUserDisabled, "user is disabled"), expires: now.Add(k.negTTL)}
	case resp.ExpiresAt != nil && !now.Before(*resp.ExpiresAt):
		e = keyEntry{err: apperr.New(apperr.ReasonKeyExpired, "API key has expired"), expires: now.Add(k.negTTL)}
	case resp.ExpiresAt != nil && resp.ExpiresAt.Before(e.expires):
		e.expires = *resp.ExpiresAt
	}
	k.store(digest, e)
	return e.p, e.err
}

func (k *Keys) store(digest [sha256.Size]byte, e keyEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.cache) >= maxCachedKeys {
		now := k.now()
		for d, old := range k.cache {
			if !now.Before(old.expires) {
				delete(k.cache, d)
			}
		}
		if len(k.cache) >= maxCachedKeys {
			k.cache = make(map[[sha256.Size]byte]keyEntry)
		}
	}
	k.cache[digest] = e
}
