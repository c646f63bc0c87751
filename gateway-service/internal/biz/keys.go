package biz

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
)

// KeyInfo is a verified API key as the gateway enforces it.
type KeyInfo struct {
	KeyID      string
	UserID     string
	UserGroup  string
	UserActive bool
	ExpiresAt  time.Time // zero: never
	// Models is the allow-list of model globs (empty: any model).
	Models []string
	// AllowedIPs is the allow-list of networks (empty: any address).
	AllowedIPs       []netip.Prefix
	SpendLimitMicros int64
}

// KeyVerifier asks the key authority (billing-service) about a key. An
// unknown or revoked key is an unauthenticated *apperr.Error; any other
// error means the authority could not answer.
type KeyVerifier interface {
	VerifyKey(ctx context.Context, key string) (KeyInfo, error)
}

// KeyCacheConfig tunes a KeyCache.
type KeyCacheConfig struct {
	PositiveTTL time.Duration
	NegativeTTL time.Duration
	// StaleTTL is how long past PositiveTTL a verified key may still be
	// served while it is re-verified in the background (so no request
	// waits for billing once a minute) or while billing cannot answer (so
	// an outage of billing does not stop traffic). 0 turns it off. A
	// revocation still takes effect at once through key.changed.
	StaleTTL time.Duration
	// RefreshTimeout bounds a background re-verification (default 5 s).
	RefreshTimeout time.Duration
	MaxEntries     int
	// Hash turns a key into its cache id (the peppered hash), so the
	// cache never holds a key in the clear.
	Hash func(key string) string
	Now  func() time.Time
}

type keyEntry struct {
	info       KeyInfo
	err        error // non-nil: a negative entry
	expires    time.Time
	refreshing atomic.Bool // a background re-verification is running
}

// KeyCache verifies keys through a KeyVerifier, remembering answers:
// positive ones up to PositiveTTL, refusals up to NegativeTTL; concurrent
// misses for one key share one call; Evict drops entries at once (on
// key.changed).
type KeyCache struct {
	cfg    KeyCacheConfig
	v      KeyVerifier
	group  singleflight.Group
	mu     sync.RWMutex
	byHash map[string]*keyEntry
	byKey  map[string]map[string]struct{} // key id -> hashes
	byUser map[string]map[string]struct{} // user id -> hashes
	gen    uint64                         // bumped by every eviction
}

// NewKeyCache returns a cache in front of v.
func NewKeyCache(v KeyVerifier, cfg KeyCacheConfig) *KeyCache {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RefreshTimeout <= 0 {
		cfg.RefreshTimeout = 5 * time.Second
	}
	return &KeyCache{cfg: cfg, v: v, byHash: map[string]*keyEntry{},
		byKey: map[string]map[string]struct{}{}, byUser: map[string]map[string]struct{}{}}
}

// Verify returns the key's info, or the refusal.
func (c *KeyCache) Verify(ctx context.Context, key string) (KeyInfo, error) {
	h := c.cfg.Hash(key)
	now := c.cfg.Now()
	c.mu.RLock()
	e := c.byHash[h]
	c.mu.RUnlock()
	if e != nil && now.Before(e.expires) {
		return e.info, e.err
	}
	if e != nil && e.err == nil && now.Before(e.expires.Add(c.cfg.StaleTTL)) {
		if e.refreshing.CompareAndSwap(false, true) {
			go c.refresh(h, key, e)
		}
		return e.info, nil
	}
	v, err, _ := c.group.Do(h, func() (any, error) { return c.fetch(ctx, h, key) })
	if err != nil {
		return KeyInfo{}, err
	}
	ne := v.(*keyEntry)
	return ne.info, ne.err
}

// fetch asks billing and caches the answer: positive or a refusal. An
// outage is returned and not cached.
func (c *KeyCache) fetch(ctx context.Context, h, key string) (*keyEntry, error) {
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	info, err := c.v.VerifyKey(ctx, key)
	var ne *keyEntry
	switch {
	case err == nil:
		ne = &keyEntry{info: info, expires: c.cfg.Now().Add(c.cfg.PositiveTTL)}
	case apperr.KindOf(err) == apperr.KindUnauthenticated:
		ne = &keyEntry{err: err, expires: c.cfg.Now().Add(c.cfg.NegativeTTL)}
	default:
		return nil, err
	}
	c.store(h, ne, gen)
	return ne, nil
}

// refresh re-verifies a stale entry in the background. When billing cannot
// answer, the stale entry stays (until StaleTTL ends) and the next request
// tries again.
func (c *KeyCache) refresh(h, key string, stale *keyEntry) {
	defer stale.refreshing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RefreshTimeout)
	defer cancel()
	_, _, _ = c.group.Do(h, func() (any, error) { return c.fetch(ctx, h, key) })
}

// store adds an entry unless an eviction happened while it was fetched
// (then the answer may be stale and is returned but not kept).
func (c *KeyCache) store(h string, e *keyEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.byHash) >= c.cfg.MaxEntries {
		c.purgeLocked()
	}
	c.byHash[h] = e
	if e.err == nil {
		add := func(m map[string]map[string]struct{}, id string) {
			s := m[id]
			if s == nil {
				s = map[string]struct{}{}
				m[id] = s
			}
			s[h] = struct{}{}
		}
		add(c.byKey, e.info.KeyID)
		add(c.byUser, e.info.UserID)
	}
}

// purgeLocked drops expired entries, and everything when that is not
// enough (a full cache is a symptom of a key-guessing flood).
func (c *KeyCache) purgeLocked() {
	now := c.cfg.Now()
	for h, e := range c.byHash {
		if !now.Before(e.expires) {
			c.dropLocked(h)
		}
	}
	if len(c.byHash) >= c.cfg.MaxEntries {
		c.byHash = map[string]*keyEntry{}
		c.byKey = map[string]map[string]struct{}{}
		c.byUser = map[string]map[string]struct{}{}
	}
}

func (c *KeyCache) dropLocked(h string) {
	e := c.byHash[h]
	if e == nil {
		return
	}
	delete(c.byHash, h)
	if e.err == nil {
		delete(c.byKey[e.info.KeyID], h)
		if len(c.byKey[e.info.KeyID]) == 0 {
			delete(c.byKey, e.info.KeyID)
		}
		delete(c.byUser[e.info.UserID], h)
		if len(c.byUser[e.info.UserID]) == 0 {
			delete(c.byUser, e.info.UserID)
		}
	}
}

// Evict drops the entries of keyID, or of every key of userID when keyID
// is empty. Negative entries are dropped too, since a key that was just
// created may have been refused a moment ago.
func (c *KeyCache) Evict(keyID, userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	var hs map[string]struct{}
	if keyID != "" {
		hs = c.byKey[keyID]
	} else {
		hs = c.byUser[userID]
	}
	for h := range hs {
		c.dropLocked(h)
	}
	for h, e := range c.byHash {
		if e.err != nil {
			delete(c.byHash, h)
		}
	}
}

// Len is the number of cached entries.
func (c *KeyCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byHash)
}

// Authorize checks what a verified key may do: the user is active, the
// key has not expired, the model is on its allow-list and the client
// address on its network allow-list.
func (k *KeyInfo) Authorize(model string, client netip.Addr, now time.Time) error {
	if !k.UserActive {
		return apperr.New(apperr.ReasonUserDisabled, "the key's user is disabled")
	}
	if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		return apperr.New(apperr.ReasonKeyExpired, "the API key has expired")
	}
	if !k.AllowsModel(model) {
		return apperr.Newf(apperr.ReasonModelNotAllowed, "this API key may not use model %q", model)
	}
	if len(k.AllowedIPs) > 0 {
		ok := false
		client = client.Unmap()
		for _, p := range k.AllowedIPs {
			if p.Contains(client) {
				ok = true
				break
			}
		}
		if !ok {
			return apperr.New(apperr.ReasonIPNotAllowed, "this API key may not be used from this address")
		}
	}
	return nil
}

// AllowsModel reports whether the key's model allow-list admits model.
func (k *KeyInfo) AllowsModel(model string) bool {
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
